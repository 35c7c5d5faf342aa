/**
 * The timings of host-level failure detection, in one place, because they only
 * work together: the leader's wait before declaring a host failed is computed
 * from the lease and authority it hands out and from the hosts' watchdog
 * timeout (docs/failure-detection.md has the derivation and the figures).
 */
import type { HeartbeatSenderConfig } from "../heartbeat/heartbeatSender.ts";
import type { MonitorReportingConfig } from "../heartbeat/heartbeatMonitor.ts";
import { defaultMonitorReportingConfig } from "../heartbeat/heartbeatMonitor.ts";

export interface FailureDetectorConfig {
  /** No monitor heard the host for this long: suspect it, exclude it from grants, ask the monitors to probe it. */
  readonly suspectAfterMs: number;
  /** A monitor may grant leases this long after it sent the digest the leader answered (monitor clock). */
  readonly authorityValidForMs: number;
  /** The lease a monitor grants with each ack, counted from when the host sent the heartbeat (host clock). */
  readonly hostLeaseMs: number;
  /** Longest time from a host's lease running out to its VMs being off: its watchdog timeout, at least. */
  readonly maxIsolationDelayMs: number;
  /** Any node's clock runs within ±this many parts per million of real time. */
  readonly maxClockRateErrorPpm: number;
  /** After the lease bound, how long to wait for probe outcomes still missing from monitors that are reporting. */
  readonly probeOutcomeWaitMs: number;
  readonly maxSuspectedHosts: number;
  /** Declared hosts whose incarnation stays excluded from grants, so a host still alive without a lease moves to a new incarnation and can rejoin. */
  readonly maxDeclaredExclusions: number;
  readonly maxTrackedHosts: number;
  readonly maxMonitors: number;
}

export const defaultFailureDetectorConfig: FailureDetectorConfig = {
  suspectAfterMs: 600,
  authorityValidForMs: 1_500,
  hostLeaseMs: 1_100,
  maxIsolationDelayMs: 400,
  maxClockRateErrorPpm: 10_000,
  probeOutcomeWaitMs: 500,
  maxSuspectedHosts: 1_024,
  maxDeclaredExclusions: 1_024,
  maxTrackedHosts: 20_000,
  maxMonitors: 64,
};

/** A declared host's exclusion is dropped this long after it was last heard with that incarnation. */
export const declaredExclusionRetentionMs = 10_000;
/**
 * A host incarnation that joined and won no lease for this long (host clock) takes the next one. The leader stops
 * excluding a declared incarnation no sooner than `declaredExclusionRetentionMs` after it first heard of it, which is
 * after the incarnation joined; at half of that, with clocks within `maxClockRateErrorPpm` (under 10%), the host has
 * left the incarnation long before anyone could grant it a lease again.
 */
export const maxJoiningWithoutLeaseMs = declaredExclusionRetentionMs / 2;
/** One authority grant names at most this many hosts (wire bound, actors/heartbeat/heartbeatMessages.ts). */
export const maxHostsNamedPerGrant = 4_096;

export type IsolationResponse = "power-off" | "shutdown";

export interface HostAgentConfig extends HeartbeatSenderConfig {
  /** How long a heartbeat waits for its ack; below the interval, so a miss is known before the next beat. */
  readonly ackTimeoutMs: number;
  /** Grants longer than this are cut to it. */
  readonly maxAcceptedLeaseMs: number;
  /** The hardware watchdog resets the host this long after the last pet; must not exceed the leader's `maxIsolationDelayMs`. */
  readonly watchdogTimeoutMs: number;
  readonly isolationResponse: IsolationResponse;
}

export const defaultHostAgentConfig: HostAgentConfig = {
  heartbeatIntervalMs: 100,
  missedAcksBeforeSwitch: 2,
  driftBackAfterMs: 30_000,
  ackTimeoutMs: 80,
  maxAcceptedLeaseMs: defaultFailureDetectorConfig.hostLeaseMs,
  watchdogTimeoutMs: defaultFailureDetectorConfig.maxIsolationDelayMs,
  isolationResponse: "power-off",
};

export interface MonitorAgentConfig extends MonitorReportingConfig {
  /** A digest's answer must arrive within this; at most the digest interval, since one digest is in flight at a time. */
  readonly digestReplyTimeoutMs: number;
  readonly probeTimeoutMs: number;
}

export const defaultMonitorAgentConfig: MonitorAgentConfig = {
  ...defaultMonitorReportingConfig,
  digestReplyTimeoutMs: 80,
  probeTimeoutMs: 100,
};

/** How often the leader's detector looks for silent hosts and due declarations. */
export const defaultDetectorTickMs = 25;

function positiveIntegerProblems(record: object, names: readonly string[]): string[] {
  const problems: string[] = [];
  for (const name of names) {
    const value = (record as Record<string, unknown>)[name];
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1) problems.push(`${name} must be a positive integer, got ${String(value)}`);
  }
  return problems;
}

/** Why these settings would be unsafe or could not work together; empty when fine. */
export function detectionConfigProblems(detector: FailureDetectorConfig, host: HostAgentConfig, monitor: MonitorAgentConfig): string[] {
  const problems = [
    ...positiveIntegerProblems(detector, [
      "suspectAfterMs",
      "authorityValidForMs",
      "hostLeaseMs",
      "maxIsolationDelayMs",
      "probeOutcomeWaitMs",
      "maxSuspectedHosts",
      "maxDeclaredExclusions",
      "maxTrackedHosts",
      "maxMonitors",
    ]),
    ...positiveIntegerProblems(host, ["heartbeatIntervalMs", "missedAcksBeforeSwitch", "driftBackAfterMs", "ackTimeoutMs", "maxAcceptedLeaseMs", "watchdogTimeoutMs"]),
    ...positiveIntegerProblems(monitor, ["digestIntervalMs", "maxHostsPerDigest", "maxProbesInFlight", "digestReplyTimeoutMs", "probeTimeoutMs"]),
  ];
  if (problems.length > 0) return problems;
  if (!(detector.maxClockRateErrorPpm >= 0 && detector.maxClockRateErrorPpm < 100_000)) problems.push("maxClockRateErrorPpm must be in [0, 100000)");
  if (host.watchdogTimeoutMs > detector.maxIsolationDelayMs) {
    problems.push("watchdogTimeoutMs exceeds maxIsolationDelayMs: a hung host could keep its VMs running after the leader declared it failed");
  }
  if (detector.maxSuspectedHosts + detector.maxDeclaredExclusions > maxHostsNamedPerGrant) {
    problems.push(`maxSuspectedHosts + maxDeclaredExclusions must be at most ${maxHostsNamedPerGrant}, the hosts one grant can name`);
  }
  if (host.ackTimeoutMs >= host.heartbeatIntervalMs) problems.push("ackTimeoutMs must be below heartbeatIntervalMs");
  if (monitor.digestReplyTimeoutMs > monitor.digestIntervalMs) problems.push("digestReplyTimeoutMs must not exceed digestIntervalMs");
  const switchMs = host.heartbeatIntervalMs * (host.missedAcksBeforeSwitch + 1);
  if (Math.min(detector.hostLeaseMs, host.maxAcceptedLeaseMs) < 3 * switchMs) {
    problems.push("the lease must outlast three monitor switches (heartbeatIntervalMs × (missedAcksBeforeSwitch + 1) each), or loss alone fences hosts");
  }
  if (detector.authorityValidForMs < 3 * monitor.digestIntervalMs) problems.push("authorityValidForMs must cover three digest intervals, or one lost digest costs a monitor its authority");
  if (detector.suspectAfterMs <= switchMs + monitor.digestIntervalMs) {
    problems.push("suspectAfterMs must exceed a monitor switch plus a digest interval, or every switch raises a suspicion");
  }
  return problems;
}

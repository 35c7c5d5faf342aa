/**
 * The `detection` section every node config may carry: host-level failure
 * detection timings (docs/failure-detection.md, "Defaults"). Controllers
 * (the detector), monitors and hosts each read the part they need, but the
 * lease arithmetic only holds when **every node of a cluster uses the same
 * section**: copy it verbatim into every config.
 *
 * ```json
 * "detection": { "hostLeaseMs": 1100, "maxIsolationDelayMs": 1000 }
 * ```
 *
 * `maxIsolationDelayMs` must cover the hosts' watchdog timeout (a softdog
 * counts in whole seconds, so a host with `/dev/watchdog` needs at least
 * 1000 here); the settings are checked together with
 * `detectionConfigProblems` and refused with its reasons.
 */
import {
  defaultDetectorTickMs,
  defaultFailureDetectorConfig,
  defaultHostAgentConfig,
  defaultMonitorAgentConfig,
  detectionConfigProblems,
  type FailureDetectorConfig,
  type HostAgentConfig,
  type MonitorAgentConfig,
} from "../../machines/detection/detectionConfig.ts";
import type { ObjectReader } from "./configFields.ts";

export const maxDetectionTimingMs = 600_000;
export const maxDetectorTickMs = 1_000;

export interface DetectionSettings {
  readonly detector: FailureDetectorConfig;
  /** `watchdogTimeoutMs` is the cluster's `maxIsolationDelayMs`; a host with a device narrows it to the device's timeout. */
  readonly host: HostAgentConfig;
  readonly monitor: MonitorAgentConfig;
  readonly detectorTickMs: number;
}

export const defaultDetectionSettings: DetectionSettings = {
  detector: defaultFailureDetectorConfig,
  host: defaultHostAgentConfig,
  monitor: defaultMonitorAgentConfig,
  detectorTickMs: defaultDetectorTickMs,
};

const detectorFields = ["suspectAfterMs", "authorityValidForMs", "hostLeaseMs", "maxIsolationDelayMs", "probeOutcomeWaitMs"] as const;
const hostFields = ["heartbeatIntervalMs", "ackTimeoutMs", "missedAcksBeforeSwitch", "driftBackAfterMs"] as const;
const monitorFields = ["digestIntervalMs", "digestReplyTimeoutMs", "probeTimeoutMs"] as const;
export const detectionFieldNames: readonly string[] = [...detectorFields, ...hostFields, ...monitorFields, "maxClockRateErrorPpm", "detectorTickMs"];

/** Reads `detection` from a node config (absent: the defaults); problems are added to the reader's list. */
export function readDetectionSettings(parent: ObjectReader): DetectionSettings {
  const section = parent.object("detection", true);
  if (section === undefined) return defaultDetectionSettings;
  const problemsBefore = section.problems.length;
  section.onlyKnown(detectionFieldNames);
  const detector: Record<string, number> = { ...defaultFailureDetectorConfig };
  for (const field of detectorFields) detector[field] = section.integer(field, 1, maxDetectionTimingMs, defaultFailureDetectorConfig[field]);
  detector.maxClockRateErrorPpm = section.integer("maxClockRateErrorPpm", 0, 99_999, defaultFailureDetectorConfig.maxClockRateErrorPpm);
  const host: Record<string, unknown> = { ...defaultHostAgentConfig };
  for (const field of hostFields) host[field] = section.integer(field, 1, maxDetectionTimingMs, defaultHostAgentConfig[field]);
  host.maxAcceptedLeaseMs = detector.hostLeaseMs;
  host.watchdogTimeoutMs = detector.maxIsolationDelayMs;
  const monitor: Record<string, number> = { ...defaultMonitorAgentConfig };
  for (const field of monitorFields) monitor[field] = section.integer(field, 1, maxDetectionTimingMs, defaultMonitorAgentConfig[field]);
  const detectorTickMs = section.integer("detectorTickMs", 1, maxDetectorTickMs, defaultDetectorTickMs);
  const settings: DetectionSettings = {
    detector: detector as unknown as FailureDetectorConfig,
    host: host as unknown as HostAgentConfig,
    monitor: monitor as unknown as MonitorAgentConfig,
    detectorTickMs,
  };
  // The combination is only worth checking once each field is sound.
  if (problemsBefore === section.problems.length) {
    for (const problem of detectionConfigProblems(settings.detector, settings.host, settings.monitor)) section.problems.push(`detection: ${problem}`);
  }
  return settings;
}

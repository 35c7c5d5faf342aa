import { createRejectionCounter } from "../../actors/codec/rejectionCounter.ts";
import { startHeartbeatMonitor } from "../../actors/heartbeat/heartbeatMonitorActor.ts";
import { startHeartbeatSender, type HeartbeatSenderHost } from "../../actors/heartbeat/heartbeatSenderActor.ts";
import type { LogLevel } from "../../actors/ports/telemetry.ts";
import { defaultHeartbeatSenderConfig } from "../../machines/heartbeat/heartbeatSender.ts";
import { SimWorld } from "../world.ts";

/**
 * The embedded default simulation (`haring sim run` with no scenario): hosts
 * heartbeat monitors over a lossy simulated network; one monitor crashes a
 * third of the way in and comes back at two thirds. Checks that every host
 * that lost its monitor moved to another one in time, and that every host is
 * being acked again at the end.
 */
export const heartbeatClusterLimits = { maxHosts: 20_000, maxMonitors: 64, maxDurationS: 3_600 } as const;

export interface HeartbeatClusterOptions {
  readonly seed: number;
  readonly hosts: number;
  readonly monitors: number;
  readonly durationMs: number;
  readonly lossProbability?: number;
  readonly heartbeatIntervalMs?: number;
  /** Crash one monitor (the first) for the middle third of the run; default true when there are ≥ 2 monitors. */
  readonly crashMonitor?: boolean;
  readonly transcriptLevel?: LogLevel;
}

export interface HeartbeatClusterSummary {
  readonly seed: number;
  readonly hosts: number;
  readonly monitors: number;
  readonly virtualMs: number;
  readonly heartbeatsSent: number;
  readonly acksReceived: number;
  readonly acksMissed: number;
  readonly targetSwitches: number;
  readonly hostsOnCrashedMonitor: number;
  readonly messagesDelivered: number;
  readonly messagesLost: number;
  readonly messagesRejected: number;
  readonly ok: boolean;
}

export interface HeartbeatClusterResult {
  readonly transcript: string;
  readonly summary: HeartbeatClusterSummary;
  readonly summaryText: string;
  readonly ok: boolean;
  readonly failures: readonly string[];
}

const maxReportedFailures = 10;

function checkOptions(options: HeartbeatClusterOptions): void {
  const limits = heartbeatClusterLimits;
  const check = (name: string, value: number, min: number, max: number) => {
    if (!Number.isSafeInteger(value) || value < min || value > max) throw new RangeError(`${name} must be a whole number in [${min}, ${max}], got ${value}`);
  };
  check("hosts", options.hosts, 1, limits.maxHosts);
  check("monitors", options.monitors, 1, limits.maxMonitors);
  check("durationMs", options.durationMs, 1, limits.maxDurationS * 1_000);
  const loss = options.lossProbability ?? 0;
  if (!(loss >= 0 && loss < 1)) throw new RangeError(`lossProbability must be in [0, 1), got ${loss}`);
}

export function runHeartbeatCluster(options: HeartbeatClusterOptions): HeartbeatClusterResult {
  checkOptions(options);
  const lossProbability = options.lossProbability ?? 0.05;
  const config = { ...defaultHeartbeatSenderConfig, heartbeatIntervalMs: options.heartbeatIntervalMs ?? defaultHeartbeatSenderConfig.heartbeatIntervalMs };
  // an ack slower than 80% of the interval counts as missed, so a miss is known before the next beat
  const ackTimeoutMs = Math.max(1, Math.floor(config.heartbeatIntervalMs * 0.8));
  const world = new SimWorld({ seed: options.seed, clusterId: "sim", network: { lossProbability }, transcriptLevel: options.transcriptLevel ?? "info" });
  const monitorIds = Array.from({ length: options.monitors }, (_, index) => `m${index + 1}`);
  const hostIds = Array.from({ length: options.hosts }, (_, index) => `h${index + 1}`);

  for (const monitorId of monitorIds) {
    world.addNode(monitorId, (ports) => {
      const monitor = startHeartbeatMonitor(ports, { rejections: createRejectionCounter(ports) });
      return { stop: () => monitor.dispose() };
    });
  }
  const senders = new Map<string, HeartbeatSenderHost>();
  let messagesRejected = 0;
  for (const hostId of hostIds) {
    world.addNode(hostId, (ports) => {
      const rejections = createRejectionCounter(ports);
      const sender = startHeartbeatSender(ports, { monitorIds, config, ackTimeoutMs, rejections });
      senders.set(hostId, sender);
      return { stop: () => sender.dispose() };
    });
  }

  const failures: string[] = [];
  const crashMonitor = (options.crashMonitor ?? options.monitors >= 2) && options.monitors >= 2;
  const crashAtMs = Math.floor(options.durationMs / 3);
  const restartAtMs = Math.floor((options.durationMs * 2) / 3);
  const crashedMonitor = monitorIds[0]!;
  const targetOf = (sender: HeartbeatSenderHost) => {
    const context = sender.getSnapshot()?.context;
    return context ? context.monitorOrder[context.targetIndex] : undefined;
  };
  let hostsOnCrashedMonitor = 0;

  if (crashMonitor) {
    world.runUntil(crashAtMs);
    for (const sender of senders.values()) if (targetOf(sender) === crashedMonitor) hostsOnCrashedMonitor++;
    world.crash(crashedMonitor);
    // A host may also rotate onto the crashed monitor later (after losses on its own), so the check is
    // how long any host stays on it, sampled every beat, not where hosts are at one instant.
    const maxStayOnCrashedMs = config.heartbeatIntervalMs * (config.missedAcksBeforeSwitch + 5);
    const onCrashedSinceMs = new Map<string, number>();
    while (world.now() < restartAtMs) {
      world.runUntil(Math.min(restartAtMs, world.now() + config.heartbeatIntervalMs));
      for (const [hostId, sender] of senders) {
        if (targetOf(sender) !== crashedMonitor) {
          onCrashedSinceMs.delete(hostId);
          continue;
        }
        const sinceMs = onCrashedSinceMs.get(hostId) ?? world.now();
        onCrashedSinceMs.set(hostId, sinceMs);
        if (world.now() - sinceMs > maxStayOnCrashedMs && failures.length < maxReportedFailures) {
          failures.push(`${hostId} stayed on crashed monitor ${crashedMonitor} from ${sinceMs} ms to ${world.now()} ms`);
          onCrashedSinceMs.delete(hostId);
        }
      }
    }
    world.runUntil(restartAtMs);
    world.restart(crashedMonitor);
  }

  const finalWindowMs = Math.min(1_000, Math.floor(options.durationMs / 4));
  world.runUntil(options.durationMs - finalWindowMs);
  const acksBeforeFinalWindow = new Map([...senders].map(([hostId, sender]) => [hostId, sender.getSnapshot()?.context.acksReceived ?? 0]));
  world.runUntil(options.durationMs);

  let heartbeatsSent = 0;
  let acksReceived = 0;
  let acksMissed = 0;
  let targetSwitches = 0;
  for (const [hostId, sender] of senders) {
    const context = sender.getSnapshot()?.context;
    if (!context) continue;
    heartbeatsSent += context.nextSequence - 1;
    acksReceived += context.acksReceived;
    acksMissed += context.acksMissed;
    targetSwitches += context.switches;
    if (finalWindowMs >= config.heartbeatIntervalMs * 3 && context.acksReceived <= (acksBeforeFinalWindow.get(hostId) ?? 0) && failures.length < maxReportedFailures) {
      failures.push(`${hostId} got no ack in the final ${finalWindowMs} ms`);
    }
  }
  for (const nodeId of [...monitorIds, ...hostIds]) messagesRejected += world.metrics(nodeId).counterTotal("haring_messages_rejected_total");

  const counters = world.networkCounters();
  const ok = failures.length === 0;
  const summary: HeartbeatClusterSummary = {
    seed: options.seed,
    hosts: options.hosts,
    monitors: options.monitors,
    virtualMs: world.now(),
    heartbeatsSent,
    acksReceived,
    acksMissed,
    targetSwitches,
    hostsOnCrashedMonitor,
    messagesDelivered: counters.delivered,
    messagesLost: counters.lost,
    messagesRejected,
    ok,
  };
  const summaryText = [
    `seed ${summary.seed}: ${summary.hosts} hosts, ${summary.monitors} monitors, ${summary.virtualMs} ms simulated, ${(lossProbability * 100).toFixed(1)}% loss`,
    `heartbeats ${heartbeatsSent}, acked ${acksReceived}, missed ${acksMissed}, target switches ${targetSwitches}` +
      (crashMonitor ? ` (${hostsOnCrashedMonitor} hosts were on ${crashedMonitor} when it crashed)` : ""),
    `messages delivered ${counters.delivered}, lost ${counters.lost}, rejected ${messagesRejected}`,
    ok ? "result: ok" : `result: FAILED (${failures.length} problems) — replay with --seed ${options.seed}`,
  ].join("\n");
  return { transcript: world.transcript(), summary, summaryText, ok, failures };
}

/**
 * The heartbeat pair as a scenario component: a heartbeat monitor on every
 * monitor node, a heartbeat sender on every host (actors/heartbeat).
 *
 * Invariant `heartbeat.acked`: a host that is up and can exchange messages
 * with at least one monitor that is up gets an ack at least every
 * `maxAckGap`. It covers both "no host stays on a dead monitor" and "hosts are
 * acked again after heal"; a host with no reachable monitor (crashed,
 * partitioned away) is excused, and its gap starts again once it has one.
 *
 * When another component replaces the actors (detection), it may also say
 * which monitors can answer usefully right now (`monitorCanAck`): a detection
 * monitor without the leader's authority answers `no-authority`, which the
 * host counts as a miss, so it keeps moving and isolating and may legitimately
 * go `maxAckGap` without an ack. Only monitors that pass that test count as
 * reachable; the invariant is otherwise unchanged (a host stuck on a dead
 * monitor while one that can ack is reachable is still caught).
 */
import { createRejectionCounter } from "../../actors/codec/rejectionCounter.ts";
import { startHeartbeatMonitor, type HeartbeatMonitorHost } from "../../actors/heartbeat/heartbeatMonitorActor.ts";
import type { NodePorts } from "../../actors/ports/nodePorts.ts";
import { heartbeatAcksMetric, heartbeatMissesMetric, startHeartbeatSender, type HeartbeatSenderHost } from "../../actors/heartbeat/heartbeatSenderActor.ts";
import { defaultHeartbeatSenderConfig, type HeartbeatSenderConfig } from "../../machines/heartbeat/heartbeatSender.ts";
import { scenarioCapabilities } from "./capabilities.ts";
import type { ScenarioComponent } from "./clusterAssembly.ts";
import { formatDurationMs } from "./scenarioValues.ts";

export const heartbeatComponentName = "heartbeat";
export const targetSwitchedEvent = "heartbeat.target-switched";
const maxHeartbeatIntervalMs = 60_000;
const maxMissedAcksBeforeSwitch = 100;

export interface HeartbeatComponentSettings {
  readonly sender: HeartbeatSenderConfig;
  readonly ackTimeoutMs: number;
  /** undefined: derived from the interval, the switch threshold and the number of monitors. */
  readonly maxAckGapMs: number | undefined;
}

/**
 * Long enough for a host to try every monitor in turn (each after
 * `missedAcksBeforeSwitch` misses) and still find one, plus slack for loss.
 */
export function defaultMaxAckGapMs(sender: HeartbeatSenderConfig, monitors: number): number {
  return sender.heartbeatIntervalMs * (sender.missedAcksBeforeSwitch * monitors + 4);
}

/**
 * What a component that builds on the heartbeat pair may change before the
 * nodes boot (the detection component: host agents with leases, monitors that
 * report to the leader). The heartbeat component still owns the actors'
 * lifecycle, its invariant and its summary.
 */
export interface HeartbeatComponentApi {
  useActors(actors: {
    readonly startSender: (ports: NodePorts) => HeartbeatSenderHost;
    readonly startMonitor: (ports: NodePorts) => HeartbeatMonitorHost;
    /** The senders' timings, for the invariant's ack gap. */
    readonly sender: HeartbeatSenderConfig;
    /** Whether a host's target switch at this time belongs in the scenario log (all are counted in the summary). */
    readonly logSwitch?: (hostId: string, atMs: number) => boolean;
    /**
     * Whether a monitor that is up and reachable can answer a host in a way
     * that keeps the host on it right now (detection: it can hold the
     * leader's authority). Default: every monitor that is up.
     */
    readonly monitorCanAck?: (monitorId: string) => boolean;
  }): void;
}

export const heartbeatComponent: ScenarioComponent<HeartbeatComponentSettings> = {
  name: heartbeatComponentName,
  provides: [scenarioCapabilities.heartbeat],

  readSettings(reader) {
    const heartbeatIntervalMs = reader.duration("interval", { min: 1, max: maxHeartbeatIntervalMs, fallback: defaultHeartbeatSenderConfig.heartbeatIntervalMs });
    const missedAcksBeforeSwitch = reader.integer("missedAcksBeforeSwitch", { min: 1, max: maxMissedAcksBeforeSwitch, fallback: defaultHeartbeatSenderConfig.missedAcksBeforeSwitch });
    const driftBackAfterMs = reader.duration("driftBack", { min: 1, max: 24 * 3_600_000, fallback: defaultHeartbeatSenderConfig.driftBackAfterMs });
    // an ack slower than 80% of the interval counts as missed, so a miss is known before the next beat
    const ackTimeoutMs = reader.duration("ackTimeout", { min: 1, max: maxHeartbeatIntervalMs, fallback: Math.max(1, Math.floor(heartbeatIntervalMs * 0.8)) });
    const maxAckGapMs = reader.has("maxAckGap") ? reader.duration("maxAckGap", { min: 1, max: 3_600_000, fallback: 0 }) : undefined;
    reader.finish();
    return { sender: { heartbeatIntervalMs, missedAcksBeforeSwitch, driftBackAfterMs }, ackTimeoutMs, maxAckGapMs };
  },

  checkCluster(cluster) {
    return cluster.hosts.length > 0 && cluster.monitorIds.length === 0 ? ["hosts need at least one monitor to heartbeat (add \"monitors\")"] : [];
  },

  start({ world, cluster, log }, settings) {
    const monitorIds = cluster.monitorIds;
    let startSender = (ports: NodePorts): HeartbeatSenderHost =>
      startHeartbeatSender(ports, { monitorIds, config: settings.sender, ackTimeoutMs: settings.ackTimeoutMs, rejections: createRejectionCounter(ports) });
    let startMonitor = (ports: NodePorts): HeartbeatMonitorHost => startHeartbeatMonitor(ports, { rejections: createRejectionCounter(ports) });
    let senderConfig = settings.sender;
    let logSwitch = (_hostId: string, _atMs: number) => true;
    let monitorCanAck = (_monitorId: string) => true;
    const hostIds = cluster.hosts.map((host) => host.hostId);
    const senders = new Map<string, HeartbeatSenderHost>();
    let switchesOfStoppedSenders = 0;
    const maxAckGapMs = () => settings.maxAckGapMs ?? defaultMaxAckGapMs(senderConfig, monitorIds.length);
    const api: HeartbeatComponentApi = {
      useActors(actors) {
        startSender = actors.startSender;
        startMonitor = actors.startMonitor;
        senderConfig = actors.sender;
        if (actors.logSwitch) logSwitch = actors.logSwitch;
        if (actors.monitorCanAck) monitorCanAck = actors.monitorCanAck;
      },
    };

    const ackCount = (hostId: string) => world.metrics(hostId).counter(heartbeatAcksMetric);
    const lastAcks = new Map(hostIds.map((hostId) => [hostId, 0]));
    const lastProgressMs = new Map(hostIds.map((hostId) => [hostId, 0]));
    const reachableMonitors = (hostId: string) =>
      world.fabric.isServerDown
        ? []
        : monitorIds.filter(
            (monitorId) => world.nodeState(monitorId) === "up" && world.fabric.canReach(hostId, monitorId) && world.fabric.canReach(monitorId, hostId) && monitorCanAck(monitorId),
          );

    return {
      api,
      bootMonitor(ports) {
        const monitor = startMonitor(ports);
        return { stop: () => monitor.dispose() };
      },
      bootHost(ports) {
        const sender = startSender(ports);
        senders.set(ports.nodeId, sender);
        return {
          stop: () => {
            switchesOfStoppedSenders += sender.getSnapshot()?.context.switches ?? 0;
            senders.delete(ports.nodeId);
            sender.dispose();
          },
        };
      },
      invariants: [
        {
          name: "heartbeat.acked",
          everyMs: settings.sender.heartbeatIntervalMs,
          check(nowMs, violation) {
            for (const hostId of hostIds) {
              const acks = ackCount(hostId);
              const excused = world.nodeState(hostId) !== "up" || reachableMonitors(hostId).length === 0;
              if (acks > lastAcks.get(hostId)! || excused) lastProgressMs.set(hostId, nowMs);
              lastAcks.set(hostId, acks);
              const gapMs = nowMs - lastProgressMs.get(hostId)!;
              if (gapMs > maxAckGapMs()) {
                violation(hostId, `no ack for ${formatDurationMs(gapMs)} (limit ${formatDurationMs(maxAckGapMs())}) although ${reachableMonitors(hostId).join(",")} can be reached`);
              }
            }
          },
        },
      ],
      // the line starts with its time in ms (`000110.480 h6 info …`)
      keepLogLine: (line) => line.event === targetSwitchedEvent && logSwitch(line.source, Number.parseFloat(line.text)),
      finish() {
        let acks = 0;
        let misses = 0;
        for (const hostId of hostIds) {
          acks += ackCount(hostId);
          misses += world.metrics(hostId).counter(heartbeatMissesMetric);
        }
        let switches = switchesOfStoppedSenders;
        const hostsPerTarget = new Map(monitorIds.map((monitorId) => [monitorId, 0]));
        for (const sender of senders.values()) {
          const context = sender.getSnapshot()?.context;
          if (!context) continue;
          switches += context.switches;
          const target = context.monitorOrder[context.targetIndex];
          if (target !== undefined) hostsPerTarget.set(target, (hostsPerTarget.get(target) ?? 0) + 1);
        }
        log.write("info", "heartbeat.summary", { acks, misses, switches });
        // monitor ids are not integer-like (they are validated node ids that go through the range syntax), but be safe: prefix them
        log.write("info", "heartbeat.targets", Object.fromEntries([...hostsPerTarget].map(([monitorId, count]) => [`on-${monitorId}`, count])));
      },
    };
  },
};

/**
 * The faults under which host failure detection must raise no false alarm
 * (issue 4): each installs its fault on a DetectionCluster from `fromMs` on
 * and keeps it up for the rest of the run. No host fails in any of them, so
 * any host-failed proposal, any lease a host lost, and any watchdog reset is a
 * false alarm.
 */
import { rendezvousOrder } from "../../machines/heartbeat/rendezvousOrder.ts";
import { leaderNodeId, type DetectionCluster } from "./detectionCluster.ts";

export const falseAlarmScenarioNames = ["loss-5pct", "monitor-crashed", "flapping-links", "one-way-partition", "monitor-pause-3s"] as const;
export type FalseAlarmScenarioName = (typeof falseAlarmScenarioNames)[number];

/** Hosts whose links a scenario cuts or flaps. */
export const affectedHostCount = 10;
export const flapPeriodMs = 1_000;
export const monitorPauseMs = 3_000;
/** The paused monitor is paused again this often. */
export const monitorPauseEveryMs = 20_000;

export const falseAlarmScenarioDescriptions: Readonly<Record<FalseAlarmScenarioName, string>> = {
  "loss-5pct": "5% of all messages lost, every link, both directions",
  "monitor-crashed": "monitor m1 crashed for good",
  "flapping-links": `every ${flapPeriodMs} ms the links between ${affectedHostCount} hosts and their preferred monitor, and between the leader and m2, go down or come back (both directions)`,
  "one-way-partition": `${affectedHostCount} hosts cannot reach their preferred monitor, ${affectedHostCount} others cannot hear it (one direction each)`,
  "monitor-pause-3s": `monitor m1 paused for ${monitorPauseMs} ms every ${monitorPauseEveryMs} ms`,
};

function preferredMonitor(cluster: DetectionCluster, hostId: string): string {
  return rendezvousOrder(hostId, cluster.monitorIds)[0]!;
}

function setLink(cluster: DetectionCluster, a: string, b: string, up: boolean): void {
  if (up) {
    cluster.world.unblockLink(a, b);
    cluster.world.unblockLink(b, a);
  } else {
    cluster.world.blockLink(a, b);
    cluster.world.blockLink(b, a);
  }
}

/** Installs the fault at `fromMs` (world time). */
export function installFalseAlarmScenario(cluster: DetectionCluster, name: FalseAlarmScenarioName, fromMs: number): void {
  const world = cluster.world;
  const hosts = cluster.hostIds.slice(0, Math.min(affectedHostCount, cluster.hostIds.length));
  const otherHosts = cluster.hostIds.slice(affectedHostCount, affectedHostCount * 2);
  world.schedule(Math.max(0, fromMs - world.now()), () => {
    switch (name) {
      case "loss-5pct":
        world.setLoss(0.05);
        break;
      case "monitor-crashed":
        world.crash(cluster.monitorIds[0]!);
        break;
      case "one-way-partition":
        for (const hostId of hosts) world.blockLink(hostId, preferredMonitor(cluster, hostId));
        for (const hostId of otherHosts) world.blockLink(preferredMonitor(cluster, hostId), hostId);
        break;
      case "monitor-pause-3s": {
        const monitorId = cluster.monitorIds[0]!;
        const pauseAgain = (): void => {
          if (world.nodeState(monitorId) === "up") world.pause(monitorId, monitorPauseMs);
          world.schedule(monitorPauseEveryMs, pauseAgain);
        };
        pauseAgain();
        break;
      }
      case "flapping-links": {
        const flappingMonitor = cluster.monitorIds[1 % cluster.monitorIds.length]!;
        let up = true;
        const flap = (): void => {
          up = !up;
          for (const hostId of hosts) setLink(cluster, hostId, preferredMonitor(cluster, hostId), up);
          setLink(cluster, leaderNodeId, flappingMonitor, up);
          world.schedule(flapPeriodMs, flap);
        };
        flap();
        break;
      }
    }
  });
}

export interface FalseAlarmOutcome {
  readonly scenario: FalseAlarmScenarioName;
  readonly hosts: number;
  readonly simulatedMs: number;
  readonly hostFailedProposals: number;
  readonly leaseLosses: number;
  readonly watchdogResets: number;
  readonly suspicions: number;
  readonly refutations: number;
  readonly targetSwitches: number;
}

/** A run of one scenario with 100 hosts (or as given), faults from a warm-up on, counting false alarms. */
export function runFalseAlarmScenario(
  create: () => DetectionCluster,
  name: FalseAlarmScenarioName,
  durationMs: number,
): { cluster: DetectionCluster; outcome: FalseAlarmOutcome } {
  const cluster = create();
  const warmUpMs = cluster.termStartWaitMs() + 500;
  installFalseAlarmScenario(cluster, name, warmUpMs);
  cluster.world.runUntil(warmUpMs + durationMs);
  const counters = cluster.leader.host.getSnapshot()?.context.core.counters;
  let targetSwitches = 0;
  for (const hostId of cluster.hostIds) targetSwitches += cluster.hostAgent(hostId) === undefined ? 0 : (cluster.sender(hostId).getSnapshot()?.context.switches ?? 0);
  return {
    cluster,
    outcome: {
      scenario: name,
      hosts: cluster.hostIds.length,
      simulatedMs: durationMs,
      hostFailedProposals: cluster.hostFailedProposals().length,
      leaseLosses: cluster.leaseLosses().length,
      watchdogResets: cluster.watchdogs.resets().length,
      suspicions: counters?.suspicions ?? 0,
      refutations: counters?.refutations ?? 0,
      targetSwitches,
    },
  };
}

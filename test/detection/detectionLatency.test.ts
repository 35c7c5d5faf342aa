import test from "ava";
import { DetectionCluster } from "../../sim/detection/detectionCluster.ts";

/**
 * Crash → failure proposed, with the real host agents, monitors and detector
 * on the simulator, default timings, a leader stand-in recording proposals
 * (the Paxos wiring will add one commit to these figures). Ten hosts crash
 * one after another, spread over several heartbeat phases.
 */
function measure(hosts: number, seed: number) {
  const cluster = new DetectionCluster({ seed, hosts, monitors: 3 });
  const warmUpMs = cluster.termStartWaitMs() + 1_000;
  cluster.world.runUntil(warmUpMs);
  const crashed = new Map<string, number>();
  const victims = Array.from({ length: 10 }, (_, index) => `h${1 + Math.floor((index * hosts) / 10)}`);
  victims.forEach((hostId, index) => {
    cluster.world.schedule(index * 37, () => {
      crashed.set(hostId, cluster.world.now());
      cluster.world.crash(hostId);
    });
  });
  cluster.world.runFor(victims.length * 37 + cluster.crashDetectionBoundMs() + 500);
  const latencies = victims.map((hostId) => {
    const proposal = cluster.hostFailedProposals().find((recorded) => recorded.proposal.hostId === hostId);
    return proposal === undefined ? Number.POSITIVE_INFINITY : proposal.atMs - crashed.get(hostId)!;
  });
  return { cluster, latencies: latencies.sort((a, b) => a - b), victims };
}

for (const hosts of [10, 100, 1_000]) {
  test(`a crashed host is proposed failed within the bound the config gives, at ${hosts} hosts`, (t) => {
    const { cluster, latencies, victims } = measure(hosts, hosts);
    const bound = cluster.crashDetectionBoundMs();
    t.log(`${hosts} hosts: crash → proposed ms min ${latencies[0]!.toFixed(0)}, median ${latencies[5]!.toFixed(0)}, max ${latencies.at(-1)!.toFixed(0)} (bound ${bound})`);
    t.true(latencies.every((latency) => latency <= bound), `latencies ${latencies.map((l) => l.toFixed(0)).join(", ")} above ${bound}`);
    // Never before the lease could have run out: at least L + W after the last heartbeat, so more than L + W − one interval after the crash.
    const floor = cluster.detectorConfig.hostLeaseMs + cluster.detectorConfig.maxIsolationDelayMs - cluster.hostConfig.heartbeatIntervalMs;
    t.true(latencies[0]! > floor, `a proposal came ${latencies[0]} ms after the crash, below ${floor}`);
    const failed = cluster.hostFailedProposals().map((recorded) => recorded.proposal.hostId).sort();
    t.deepEqual(failed, [...victims].sort(), "exactly the crashed hosts, once each");
    t.deepEqual(cluster.checkProposals().unjustified, []);
    t.deepEqual(cluster.leaseLosses(), []);
  });
}

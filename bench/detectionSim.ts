/**
 * Host crash → failure committed, in the simulator with default timings:
 * 1,000 hosts (or --hosts) and 3 real Paxos controllers, each running a
 * monitor and the failure detector (`--stand-in`: 3 monitors and the leader
 * stand-in instead, crash → proposed). Hosts crash in batches at random times
 * (so at every phase of their heartbeat), never more than one batch in
 * flight; prints p50/p99/max over all crashes, and the heartbeat traffic per
 * host per second from the simulated network's counters.
 *
 *   npx tsx bench/detectionSim.ts                      # 1,000 hosts, 200 crashes
 *   npx tsx bench/detectionSim.ts --hosts 100 --crashes 50 --seed 7 --stand-in
 */
import { createSeededRandom } from "../actors/seededRandom.ts";
import { DetectionCluster } from "../sim/detection/detectionCluster.ts";

function argument(name: string, fallback: number, max: number): number {
  const index = process.argv.indexOf(name);
  if (index < 0) return fallback;
  const value = Number(process.argv[index + 1]);
  if (!Number.isSafeInteger(value) || value < 1 || value > max) throw new RangeError(`${name} takes a whole number in [1, ${max}]`);
  return value;
}

const hosts = argument("--hosts", 1_000, 20_000);
const crashes = argument("--crashes", 200, 10_000);
const seed = argument("--seed", 1, 1_000_000);
const batchSize = Math.max(1, Math.min(10, Math.floor(hosts / 50)));
if (crashes > hosts / 2) throw new RangeError("--crashes may be at most half the hosts");

const standIn = process.argv.includes("--stand-in");
const startedAt = performance.now();
const cluster = new DetectionCluster({ seed, hosts, monitors: 3, ...(standIn ? {} : { paxosControllers: 3 }) });
const world = cluster.world;
const random = createSeededRandom(seed);
// Paxos elects a leader (and registers the hosts) first; the detector's term-start wait follows.
world.runUntil(cluster.termStartWaitMs() + (standIn ? 1_000 : 2_000));
const countersBefore = world.networkCounters();
const quietFromMs = world.now();
world.runFor(5_000);
const countersAfter = world.networkCounters();
const quietSeconds = (world.now() - quietFromMs) / 1_000;

const alive = [...cluster.hostIds];
const latencies: number[] = [];
let undetected = 0;
const batchWindowMs = cluster.crashDetectionBoundMs() + 500;
while (latencies.length + undetected < crashes) {
  const batch: Array<{ hostId: string; crashAtMs: number }> = [];
  for (let index = 0; index < batchSize && latencies.length + undetected + batch.length < crashes; index++) {
    const hostId = alive.splice(random.int(alive.length), 1)[0]!;
    const crashAtMs = world.now() + random.next() * 1_000;
    batch.push({ hostId, crashAtMs });
    world.schedule(crashAtMs - world.now(), () => world.crash(hostId));
  }
  world.runFor(1_000 + batchWindowMs);
  for (const { hostId, crashAtMs } of batch) {
    const detectedAtMs = standIn
      ? cluster.hostFailedProposals().find((recorded) => recorded.proposal.hostId === hostId && recorded.atMs >= crashAtMs)?.atMs
      : cluster.committedAtMs(hostId, "failed", crashAtMs);
    if (detectedAtMs === undefined) undetected++;
    else latencies.push(detectedAtMs - crashAtMs);
  }
}
const wallS = (performance.now() - startedAt) / 1_000;
latencies.sort((a, b) => a - b);
const percentile = (p: number) => latencies[Math.min(latencies.length - 1, Math.ceil((p / 100) * latencies.length) - 1)]!;
const check = cluster.checkProposals();
const falseDeclarations = cluster.hostFailedProposals().length - latencies.length - undetected;
const messagesPerHostPerSecond = (countersAfter.delivered - countersBefore.delivered) / quietSeconds / hosts;

console.log(`crash → failure ${standIn ? "proposed (leader stand-in)" : "committed (3 Paxos controllers)"}`);
console.log(`| hosts | crashes | p50 ms | p99 ms | max ms | undetected | other declarations | proposal bound ms |`);
console.log(`|---:|---:|---:|---:|---:|---:|---:|---:|`);
console.log(
  `| ${hosts} | ${latencies.length + undetected} | ${percentile(50).toFixed(0)} | ${percentile(99).toFixed(0)} | ${latencies.at(-1)!.toFixed(0)} | ${undetected} | ${falseDeclarations} | ${cluster.crashDetectionBoundMs()} |`,
);
console.log(
  `\nheartbeat traffic with no faults: ${messagesPerHostPerSecond.toFixed(1)} messages delivered per host per second (pings, acks, and each host's share of digests and their answers)`,
);
console.log(`unjustified declarations: ${check.unjustified.length}; simulated ${(world.now() / 1_000).toFixed(0)} s in ${wallS.toFixed(1)} s wall (seed ${seed})`);

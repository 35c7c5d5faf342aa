/**
 * Issue 4's simulator benchmark, all three levels in one run
 * (sim/detection/detectionRun.ts): 1,000 hosts (or --hosts) with default
 * timings, 3 real Paxos controllers each running a monitor and the failure
 * detector (`--stand-in`: 3 monitors and the leader stand-in instead, host
 * crash → proposed), 1–2 VMs per host (full and para virtualization mixed)
 * watched by one batched poller per host, a guest agent in every VM. Host
 * crashes (in batches, at every phase of a heartbeat), VM crashes, guest
 * hangs and VM hangs are injected at spread-out times of one window; prints p50/p99/max of
 * fault → detected per kind next to its goal, with wall and CPU seconds.
 *
 *   npx tsx bench/detectionSim.ts                      # 1,000 hosts; 200 host crashes, 200 VM crashes, 200 guest hangs, 100 VM hangs
 *   npx tsx bench/detectionSim.ts --hosts 100 --crashes 20 --vm-crashes 50 --guest-hangs 50 --seed 7 --stand-in
 *   npx tsx bench/detectionSim.ts --no-vm-events       # hosts hear no hypervisor events: VM crashes seen by the poll only
 */
import { detectionGoalMs, faultKinds, runDetectionScenario, summarizeDetections, type FaultKind, type LatencySummary } from "../sim/detection/detectionRun.ts";

function argument(name: string, fallback: number, min: number, max: number): number {
  const index = process.argv.indexOf(name);
  if (index < 0) return fallback;
  const value = Number(process.argv[index + 1]);
  if (!Number.isSafeInteger(value) || value < min || value > max) throw new RangeError(`${name} takes a whole number in [${min}, ${max}]`);
  return value;
}

const hosts = argument("--hosts", 1_000, 2, 20_000);
const hostCrashes = argument("--crashes", 200, 0, 10_000);
const vmCrashes = argument("--vm-crashes", 200, 0, 10_000);
const guestHangs = argument("--guest-hangs", 200, 0, 10_000);
const vmHangs = argument("--vm-hangs", 100, 0, 10_000);
const seed = argument("--seed", 1, 1, 1_000_000);
const standIn = process.argv.includes("--stand-in");
const hypervisorEvents = !process.argv.includes("--no-vm-events");
if (hostCrashes > hosts / 2) throw new RangeError("--crashes may be at most half the hosts");

const startedAt = performance.now();
const cpuBefore = process.cpuUsage();
const result = runDetectionScenario({ seed, hosts, hostCrashes, vmCrashes, guestHangs, vmHangs, standIn, hypervisorEvents });
const cpu = process.cpuUsage(cpuBefore);
const wallS = (performance.now() - startedAt) / 1_000;
const cpuS = (cpu.user + cpu.system) / 1e6;

const detectedAs: Record<FaultKind, string> = {
  "host-crash": standIn ? "failure proposed (leader stand-in)" : "failure committed in the view",
  "vm-crash": "VM actor's crashed report at the leader",
  "guest-hang": "guest watchdog's hung report at the leader",
  "vm-hang": "VM actor's hung report at the leader",
};
const ms = (value: number) => (Number.isNaN(value) ? "-" : value.toFixed(0));
const row = (label: string, what: string, summary: LatencySummary, goalMs: number | undefined) =>
  `| ${label} | ${what} | ${summary.faults} | ${summary.faults - summary.detected} | ${ms(summary.p50Ms)} | ${ms(summary.p99Ms)} | ${ms(summary.maxMs)} | ${goalMs === undefined ? "" : `≤ ${goalMs}${summary.p99Ms <= goalMs && summary.detected === summary.faults ? " ✓" : " ✗"}`} |`;

console.log(
  `${hosts} hosts, ${result.vmsPlaced} VMs with guest agents (${result.vmsReadyAtStart} reported running and alive before the faults), seed ${seed}` +
    (hypervisorEvents ? "" : "; hosts hear no hypervisor events"),
);
console.log(`| fault | detected = | faults | undetected | p50 ms | p99 ms | max ms | goal p99 ms |`);
console.log(`|---|---|---:|---:|---:|---:|---:|---|`);
for (const kind of faultKinds) {
  console.log(row(kind, detectedAs[kind], summarizeDetections(result.outcomes, kind), detectionGoalMs[kind]));
  if (kind === "host-crash") continue;
  for (const virtualization of ["full", "para"] as const) console.log(row(`  ${kind}, ${virtualization}-virt`, "", summarizeDetections(result.outcomes, kind, virtualization), undefined));
}
console.log(
  `\nfalse alarms: ${result.otherHostDeclarations} host declarations of hosts that did not crash, ${result.unjustifiedDeclarations} unjustified (by ground truth), ` +
    `${result.vmFalseAlarms} unhealthy VM/guest reports of VMs without a fault; ${result.faultsNotInjected} VM faults not injected (VM no longer running)`,
);
console.log(`host crash → proposal bound ${result.hostCrashBoundMs} ms; ${result.messagesPerHostPerSecond.toFixed(1)} messages delivered per host per second with no faults (heartbeats, digests, guest beats, VM reports, Paxos)`);
console.log(
  `simulated ${(result.virtualMs / 1_000).toFixed(1)} s in ${wallS.toFixed(1)} s wall, ${cpuS.toFixed(1)} s CPU; peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`,
);

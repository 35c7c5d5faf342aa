/**
 * Host crash → all its VMs running elsewhere, in the simulator, on the whole
 * system (every scenario component: Paxos controllers, heartbeats, leases,
 * the failure detector, simulated hypervisors with a VM actor per VM, the
 * manager and command multicast). Issue 5's benchmark: 1,000 hosts and 20,000
 * VMs by default; three cases, each its own run from boot:
 *
 *   one      one host crashes
 *   ten      10 hosts crash at the same instant
 *   rack     a rack of 50 hosts is partitioned away from everyone else
 *
 * The time of a VM is from the fault to the moment the simulated hypervisors
 * (ground truth, not the manager's opinion) show it running on another host.
 * Also prints the simulator's speed (simulated / wall time) per case.
 *
 *   npm run bench:recovery
 *   npx tsx bench/recoverySim.ts --hosts 100 --vms-per-host 20 --cases one,ten
 *   ... --log /tmp/recovery   (writes each case's scenario log to /tmp/recovery/<case>.log)
 *   ... --progress            (virtual time, CPU, heap, timers fired and messages sent and delivered so far, on stderr every 5 virtual s)
 *   ... --idle-ticks          (host learners tick every interval even when not behind: the default before 2026-11-25)
 *
 * `--vm-monitoring-only` measures VM monitoring alone instead (hosts with
 * simulated hypervisors and a VM actor per VM, nothing else, 60 virtual s):
 * CPU seconds with a poll timer per VM against one batched poll per host.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { getHeapStatistics } from "node:v8";
import { createRejectionCounter } from "../actors/codec/rejectionCounter.ts";
import { createSeededRandom } from "../actors/seededRandom.ts";
import { createVmEventRouter } from "../actors/vm/vmEventRouter.ts";
import { createVmHostPoller } from "../actors/vm/vmHostPoller.ts";
import { startVmWatch } from "../actors/vm/vmWatch.ts";
import { defaultPaxosTimings } from "../machines/paxos/config.ts";
import { defaultVmMonitorConfig } from "../machines/vm/vmHealth.ts";
import { controllerProcessTimings } from "../runtime/controller/controllerConfig.ts";
import { SimHypervisors } from "../sim/simHypervisor.ts";
import { SimWorld } from "../sim/world.ts";
import type { ClusterAssembly, ScenarioComponent } from "../sim/scenario/clusterAssembly.ts";
import { defaultAssembly } from "../sim/scenario/defaultAssembly.ts";
import type { HypervisorComponentApi } from "../sim/scenario/hypervisorComponent.ts";
import { parseCluster } from "../sim/scenario/parseCluster.ts";
import { parseCommands } from "../sim/scenario/parseCommands.ts";
import { runLoadedScenario } from "../sim/scenario/runScenario.ts";
import { formatProblem } from "../sim/scenario/scenarioTypes.ts";

const caseNames = ["one", "ten", "rack"] as const;
type CaseName = (typeof caseNames)[number];
/** How often the probe reads the hypervisors' ground truth. */
const probeIntervalMs = 50;
/** Simulated time the cluster gets to form and place every VM before the fault. */
const settleBeforeFaultMs = 20_000;
/** Simulated time after the fault; a VM not running elsewhere by then counts as not recovered. */
const observeAfterFaultMs = 20_000;
const rackSize = 50;
/** How often (virtual time) the probe samples the V8 heap for the peak column. */
const heapSampleIntervalMs = 1_000;
/** With --progress, a line on stderr this often (virtual time): long runs at 1,000 hosts take many minutes. */
const progressEveryMs = 5_000;

function argument(name: string, fallback: number, max: number): number {
  const index = process.argv.indexOf(name);
  if (index < 0) return fallback;
  const value = Number(process.argv[index + 1]);
  if (!Number.isSafeInteger(value) || value < 1 || value > max) throw new RangeError(`${name} takes a whole number in [1, ${max}]`);
  return value;
}

function casesArgument(): CaseName[] {
  const index = process.argv.indexOf("--cases");
  if (index < 0) return [...caseNames];
  const names = (process.argv[index + 1] ?? "").split(",");
  for (const name of names) if (!(caseNames as readonly string[]).includes(name)) throw new RangeError(`--cases takes a comma list of ${caseNames.join(", ")}`);
  return names as CaseName[];
}

const hosts = argument("--hosts", 1_000, 5_000);
const vmsPerHost = argument("--vms-per-host", 20, 50);
const seed = argument("--seed", 1, 1_000_000);
const cases = casesArgument();
const showProgress = process.argv.includes("--progress");
/** Host learners tick every interval even when not behind (LearnerActorOptions.idleTicks true), as before 2026-11-25: for comparison. */
const withIdleTicks = process.argv.includes("--idle-ticks");
/** The leader opens a slot for a partial batch only below this many slots in flight: the controller processes' setting (runtime/controller), not the pure default. */
const partialBatchSlots = argument("--partial-batch-slots", controllerProcessTimings.maxInFlightSlotsForPartialBatches ?? defaultPaxosTimings.maxInFlightSlotsForPartialBatches, defaultPaxosTimings.maxInFlightSlots);
const logIndex = process.argv.indexOf("--log");
const logDirectory = logIndex < 0 ? undefined : process.argv[logIndex + 1];
if (logIndex >= 0 && (logDirectory === undefined || logDirectory.startsWith("--"))) throw new RangeError("--log takes a directory");
if (hosts < rackSize * 2 && cases.includes("rack")) throw new RangeError(`the rack case needs at least ${rackSize * 2} hosts`);

function clusterJson(): string {
  // 20 VMs of 2 CPUs / 4 GiB on 64 CPU / 256 GiB hosts leaves room for F = 1 and for the failed hosts' VMs
  return JSON.stringify({
    description: `recovery benchmark: ${hosts} hosts, ${hosts * vmsPerHost} VMs`,
    seed,
    duration: `${settleBeforeFaultMs + observeAfterFaultMs}ms`,
    controllers: "c1-c3",
    monitors: "c1-c3",
    hosts: [{ id: `h1-h${hosts}`, capacity: { cpu: 64, memoryMiB: 262_144 } }],
    vms: [{ id: `vm1-vm${hosts * vmsPerHost}`, host: `h1-h${hosts}`, resources: { cpu: 2, memoryMiB: 4_096 } }],
    requires: ["manager"],
    components: { paxos: { partialBatchSlots: partialBatchSlots, ...(withIdleTicks ? { learnerIdleTicks: "on" } : {}) } },
  });
}

function faultedHosts(name: CaseName): string[] {
  const random = createSeededRandom(seed).fork(name);
  if (name === "rack") {
    const first = 1 + random.int(hosts - rackSize);
    return Array.from({ length: rackSize }, (_, index) => `h${first + index}`);
  }
  const count = name === "one" ? 1 : 10;
  const chosen = new Set<string>();
  while (chosen.size < count) chosen.add(`h${1 + random.int(hosts)}`);
  return [...chosen];
}

function commandsText(name: CaseName, faulted: readonly string[]): string {
  if (name === "rack") return `${settleBeforeFaultMs}ms partition ${faulted.join(",")} | rest\n`;
  return `${settleBeforeFaultMs}ms crash ${faulted.join(",")}\n`;
}

interface Measurement {
  readonly latenciesMs: number[];
  notRecovered: number;
  vmsOnFaulted: number;
  doublePlacements: number;
  peakHeapBytes: number;
}

/** Reads the hypervisors' own state every `probeIntervalMs` once the fault has happened. */
function recoveryProbe(faulted: readonly string[], measurement: Measurement): ScenarioComponent<undefined> {
  const faultedSet = new Set(faulted);
  return {
    name: "recovery-probe",
    provides: [],
    uses: ["hypervisor"],
    wanted: () => true,
    readSettings: (reader) => {
      reader.finish();
      return undefined;
    },
    start: (context) => {
      const api = context.api<HypervisorComponentApi>("hypervisor");
      if (api === undefined) throw new Error("the recovery probe needs the hypervisor component");
      const waiting = new Map<string, string>();
      const probe = () => {
        const nowMs = context.world.now();
        for (const [vmId] of waiting) {
          const hostId = api.hostOf(vmId);
          if (hostId !== undefined && !faultedSet.has(hostId)) {
            measurement.latenciesMs.push(nowMs - settleBeforeFaultMs);
            waiting.delete(vmId);
          }
        }
        if (nowMs + probeIntervalMs <= settleBeforeFaultMs + observeAfterFaultMs) context.world.schedule(probeIntervalMs, probe);
      };
      const sampleHeap = () => {
        const heapBytes = getHeapStatistics().used_heap_size;
        measurement.peakHeapBytes = Math.max(measurement.peakHeapBytes, heapBytes);
        const nowMs = context.world.now();
        if (showProgress && nowMs % progressEveryMs === 0) {
          const cpu = process.cpuUsage();
          const network = context.world.networkCounters();
          console.error(
            `  ${(nowMs / 1_000).toFixed(0)} virtual s: ${((cpu.user + cpu.system) / 1e6).toFixed(1)} CPU s so far, heap ${(heapBytes / 2 ** 20).toFixed(0)} MiB, ` +
              `timers fired ${context.world.clock.timersFired}, messages sent ${network.sent}, delivered ${network.delivered}`,
          );
        }
        context.world.schedule(heapSampleIntervalMs, sampleHeap);
      };
      sampleHeap();
      // just before the fault: which VMs run on the hosts about to fail
      context.world.schedule(settleBeforeFaultMs - 1, () => {
        for (const hostId of faulted) for (const vmId of api.hypervisors.vmIds(hostId)) if (api.hostOf(vmId) === hostId) waiting.set(vmId, hostId);
        measurement.vmsOnFaulted = waiting.size;
        context.world.schedule(1, probe);
      });
      return {
        finish: () => {
          measurement.notRecovered = waiting.size;
          measurement.doublePlacements = api.hypervisors.registry.overlaps().length;
        },
      };
    },
  };
}

function percentile(sorted: readonly number[], share: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(share * sorted.length) - 1)]!;
}

function runCase(name: CaseName): string {
  const faulted = faultedHosts(name);
  const cluster = parseCluster(clusterJson());
  if (!cluster.ok) throw new Error(cluster.problems.map(formatProblem).join("; "));
  const commands = parseCommands(commandsText(name, faulted), cluster.value);
  if (!commands.ok) throw new Error(commands.problems.map(formatProblem).join("; "));
  const measurement: Measurement = { latenciesMs: [], notRecovered: 0, vmsOnFaulted: 0, doublePlacements: 0, peakHeapBytes: 0 };
  const assembly: ClusterAssembly = defaultAssembly().register(recoveryProbe(faulted, measurement));
  const startedAt = performance.now();
  const cpuBefore = process.cpuUsage();
  const output = runLoadedScenario({ name: `recovery-${name}`, cluster: cluster.value, commands: commands.value, expectedLog: undefined }, { assembly });
  const wallS = (performance.now() - startedAt) / 1_000;
  const cpuUsed = process.cpuUsage(cpuBefore);
  const cpuS = (cpuUsed.user + cpuUsed.system) / 1e6;
  if (logDirectory !== undefined) {
    mkdirSync(logDirectory, { recursive: true });
    writeFileSync(join(logDirectory, `${name}.log`), output.log);
  }
  const sorted = [...measurement.latenciesMs].sort((a, b) => a - b);
  const failures = output.failures.length === 0 ? "none" : `${output.failures.length} (first: ${output.failures[0]})`;
  return [
    name.padEnd(5),
    String(faulted.length).padStart(6),
    String(measurement.vmsOnFaulted).padStart(6),
    percentile(sorted, 0.5).toFixed(0).padStart(8),
    percentile(sorted, 0.99).toFixed(0).padStart(8),
    (sorted.at(-1) ?? Number.NaN).toFixed(0).padStart(8),
    String(measurement.notRecovered).padStart(7),
    String(measurement.doublePlacements).padStart(7),
    wallS.toFixed(1).padStart(7),
    (output.virtualMs / 1_000 / wallS).toFixed(2).padStart(7),
    cpuS.toFixed(1).padStart(6),
    (output.virtualMs / 1_000 / cpuS).toFixed(2).padStart(8),
    (measurement.peakHeapBytes / 2 ** 20).toFixed(0).padStart(8),
    `  invariant failures: ${failures}`,
  ].join(" ");
}

/** CPU seconds for 60 virtual seconds of VM monitoring alone (no fault: steady VMs). */
function vmMonitoringCpuS(polledByHost: boolean): number {
  const hypervisors = new SimHypervisors();
  const world = new SimWorld({ seed, clusterId: "bench", extraPorts: (context) => ({ hypervisor: hypervisors.hypervisorFor(context) }) });
  for (let host = 1; host <= hosts; host++) {
    const vmIds = Array.from({ length: vmsPerHost }, (_, index) => `vm${host}x${index + 1}`);
    world.addNode(`h${host}`, (ports) => {
      const router = createVmEventRouter(ports.hypervisor!);
      const poller = polledByHost
        ? createVmHostPoller({
            clock: ports.clock,
            hypervisor: ports.hypervisor!,
            metrics: ports.metrics,
            pollIntervalMs: defaultVmMonitorConfig.vmPollIntervalMs,
            unreachableAfterPolls: defaultVmMonitorConfig.vmUnreachableAfterPolls,
          })
        : undefined;
      const rejections = createRejectionCounter(ports);
      const watches = vmIds.map((vmId) => startVmWatch(ports, { vmId, desired: "running", router, rejections, watchGuest: false, ...(poller ? { poller } : {}) }));
      return {
        stop: () => {
          for (const watch of watches) watch.dispose();
          poller?.dispose();
          router.dispose();
        },
      };
    });
    for (const vmId of vmIds) hypervisors.placeVm(`h${host}`, { vmId, virtualization: "full", vcpus: 2, memoryMiB: 4_096 });
  }
  const before = process.cpuUsage();
  world.runFor(60_000);
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1e6;
}

if (process.argv.includes("--vm-monitoring-only")) {
  console.log(`vm monitoring alone: ${hosts} hosts, ${hosts * vmsPerHost} VMs, 60 virtual s, steady`);
  console.log(`  poll timer per VM:      ${vmMonitoringCpuS(false).toFixed(2)} CPU s`);
  console.log(`  one poll per host:      ${vmMonitoringCpuS(true).toFixed(2)} CPU s`);
  process.exit(0);
}

console.log(`recovery in the simulator: ${hosts} hosts, ${hosts * vmsPerHost} VMs, 3 controllers, seed ${seed}; fault at ${settleBeforeFaultMs / 1_000} s, observed ${observeAfterFaultMs / 1_000} s`);
// sim× is simulated / wall time; on a shared machine wall time depends on the load, so also simulated / CPU time
console.log("case  hosts    VMs   p50 ms   p99 ms   max ms  unrec.  double   wall s   sim×  CPU s  sim×CPU heap MiB");
for (const name of cases) console.log(runCase(name));

/**
 * Random scenarios for the whole-system fuzzer (after TigerBeetle's VOPR): a
 * seed becomes a small random cluster and a random fault schedule, written in
 * the scenario library's own file formats (cluster.json and commands, see
 * docs/scenarios.md) and parsed by the same parsers. A failing seed can so be
 * saved as a scenario directory and replayed with `haring sim run`.
 *
 * The schedule has two phases. Until `faultWindowMs` anything goes: crashes,
 * restarts, pauses, partitions of any shape, one-way cuts, loss, duplication,
 * latency, reordering, clock drift, torn writes, slow disks, NATS loss, VM
 * crashes and hangs, guest hangs, maintenance (by live migration on the
 * hosts that half the runs give it), VMs added and removed. At
 * `faultWindowMs` the world is made whole (heal, no loss, crashed nodes
 * restarted, paused nodes resumed, NATS restored, hung guests recovered,
 * maintenance ended) and the
 * run goes on for `settleMs`, long enough for every liveness invariant the
 * components register ("after healing every VM that should run runs") to be
 * due. Safety invariants are checked throughout by the components.
 *
 * Only capabilities the assembly provides are used, so the fuzzer grows with
 * the components: with only heartbeats it fuzzes heartbeats.
 */
import { createSeededRandom } from "../../actors/seededRandom.ts";
import type { Random } from "../../actors/ports/random.ts";
import { scenarioCapabilities, type ScenarioCapability } from "../scenario/capabilities.ts";
import { parseCluster } from "../scenario/parseCluster.ts";
import { parseCommands } from "../scenario/parseCommands.ts";
import { formatProblem, type Scenario } from "../scenario/scenarioTypes.ts";
import { shuffled } from "../shuffled.ts";

export const fuzzScenarioLimits = {
  maxHosts: 32,
  maxVmsPerHost: 8,
  maxFaultsPerRun: 40,
  maxFaultWindowMs: 600_000,
  maxSettleMs: 600_000,
} as const;

/**
 * Clock drift the fuzzer gives a node, at most: half the detector's assumed
 * bound on clock-rate error (`maxClockRateErrorPpm`, 10,000 ppm), so runs
 * stay inside the assumptions the safety argument rests on. The fuzzer never
 * jumps a clock (an offset): the Clock port is monotonic by contract.
 */
export const maxFuzzDriftPpm = 5_000;
/**
 * One-way latencies the fuzzer sets, with jitter: at most 20 + 10 ms, so a
 * round trip stays inside the host agent's default ack timeout (80 ms). A
 * cluster whose round trips exceed its ack timeout misses every ack and
 * isolates itself: the configuration assumes a LAN (docs/failure-detection.md),
 * and the fuzzer checks the system inside its assumptions.
 */
export const fuzzLatenciesMs: readonly number[] = [0.2, 1, 5, 10, 20];
export const fuzzLatencyJittersMs: readonly number[] = [0, 0.1, 1, 10];
/** A pause longer than this is a crash for every purpose (the watchdog fires long before). */
export const maxFuzzPauseMs = 8_000;
/** Faults start this long after boot, once the cluster has settled. */
export const faultStartMs = 4_000;

export interface FuzzScenarioOptions {
  /** Hosts per run; undefined: 3 to 8, drawn from the seed. */
  readonly hosts?: number;
  /** Random faults per run; undefined: 2 to 14, drawn from the seed. */
  readonly faults?: number;
  readonly faultWindowMs: number;
  readonly settleMs: number;
  /** What the assembly provides; the generator uses nothing else. */
  readonly capabilities: readonly ScenarioCapability[];
}

export const defaultFuzzScenarioOptions = { faultWindowMs: 20_000, settleMs: 25_000 } as const;

export interface GeneratedScenario {
  readonly seed: number;
  /** The cluster.json text. */
  readonly clusterJson: string;
  /** The commands file text. */
  readonly commandsText: string;
  readonly scenario: Scenario;
}

function pick<T>(random: Random, items: readonly T[]): T {
  if (items.length === 0) throw new RangeError("pick from an empty list");
  return items[random.int(items.length)]!;
}

function between(random: Random, low: number, high: number): number {
  return low + random.int(high - low + 1);
}

function seconds(ms: number): string {
  return ms % 1_000 === 0 ? `${ms / 1_000}s` : `${ms}ms`;
}

interface ClusterDraft {
  readonly controllers: readonly string[];
  readonly monitors: readonly string[];
  readonly hosts: readonly string[];
  readonly vmHosts: Map<string, string>;
  readonly nodes: readonly string[];
}

function draftCluster(random: Random, seed: number, options: FuzzScenarioOptions, has: (capability: ScenarioCapability) => boolean): { draft: ClusterDraft; json: string } {
  const hostCount = options.hosts ?? between(random, 3, 8);
  if (!Number.isSafeInteger(hostCount) || hostCount < 1 || hostCount > fuzzScenarioLimits.maxHosts) {
    throw new RangeError(`hosts must be a whole number in [1, ${fuzzScenarioLimits.maxHosts}], got ${hostCount}`);
  }
  const controllers = has(scenarioCapabilities.paxos) ? Array.from({ length: random.next() < 0.8 ? 3 : 5 }, (_, index) => `c${index + 1}`) : [];
  const extraMonitors = Array.from({ length: controllers.length > 0 ? random.int(3) : 3 }, (_, index) => `m${index + 1}`);
  const monitors = [...controllers, ...extraMonitors];
  const hosts = Array.from({ length: hostCount }, (_, index) => `h${index + 1}`);
  const document: Record<string, unknown> = {
    description: `whole-system fuzz run, seed ${seed}`,
    seed,
    duration: seconds(options.faultWindowMs + options.settleMs),
    // a watchdog may reset a host the schedule meant to crash or pause later
    refusedCommands: "skip",
  };
  if (has(scenarioCapabilities.detection)) document.requires = [scenarioCapabilities.detection];
  if (controllers.length > 0) document.controllers = controllers.join(",");
  document.monitors = monitors;
  document.hosts = hosts.map((hostId) => ({ id: hostId, capacity: { cpu: pick(random, [16, 32, 64]), memoryMiB: pick(random, [65_536, 131_072, 262_144]) }, labels: { rack: `r${1 + random.int(2)}` } }));
  // Half the runs with a manager give most hosts live migration, so maintenance evacuates by migrating under
  // faults. Drawn from a fork of its own: the draws above and below, and so every earlier seed's other choices, stay as they were.
  const migration = random.fork("live-migration");
  if (has(scenarioCapabilities.manager) && migration.next() < 0.5) {
    for (const host of document.hosts as Record<string, unknown>[]) if (migration.next() < 0.8) host.liveMigration = true;
  }
  const vmHosts = new Map<string, string>();
  if (has(scenarioCapabilities.hypervisor)) {
    const vms: unknown[] = [];
    let vmNumber = 0;
    for (const hostId of hosts) {
      const count = random.int(Math.min(4, fuzzScenarioLimits.maxVmsPerHost) + 1);
      for (let index = 0; index < count; index++) {
        vmNumber++;
        const vmId = `vm${vmNumber}`;
        vmHosts.set(vmId, hostId);
        vms.push({
          id: vmId,
          host: hostId,
          resources: { cpu: pick(random, [1, 2, 4]), memoryMiB: pick(random, [1_024, 2_048, 4_096, 8_192]) },
          priority: pick(random, ["high", "medium", "low"]),
          virt: pick(random, ["full", "para"]),
        });
      }
    }
    document.vms = vms;
    const vmIds = [...vmHosts.keys()];
    if (has(scenarioCapabilities.manager) && vmIds.length >= 2 && random.next() < 0.5) {
      const [first, second] = shuffled(random, vmIds);
      document.rules = [{ type: "anti-affinity", vms: [first, second] }];
    }
  }
  const nodes = [...new Set([...controllers, ...monitors, ...hosts])];
  return { draft: { controllers, monitors, hosts, vmHosts, nodes }, json: `${JSON.stringify(document, null, 2)}\n` };
}

type FaultKind =
  | "crash"
  | "pause"
  | "partition"
  | "one-way"
  | "heal"
  | "loss"
  | "dup"
  | "latency"
  | "reorder"
  | "drift"
  | "torn-writes"
  | "sync-latency"
  | "nats-loss"
  | "vm-crash"
  | "vm-hang"
  | "guest-hang"
  | "maintenance"
  | "vm-add"
  | "vm-remove";

const faultNeeds: Readonly<Record<FaultKind, ScenarioCapability | undefined>> = {
  crash: undefined,
  pause: undefined,
  partition: undefined,
  "one-way": undefined,
  heal: undefined,
  loss: undefined,
  dup: undefined,
  latency: undefined,
  reorder: undefined,
  drift: undefined,
  "torn-writes": undefined,
  "sync-latency": undefined,
  "nats-loss": scenarioCapabilities.nats,
  "vm-crash": scenarioCapabilities.hypervisor,
  "vm-hang": scenarioCapabilities.hypervisor,
  "guest-hang": scenarioCapabilities.guest,
  maintenance: scenarioCapabilities.manager,
  "vm-add": scenarioCapabilities.manager,
  "vm-remove": scenarioCapabilities.manager,
};

/** Relative weights: network shapes and crashes dominate, as in VOPR. */
const faultWeights: Readonly<Record<FaultKind, number>> = {
  crash: 6,
  pause: 4,
  partition: 6,
  "one-way": 3,
  heal: 4,
  loss: 2,
  dup: 2,
  latency: 2,
  reorder: 2,
  drift: 1,
  "torn-writes": 1,
  "sync-latency": 1,
  "nats-loss": 1,
  "vm-crash": 3,
  "vm-hang": 2,
  "guest-hang": 2,
  maintenance: 2,
  "vm-add": 2,
  "vm-remove": 1,
};

interface ScheduleState {
  readonly lines: { atMs: number; text: string }[];
  /** Nodes this schedule crashed and has not restarted. */
  readonly crashed: Set<string>;
  /** Nodes this schedule paused or restarted, until when they are busy (paused, booting). */
  readonly pausedUntilMs: Map<string, number>;
  /** Nodes whose busy time in `pausedUntilMs` comes from a pause (not a restart). */
  readonly pausedBy: Set<string>;
  readonly hungGuests: Set<string>;
  readonly maintenance: Set<string>;
  readonly vmHosts: Map<string, string>;
  natsLost: boolean;
  addedVms: number;
}

function groupsOf(random: Random, nodes: readonly string[]): string[][] {
  const order = shuffled(random, nodes);
  const groupCount = Math.min(order.length, between(random, 2, 3));
  const groups: string[][] = Array.from({ length: groupCount }, () => []);
  order.forEach((node, index) => groups[index < groupCount ? index : random.int(groupCount)]!.push(node));
  return groups;
}

function drawFault(random: Random, kinds: readonly FaultKind[]): FaultKind {
  const total = kinds.reduce((sum, kind) => sum + faultWeights[kind], 0);
  let ticket = random.int(total);
  for (const kind of kinds) {
    ticket -= faultWeights[kind];
    if (ticket < 0) return kind;
  }
  return kinds[kinds.length - 1]!;
}

function scheduleFault(random: Random, kind: FaultKind, atMs: number, draft: ClusterDraft, state: ScheduleState, faultWindowMs: number): void {
  const add = (text: string, whenMs = atMs) => state.lines.push({ atMs: whenMs, text });
  const upNodes = draft.nodes.filter((node) => !state.crashed.has(node) && (state.pausedUntilMs.get(node) ?? 0) < atMs);
  const vmIds = [...state.vmHosts.keys()];
  switch (kind) {
    case "crash": {
      if (upNodes.length === 0) return;
      const node = pick(random, upNodes);
      add(`crash ${node}`);
      state.crashed.add(node);
      // most crashed nodes come back inside the window; the rest at the heal
      const restartAtMs = atMs + between(random, 500, 10_000);
      if (restartAtMs < faultWindowMs && random.next() < 0.7) {
        add(`restart ${node}`, restartAtMs);
        state.crashed.delete(node);
        state.pausedUntilMs.set(node, restartAtMs);
        state.pausedBy.delete(node);
      }
      return;
    }
    case "pause": {
      if (upNodes.length === 0) return;
      const node = pick(random, upNodes);
      const durationMs = between(random, 100, maxFuzzPauseMs);
      add(`pause ${node} ${durationMs}ms`);
      state.pausedUntilMs.set(node, atMs + durationMs);
      state.pausedBy.add(node);
      return;
    }
    case "partition":
      add(`partition ${groupsOf(random, draft.nodes).map((group) => group.join(",")).join(" | ")}`);
      return;
    case "one-way": {
      const [from, to] = groupsOf(random, draft.nodes);
      add(`one-way ${from!.join(",")} -> ${to!.join(",")}`);
      return;
    }
    case "heal":
      add("heal");
      return;
    case "loss":
      add(`loss ${random.int(21)}%`);
      return;
    case "dup":
      add(`dup ${random.int(11)}%`);
      return;
    case "latency":
      add(`latency ${pick(random, fuzzLatenciesMs)}ms ${pick(random, fuzzLatencyJittersMs)}ms`);
      return;
    case "reorder":
      add(`reorder ${random.int(31)}% ${pick(random, [1, 5, 20])}ms`);
      return;
    case "drift": {
      const node = pick(random, draft.nodes);
      const driftPpm = between(random, -maxFuzzDriftPpm, maxFuzzDriftPpm);
      add(`skew ${node} +0ms ${driftPpm}ppm`);
      return;
    }
    case "torn-writes":
      add(`torn-writes ${random.int(101)}%`);
      return;
    case "sync-latency":
      add(`sync-latency ${pick(random, [0, 1, 5, 20])}ms`);
      return;
    case "nats-loss": {
      if (state.natsLost) return;
      add("nats-loss");
      const restoreAtMs = atMs + between(random, 500, 6_000);
      if (restoreAtMs < faultWindowMs) add("nats-restore", restoreAtMs);
      else state.natsLost = true;
      return;
    }
    case "vm-crash":
      if (vmIds.length > 0) add(`vm-crash ${pick(random, vmIds)}`);
      return;
    case "vm-hang":
      if (vmIds.length > 0) add(`vm-hang ${pick(random, vmIds)}`);
      return;
    case "guest-hang": {
      const candidates = vmIds.filter((vmId) => !state.hungGuests.has(vmId));
      if (candidates.length === 0) return;
      const vmId = pick(random, candidates);
      add(`guest-hang ${vmId}`);
      state.hungGuests.add(vmId);
      return;
    }
    case "maintenance": {
      const hostId = pick(random, draft.hosts);
      const on = !state.maintenance.has(hostId);
      add(`maintenance ${hostId} ${on ? "on" : "off"}`);
      if (on) state.maintenance.add(hostId);
      else state.maintenance.delete(hostId);
      return;
    }
    case "vm-add": {
      state.addedVms++;
      const vmId = `new${state.addedVms}`;
      const host = random.next() < 0.5 ? ` host=${pick(random, draft.hosts)}` : "";
      add(`vm-add ${vmId}${host} cpu=${pick(random, [1, 2, 4])} memoryMiB=${pick(random, [1_024, 4_096])} priority=${pick(random, ["high", "medium", "low"])}`);
      state.vmHosts.set(vmId, "");
      return;
    }
    case "vm-remove":
      if (vmIds.length > 0) {
        const vmId = pick(random, vmIds);
        add(`vm-remove ${vmId}`);
        state.vmHosts.delete(vmId);
        state.hungGuests.delete(vmId);
      }
      return;
  }
}

/** One seed's scenario. Throws RangeError for options out of bounds; never for a seed. */
export function generateFuzzScenario(seed: number, options: FuzzScenarioOptions): GeneratedScenario {
  if (!Number.isSafeInteger(options.faultWindowMs) || options.faultWindowMs <= faultStartMs || options.faultWindowMs > fuzzScenarioLimits.maxFaultWindowMs) {
    throw new RangeError(`faultWindowMs must be a whole number in (${faultStartMs}, ${fuzzScenarioLimits.maxFaultWindowMs}], got ${options.faultWindowMs}`);
  }
  if (!Number.isSafeInteger(options.settleMs) || options.settleMs < 1_000 || options.settleMs > fuzzScenarioLimits.maxSettleMs) {
    throw new RangeError(`settleMs must be a whole number in [1000, ${fuzzScenarioLimits.maxSettleMs}], got ${options.settleMs}`);
  }
  const random = createSeededRandom(seed);
  const provided = new Set(options.capabilities);
  const has = (capability: ScenarioCapability) => provided.has(capability);
  const { draft, json } = draftCluster(random.fork("cluster"), seed, options, has);

  const schedule = random.fork("schedule");
  const faultCount = options.faults ?? between(schedule, 2, 14);
  if (!Number.isSafeInteger(faultCount) || faultCount < 0 || faultCount > fuzzScenarioLimits.maxFaultsPerRun) {
    throw new RangeError(`faults must be a whole number in [0, ${fuzzScenarioLimits.maxFaultsPerRun}], got ${faultCount}`);
  }
  const kinds = (Object.keys(faultWeights) as FaultKind[]).filter((kind) => {
    const need = faultNeeds[kind];
    return need === undefined || has(need);
  });
  const state: ScheduleState = {
    lines: [],
    crashed: new Set(),
    pausedUntilMs: new Map(),
    pausedBy: new Set(),
    hungGuests: new Set(),
    maintenance: new Set(),
    vmHosts: new Map(draft.vmHosts),
    natsLost: false,
    addedVms: 0,
  };
  const times = Array.from({ length: faultCount }, () => faultStartMs + schedule.int(options.faultWindowMs - faultStartMs)).sort((a, b) => a - b);
  for (const atMs of times) scheduleFault(schedule, drawFault(schedule, kinds), atMs, draft, state, options.faultWindowMs);

  // make the world whole, then let liveness show
  const wholeAtMs = options.faultWindowMs;
  const whole: string[] = ["heal", "loss 0%", "dup 0%", "reorder 0% 0ms", "latency 0.2ms 0.1ms", "torn-writes 0%", "sync-latency 0ms"];
  for (const node of draft.nodes) if (state.crashed.has(node)) whole.push(`restart ${node}`);
  // a pause drawn late runs past the window: end it (refused, and skipped, if a watchdog reset the host meanwhile)
  for (const node of draft.nodes) if (!state.crashed.has(node) && (state.pausedUntilMs.get(node) ?? 0) > wholeAtMs && state.pausedBy.has(node)) whole.push(`resume ${node}`);
  if (state.natsLost) whole.push("nats-restore");
  for (const vmId of state.hungGuests) whole.push(`guest-recover ${vmId}`);
  for (const hostId of state.maintenance) whole.push(`maintenance ${hostId} off`);
  for (const text of whole) state.lines.push({ atMs: wholeAtMs, text });

  // stable sort keeps each instant's commands in the order they were drawn
  const ordered = state.lines.map((line, index) => ({ ...line, index })).sort((a, b) => a.atMs - b.atMs || a.index - b.index);
  const commandsText = `# whole-system fuzz schedule, seed ${seed}: faults until ${seconds(wholeAtMs)}, then whole again\n${ordered.map((line) => `${line.atMs}ms ${line.text}`).join("\n")}\n`;

  const cluster = parseCluster(json);
  if (!cluster.ok) throw new Error(`fuzz seed ${seed}: generated cluster.json is invalid: ${cluster.problems.map(formatProblem).join("; ")}`);
  const commands = parseCommands(commandsText, cluster.value);
  if (!commands.ok) throw new Error(`fuzz seed ${seed}: generated commands are invalid: ${commands.problems.map(formatProblem).join("; ")}`);
  return { seed, clusterJson: json, commandsText, scenario: { name: `fuzz-${seed}`, cluster: cluster.value, commands: commands.value, expectedLog: undefined } };
}

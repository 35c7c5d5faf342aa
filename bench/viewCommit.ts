/**
 * View commit benchmark, haring's Multi-Paxos against etcd 3.4, in one run on
 * this machine (ARCHITECTURE §8: latency ≤ etcd, throughput ≥ etcd, leader
 * loss → next commit ≤ 1 s).
 *
 *   npx tsx bench/viewCommit.ts [--warmup-commands N] [--latency-commands N] [--throughput-seconds S] [--failovers K] [--only haring|etcd|floor|floor-direct] [--json] [--profile-dir DIR] [--with-manager] [--timing key=value ...] [--no-kv-mirror] [--latencies-dir DIR [--stall-probes]] [--controller-node-option OPTION ...] [--interleave] [--rounds N] [--keep-run-dir]
 *
 * haring: 3 controller processes (runtime/controller/main.ts, default
 * timings, fsync on every log write) over one nats-server on loopback; the
 * client is a host learner with a proposal client in this process, and a
 * command counts as committed when this process's learner has applied it
 * (after a majority of fsyncs and the commit broadcast). Commands are
 * `vm.add` view commands of 256 bytes (msgpack).
 *
 * etcd: a 3-member cluster (Debian etcd-server 3.4, default heartbeat and
 * election timeouts, its WAL fsync'ed) on loopback ports; the client sends
 * `PUT` of 256-byte values to the leader through etcd's HTTP/JSON gateway
 * (`/v3/kv/put`, keep-alive connections); a put counts when etcd answers.
 *
 * One system after the other by default, each alone on the machine. With
 * --interleave the two start and warm up together, then take turns through
 * their latency runs in 10 blocks each (bench/latencyTurns.ts), so both are
 * measured over the same minutes of this shared machine (whose speed drifts
 * by 10-25% within minutes); each then runs with the other's idle cluster
 * beside it (haring's idle controllers use about 14% of one CPU, which weighs
 * on etcd's figures). Throughput and failover rounds always run one system
 * after the other.
 *
 * floor: the NATS relay floor (bench/natsRelayFloor.ts), haring's commit path
 * without Paxos or the view: four hops through nats-server and two O_DSYNC
 * writes per commit, latency and CPU only. What no work inside haring's
 * processes can go below on this machine. floor-direct: the same with the
 * accept round over a TCP connection between leader and voter: what direct
 * controller links could save.
 *
 * --rounds N measures the systems N times over, taking turns (haring, the
 * floors, etcd, then haring again, ...), prints each round's table, then
 * each figure's median and range across the rounds and in how many rounds
 * haring was at or below etcd (bench/roundSummary.ts): one round's p99 moves
 * by 10-20 ms between runs of the same code on this machine.
 *
 * Figures: commit latency p50/p99 with one client and one command at a time,
 * after 3,000 warm-up commits to each system (a Node process's JIT compiler
 * is still busy over its first seconds: with 200, haring's p50 was 0.35-0.4
 * ms and its CPU per commit 0.9 ms higher, see docs/benchmarks-paxos.md);
 * throughput with 64 commands in flight; and, K times, kill -9 of the leader
 * under a one-at-a-time load → time until the next command commits.
 * Every process is killed in teardown, every temp directory removed.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { pack } from "msgpackr";
import { createPaxosConfig } from "../machines/paxos/config.ts";
import { LatencyTurns } from "./latencyTurns.ts";
import { startStallProbe } from "./eventLoopStallProbe.mjs";
import { floorRoles, startNatsRelayFloor, type FloorLinks } from "./natsRelayFloor.ts";
import { percentile } from "./percentile.ts";
import { roundsAtOrBelow, summarizeRounds, type LowerIsBetter, type Spread, type SystemAcrossRounds } from "./roundSummary.ts";
import type { ViewCommand } from "../machines/view/viewCommands.ts";
import { startLocalControllers, type LocalControllers } from "../runtime/controller/localControllers.ts";
import { connectViewClient, type ViewClient } from "../runtime/controller/viewClient.ts";
import { findFreePorts, loopbackHost, startNatsServer } from "../runtime/natsServer.ts";

const commandBytes = 256;
const inFlightForThroughput = 64;
/** The latency run of each system is measured in this many blocks, taking turns with the other system (LatencyTurns). */
const latencyBlocks = 10;
const controllerIds = ["c1", "c2", "c3"];
/** Rounds of `--rounds`: each starts and stops every system (80 s for all four with 2 failovers, a 1 s throughput run and 4,000 latency commands each). */
const maxRounds = 30;

interface Figures {
  readonly system: string;
  readonly latencyP50Ms: number;
  readonly latencyP99Ms: number;
  readonly throughputPerSecond: number;
  readonly failoverMs: readonly number[];
  /** CPU time (user + system) of every process of the system, this client included, per commit in the latency run. */
  readonly cpuMsPerCommit: number;
  readonly notes: readonly string[];
}

interface Options {
  /** Commands committed before the latency run, to each system alike (a controller's JIT warms up over its first seconds). */
  readonly warmupCommands: number;
  readonly latencyCommands: number;
  readonly throughputSeconds: number;
  readonly failovers: number;
  readonly only: SystemName | undefined;
  readonly json: boolean;
  /** Where the controllers write CPU profiles (node --cpu-prof), when set. */
  readonly profileDir: string | undefined;
  /** Also run the HA manager and failure detector in the controllers (off by default: this measures the view commit). */
  readonly withManager: boolean;
  /** Paxos timings for the controllers that differ from the defaults (`--timing key=value`), for experiments. */
  readonly timing: Readonly<Record<string, number>>;
  /** Controllers do not mirror the view into the KV bucket (`--no-kv-mirror`), to see what the mirror costs. */
  readonly noKvMirror: boolean;
  /** Where each system's latency-run commit times go, one ms figure a line in commit order (`--latencies-dir`), to look for periodic stalls. */
  readonly latenciesDir: string | undefined;
  /**
   * With `latenciesDir`: record event-loop stalls of the controllers, of this process and of an idle canary
   * process into that directory (bench/eventLoopStallProbe.mjs; `--stall-probes`), and the CPU bursts of the
   * kernel's memory-management threads (bench/kernelThreadCpuProbe.mjs), for bench/stallCorrelation.ts.
   */
  readonly stallProbes: boolean;
  /** Extra Node options for the controller processes (`--controller-node-option`, repeatable), for experiments. */
  readonly controllerNodeOptions: readonly string[];
  /** Take turns in the latency runs with both clusters up (`--interleave`), instead of one system after the other. */
  readonly interleave: boolean;
  /** Measure the systems this many times over, taking turns, and summarize across the rounds (`--rounds`). */
  readonly rounds: number;
  /** Keep haring's run directory (data, each controller's log tail) even when the run succeeds (`--keep-run-dir`), to read its elections. */
  readonly keepRunDir: boolean;
}

/** The systems measured, in the order a full run measures them (`--only` names one). */
const systemNames = ["haring", "floor", "floor-direct", "etcd"] as const;
type SystemName = (typeof systemNames)[number];

/** A latency run's commits: each one's time in ms and the wall-clock ms it ended at (`endedAtMs`, to line up with stalls). */
class LatencyRecord {
  readonly latencies: number[] = [];
  readonly endedAtMs: number[] = [];

  add(latencyMs: number): void {
    this.latencies.push(latencyMs);
    this.endedAtMs.push(performance.timeOrigin + performance.now());
  }
}

function writeLatencies(options: Options, system: string, record: LatencyRecord): void {
  if (options.latenciesDir === undefined) return;
  writeFileSync(join(options.latenciesDir, `${system}.txt`), `${record.latencies.map((ms) => ms.toFixed(3)).join("\n")}\n`);
  writeFileSync(join(options.latenciesDir, `${system}-ended-at.txt`), `${record.endedAtMs.map((ms) => ms.toFixed(3)).join("\n")}\n`);
}

function parseOptions(argv: readonly string[]): Options {
  const options = { warmupCommands: 3_000, latencyCommands: 2_000, throughputSeconds: 10, failovers: 5, only: undefined as Options["only"], json: false, profileDir: undefined as string | undefined, withManager: false, timing: {} as Record<string, number>, noKvMirror: false, latenciesDir: undefined as string | undefined, stallProbes: false, controllerNodeOptions: [] as string[], interleave: false, rounds: 1, keepRunDir: false };
  for (let index = 0; index < argv.length; index++) {
    const argument = argv[index]!;
    const number = (min = 1) => {
      const value = Number(argv[++index]);
      if (!Number.isSafeInteger(value) || value < min || value > 1_000_000) throw new RangeError(`${argument} takes a whole number in [${min}, 1000000]`);
      return value;
    };
    if (argument === "--latency-commands") options.latencyCommands = number();
    else if (argument === "--warmup-commands") options.warmupCommands = number(0);
    else if (argument === "--throughput-seconds") options.throughputSeconds = number();
    else if (argument === "--failovers") options.failovers = number(0);
    else if (argument === "--json") options.json = true;
    else if (argument === "--profile-dir") options.profileDir = argv[++index];
    else if (argument === "--with-manager") options.withManager = true;
    else if (argument === "--no-kv-mirror") options.noKvMirror = true;
    else if (argument === "--latencies-dir") options.latenciesDir = argv[++index] ?? "";
    else if (argument === "--interleave") options.interleave = true;
    else if (argument === "--keep-run-dir") options.keepRunDir = true;
    else if (argument === "--rounds") {
      options.rounds = number();
      if (options.rounds > maxRounds) throw new RangeError(`--rounds takes at most ${maxRounds} (each round starts and stops every system)`);
    }
    else if (argument === "--stall-probes") options.stallProbes = true;
    else if (argument === "--controller-node-option") options.controllerNodeOptions.push(argv[++index] ?? "");
    else if (argument === "--timing") {
      const [key, value] = (argv[++index] ?? "").split("=");
      if (!key || !Number.isSafeInteger(Number(value))) throw new RangeError("--timing takes key=integer, e.g. maxInFlightSlots=8");
      options.timing[key] = Number(value);
    }
    else if (argument === "--only") {
      const which = systemNames.find((name) => name === argv[index + 1]);
      index++;
      if (which === undefined) throw new RangeError(`--only takes ${systemNames.join(", ")}`);
      options.only = which;
    } else throw new RangeError(`unknown argument ${argument}`);
  }
  if (options.stallProbes && options.latenciesDir === undefined) throw new RangeError("--stall-probes writes into --latencies-dir DIR: give both");
  // One file per system and directory: later rounds would overwrite the first's commit times.
  if (options.rounds > 1 && options.latenciesDir !== undefined) throw new RangeError("--latencies-dir records one round: drop --rounds, or --latencies-dir");
  if (options.latenciesDir !== undefined) {
    if (options.latenciesDir === "") throw new RangeError("--latencies-dir takes a directory");
    mkdirSync(options.latenciesDir, { recursive: true });
  }
  return options;
}

/** User and system CPU ms of one process so far; zero for a process that is gone. */
function cpuSplitMs(pid: number | undefined): { userMs: number; systemMs: number } {
  if (pid === undefined) return { userMs: 0, systemMs: 0 };
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return { userMs: Number(fields[11]) * 10, systemMs: Number(fields[12]) * 10 };
  } catch {
    return { userMs: 0, systemMs: 0 };
  }
}

/** Which process the CPU of the latency run went to, per commit: one note line. */
function cpuBreakdown(spent: readonly CpuSplit[], names: readonly string[], commits: number): string {
  const perCommit = (ms: number) => (ms / commits).toFixed(2);
  const parts = spent.map((split, index) => `${names[index]} ${perCommit(split.userMs)} + ${perCommit(split.systemMs)}`);
  return `CPU per commit by process, latency run (user + system ms): ${parts.join(", ")}`;
}

type CpuSplit = { userMs: number; systemMs: number };

/** Adds what each process spent between `before` and now to `spent`. */
function addCpuSpent(spent: CpuSplit[], pids: readonly (number | undefined)[], before: readonly CpuSplit[]): void {
  pids.forEach((pid, index) => {
    const after = cpuSplitMs(pid);
    spent[index]!.userMs += after.userMs - before[index]!.userMs;
    spent[index]!.systemMs += after.systemMs - before[index]!.systemMs;
  });
}

/** Read and write system calls of one process so far (Linux /proc/<pid>/io: syscr, syscw); zero for a process that is gone. */
function systemCallsOf(pid: number | undefined): { reads: number; writes: number } {
  if (pid === undefined) return { reads: 0, writes: 0 };
  try {
    const text = readFileSync(`/proc/${pid}/io`, "utf8");
    const field = (name: string) => Number(new RegExp(`^${name}: (\\d+)$`, "m").exec(text)?.[1] ?? 0);
    return { reads: field("syscr"), writes: field("syscw") };
  } catch {
    return { reads: 0, writes: 0 };
  }
}

/** Messages the NATS server took in and handed out so far (its /varz). */
async function natsMessageCounts(monitorUrl: string): Promise<{ in: number; out: number }> {
  const varz = (await (await fetch(`${monitorUrl}/varz`)).json()) as { in_msgs?: number; out_msgs?: number };
  return { in: varz.in_msgs ?? 0, out: varz.out_msgs ?? 0 };
}

/** Per commit: each controller's read and write system calls and the NATS server's messages in and out, as one note. */
type SystemCalls = { reads: number; writes: number };
type NatsCounts = { in: number; out: number };

/** One note line from what each controller and the NATS server did over `commits` commits. */
function trafficNote(label: string, names: readonly string[], calls: readonly SystemCalls[], nats: NatsCounts, commits: number): string {
  const per = (count: number) => (count / commits).toFixed(2);
  const parts = names.map((name, index) => `${name} ${per(calls[index]!.reads)} / ${per(calls[index]!.writes)}`);
  return `${label}, per commit: system calls read / write ${parts.join(", ")}; NATS messages in / out ${per(nats.in)} / ${per(nats.out)}`;
}

/** Adds what happened between `before` and `after` to `spent`, process by process. */
function addCallsSpent(spent: SystemCalls[], before: readonly SystemCalls[], after: readonly SystemCalls[]): void {
  after.forEach((now, index) => {
    spent[index]!.reads += now.reads - before[index]!.reads;
    spent[index]!.writes += now.writes - before[index]!.writes;
  });
}

function addNatsSpent(spent: NatsCounts, before: NatsCounts, after: NatsCounts): void {
  spent.in += after.in - before.in;
  spent.out += after.out - before.out;
}

function totalCpuMs(spent: readonly CpuSplit[]): number {
  return spent.reduce((sum, split) => sum + split.userMs + split.systemMs, 0);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function progress(text: string): void {
  process.stderr.write(`[bench] ${text}\n`);
}

// ---- haring ----

/** Padding per length of the command's number: packing ~150 candidates per command would slow the client. */
const paddingByDigits = new Map<number, number>();

/** A vm.add whose msgpack form is exactly `commandBytes`: the padding sits in an anti-affinity id list. */
function haringCommand(index: number): ViewCommand {
  const build = (padding: number): ViewCommand => {
    const ids: string[] = [];
    // Distinct ids (the view refuses a list with a duplicate), each at most 64 characters.
    for (let left = padding, part = 0; left > 0; left -= 64, part++) ids.push(`${String.fromCharCode(97 + part)}${"p".repeat(Math.min(63, left - 1))}`);
    return { id: `bench-${index}`, type: "vm.add", vmId: `vm-${index}`, resources: { cpu: 1, memoryMiB: 512 }, priority: "medium", rules: { affinity: [], antiAffinity: ids }, desiredState: "running" };
  };
  const digits = String(index).length;
  let padding = paddingByDigits.get(digits);
  if (padding === undefined) {
    padding = 0;
    while ((pack(build(padding + 1)) as Uint8Array).length <= commandBytes) padding++;
    paddingByDigits.set(digits, padding);
  }
  return build(padding);
}

async function benchHaring(options: Options, turns: LatencyTurns, turn: number): Promise<Figures> {
  const nats = await startNatsServer();
  const baseDir = mkdtempSync(join(tmpdir(), "haring-bench-"));
  let cluster: LocalControllers | undefined;
  let client: ViewClient | undefined;
  const notes: string[] = [];
  let failed = false;
  try {
    cluster = startLocalControllers({
      clusterId: "bench",
      controllerIds,
      natsUrls: [nats.url],
      baseDir,
      // The view commit alone: the HA manager (which would try to place every added VM, with no host
      // to place it on) and the failure detector are other subsystems with their own benchmarks.
      manager: options.withManager,
      detector: options.withManager,
      timing: options.timing,
      kvMirror: !options.noKvMirror,
      fullOutputLogs: options.keepRunDir,
      nodeArguments: [
        ...options.controllerNodeOptions,
        ...(options.profileDir ? ["--cpu-prof", "--cpu-prof-dir", options.profileDir] : []),
        ...(options.stallProbes ? ["--import", stallProbeModule] : []),
      ],
    });
    await cluster.waitFor("a leader", () => cluster!.leader() !== undefined, 30_000);
    client = await connectViewClient({
      clusterId: "bench",
      nodeId: "bench-client",
      natsUrls: [nats.url],
      paxos: createPaxosConfig(controllerIds),
      clientLimits: { retryAfterMs: 100, maxRetryDelayMs: 200, maxProposeAttempts: 200, maxOutstandingProposals: 4_096 },
    });
    const sample = haringCommand(0);
    notes.push(`command: vm.add, ${(pack(sample) as Uint8Array).length} bytes as msgpack`);
    let counter = 0;
    const commit = async (): Promise<number> => {
      const command = haringCommand(counter++);
      const started = performance.now();
      const outcome = await client!.propose(command);
      if (outcome.kind !== "committed") throw new Error(`${command.id}: ${JSON.stringify(outcome)}`);
      return performance.now() - started;
    };

    progress(`haring: warm-up, ${options.warmupCommands} commands`);
    for (let index = 0; index < options.warmupCommands; index++) await commit();
    progress(`haring: latency, ${options.latencyCommands} commands one at a time`);
    const record = new LatencyRecord();
    const latencies = record.latencies;
    const systemPids = () => [...cluster!.members.map((member) => member.pid), nats.pid, process.pid];
    const controllerPids = () => cluster!.members.map((member) => member.pid);
    // Summed over this system's blocks only: the other system's blocks run in between.
    const cpuSpent = systemPids().map(() => ({ userMs: 0, systemMs: 0 }));
    const callsSpent: SystemCalls[] = controllerPids().map(() => ({ reads: 0, writes: 0 }));
    const natsSpent: NatsCounts = { in: 0, out: 0 };
    await turns.measure(turn, options.latencyCommands, latencyBlocks, async (commits) => {
      const cpuBefore = systemPids().map(cpuSplitMs);
      const callsBefore = controllerPids().map(systemCallsOf);
      const natsBefore = await natsMessageCounts(nats.monitorUrl);
      for (let index = 0; index < commits; index++) record.add(await commit());
      addCpuSpent(cpuSpent, systemPids(), cpuBefore);
      addCallsSpent(callsSpent, callsBefore, controllerPids().map(systemCallsOf));
      addNatsSpent(natsSpent, natsBefore, await natsMessageCounts(nats.monitorUrl));
    });
    writeLatencies(options, "haring", record);
    const cpuMsPerCommit = totalCpuMs(cpuSpent) / options.latencyCommands;
    const controllerNames = () => cluster!.members.map((member) => (member.id === cluster!.leader()?.id ? `${member.id} (leader)` : member.id));
    notes.push(trafficNote("latency run", controllerNames(), callsSpent, natsSpent, options.latencyCommands));
    // Which process the CPU goes to: the leader, the followers, the NATS server, the client.
    const leaderId = cluster.leader()?.id;
    const processNames = [...cluster.members.map((member) => (member.id === leaderId ? `${member.id} (leader)` : member.id)), "nats-server", "client"];
    notes.push(cpuBreakdown(cpuSpent, processNames, options.latencyCommands));
    latencies.sort((a, b) => a - b);
    await turns.after(turn);

    progress(`haring: throughput, ${inFlightForThroughput} in flight for ${options.throughputSeconds} s`);
    const slotsBefore = client.appliedSlots();
    const commandsBefore = counter;
    const throughputCallsBefore = controllerPids().map(systemCallsOf);
    const throughputNatsBefore = await natsMessageCounts(nats.monitorUrl);
    const throughput = await measureThroughput(options.throughputSeconds, async () => void (await commit()));
    const throughputCalls: SystemCalls[] = throughputCallsBefore.map(() => ({ reads: 0, writes: 0 }));
    addCallsSpent(throughputCalls, throughputCallsBefore, controllerPids().map(systemCallsOf));
    const throughputNats: NatsCounts = { in: 0, out: 0 };
    addNatsSpent(throughputNats, throughputNatsBefore, await natsMessageCounts(nats.monitorUrl));
    notes.push(trafficNote("throughput run", controllerNames(), throughputCalls, throughputNats, counter - commandsBefore));
    // How full the leader's slots were: each slot costs every acceptor a durable write and everyone a commit message.
    const throughputSlots = client.appliedSlots() - slotsBefore;
    notes.push(`throughput run: ${counter - commandsBefore} commands in ${throughputSlots} slots (${((counter - commandsBefore) / Math.max(1, throughputSlots)).toFixed(1)} per slot)`);

    const failoverMs: number[] = [];
    const electedMs: number[] = [];
    for (let round = 0; round < options.failovers; round++) {
      progress(`haring: failover ${round + 1}/${options.failovers}`);
      await cluster.waitFor("a leader", () => cluster!.leader() !== undefined, 30_000);
      failoverMs.push(await measureFailover(commit, async () => {
        // The status files say who leads (and holds the lease) as of their last rewrite, 50 ms at most ago.
        let leader = cluster!.leader();
        for (let waited = 0; leader === undefined && waited < 5_000; waited += 10) {
          await sleep(10);
          leader = cluster!.leader();
        }
        if (!leader) throw new Error("no controller reports holding the lease");
        const killedAt = performance.now();
        const killedAtWallMs = Date.now();
        await leader.kill("SIGKILL");
        const revive = async () => {
          electedMs.push(electionAfter(cluster!, killedAtWallMs));
          leader.start();
          const target = client!.appliedSlots();
          await cluster!.waitFor("the restarted controller to catch up", (statuses) => controllerIds.every((id) => (statuses.get(id)?.appliedSlots ?? -1) >= target && statuses.get(id)?.pid === cluster!.member(id).pid), 30_000);
        };
        return { killedAt, revive };
      }));
    }
    if (electedMs.length > 0) notes.push(`kill -9 → a controller logs it leads: ${electedMs.map((ms) => ms.toFixed(0)).join(", ")} ms (election timeout ${createPaxosConfig(controllerIds).electionTimeoutMs} ms + jitter up to ${createPaxosConfig(controllerIds).electionJitterMs} ms after the last heartbeat)`);
    return { system: "haring (Multi-Paxos, 3 controller processes, NATS)", latencyP50Ms: percentile(latencies, 0.5), latencyP99Ms: percentile(latencies, 0.99), throughputPerSecond: throughput, failoverMs, cpuMsPerCommit, notes };
  } catch (error) {
    failed = true;
    throw error;
  } finally {
    await client?.close().catch(() => undefined);
    await cluster?.stopAll();
    await nats.stop();
    if ((failed || options.keepRunDir) && cluster) keepForDiagnosis(baseDir, cluster, client, failed, options.keepRunDir);
    else rmSync(baseDir, { recursive: true, force: true });
  }
}

/** A failed run leaves its controllers' directories, with the tail of each one's log and what the client knew, for whoever looks next. */
function keepForDiagnosis(baseDir: string, cluster: LocalControllers, client: ViewClient | undefined, failed: boolean, wholeLogs: boolean): void {
  for (const member of cluster.members) writeFileSync(join(baseDir, `${member.id}-output-tail.log`), member.outputTail());
  writeFileSync(join(baseDir, "client.json"), JSON.stringify({ appliedSlots: client?.appliedSlots() ?? null, at: new Date().toISOString() }, null, 2));
  progress(`haring: ${failed ? "the run failed; " : ""}kept ${baseDir} (each controller's data directory and log tail${wholeLogs ? ", its whole log in <id>/output.log" : ""}, client.json)`);
}

/** Ms from the kill to the first "paxos.leadership … leader" line a surviving controller logged after it (log timestamps have ms precision). */
function electionAfter(cluster: LocalControllers, killedAtWallMs: number): number {
  let first = Number.NaN;
  for (const member of cluster.members) {
    for (const line of member.outputTail().split("\n")) {
      if (!line.includes('"paxos.leadership"') || !line.includes('"role":"leader"')) continue;
      const at = Date.parse((JSON.parse(line) as { ts: string }).ts);
      if (at >= killedAtWallMs && !(at - killedAtWallMs >= first)) first = at - killedAtWallMs;
    }
  }
  return first;
}

/** Keeps `inFlightForThroughput` commits going for `seconds`; returns commits per second. */
async function measureThroughput(seconds: number, commitOne: () => Promise<void>): Promise<number> {
  const endAt = performance.now() + seconds * 1_000;
  let done = 0;
  const startedAt = performance.now();
  await Promise.all(
    Array.from({ length: inFlightForThroughput }, async () => {
      while (performance.now() < endAt) {
        await commitOne();
        done++;
      }
    }),
  );
  return done / ((performance.now() - startedAt) / 1_000);
}

/**
 * One command at a time; after a short steady spell `kill` takes the leader down. Returns the ms from
 * the kill to the commit of the first command proposed after it (a command already in flight may have
 * been committed by the old leader just before it died; this one cannot have been), so the figure
 * includes one ordinary commit. `kill` says when it sent the signal and how to bring the victim back.
 */
interface Killed {
  /** When the signal was sent. */
  readonly killedAt: number;
  readonly revive: () => Promise<void>;
}

async function measureFailover(commit: () => Promise<number>, kill: () => Promise<Killed>): Promise<number> {
  let stop = false;
  let killedAt = Number.POSITIVE_INFINITY;
  let next: number | undefined;
  let proposedAt = Number.NaN;
  let commits = 0;
  // A command that fails (no outcome, rejected) ends the round at once with its own error, not after 30 s.
  let failure: { readonly error: unknown } | undefined;
  const loop = (async () => {
    while (!stop) {
      const startedAt = (proposedAt = performance.now());
      await commit();
      commits++;
      if (next === undefined && startedAt >= killedAt) next = performance.now() - killedAt;
    }
  })().catch((error: unknown) => {
    failure = { error };
  });
  await sleep(300);
  const killed = await kill();
  killedAt = killed.killedAt;
  const committedBeforeKill = commits;
  while (next === undefined) {
    if (failure !== undefined) throw failure.error;
    if (performance.now() - killedAt > 30_000) {
      const waitingMs = performance.now() - proposedAt;
      throw new Error(`no commit within 30 s of killing the leader (${commits - committedBeforeKill} commits after the kill, all proposed before it; the command in flight has waited ${waitingMs.toFixed(0)} ms)`);
    }
    await sleep(1);
  }
  stop = true;
  await loop;
  await killed.revive();
  return next;
}

// ---- etcd ----

interface EtcdMember {
  readonly name: string;
  readonly clientUrl: string;
  readonly args: readonly string[];
  process: ChildProcess | undefined;
  output: string;
}

function startEtcdProcess(member: EtcdMember): void {
  const child = spawn("etcd", [...member.args], { stdio: ["ignore", "pipe", "pipe"] });
  member.process = child;
  const capture = (chunk: string) => (member.output = (member.output + chunk).slice(-16_384));
  child.stdout?.setEncoding("utf8").on("data", capture);
  child.stderr?.setEncoding("utf8").on("data", capture);
  child.once("exit", () => {
    if (member.process === child) member.process = undefined;
  });
}

async function killEtcd(member: EtcdMember): Promise<void> {
  const child = member.process;
  if (!child) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGKILL");
  await Promise.race([exited, sleep(5_000)]);
  member.process = undefined;
}

async function etcdPost(url: string, body: unknown, timeoutMs = 5_000): Promise<unknown> {
  const response = await fetch(url, { method: "POST", body: JSON.stringify(body), headers: { "content-type": "application/json" }, signal: AbortSignal.timeout(timeoutMs) });
  const text = await response.text();
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status} ${text.slice(0, 200)}`);
  return JSON.parse(text) as unknown;
}

/** The member that says it is the leader, asking each live one. */
async function etcdLeader(members: readonly EtcdMember[]): Promise<EtcdMember | undefined> {
  for (const member of members) {
    if (!member.process) continue;
    try {
      const status = (await etcdPost(`${member.clientUrl}/v3/maintenance/status`, {}, 1_000)) as { header?: { member_id?: string }; leader?: string };
      if (status.leader && status.header?.member_id === status.leader) return member;
    } catch {
      // not answering yet
    }
  }
  return undefined;
}

async function waitEtcd<T>(what: string, probe: () => Promise<T | undefined>, members: readonly EtcdMember[], timeoutMs = 30_000): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    const value = await probe();
    if (value !== undefined) return value;
    await sleep(25);
  }
  throw new Error(`etcd: timed out waiting for ${what}\n${members.map((member) => `--- ${member.name}\n${member.output.split("\n").slice(-5).join("\n")}`).join("\n")}`);
}

async function benchEtcd(options: Options, turns: LatencyTurns, turn: number): Promise<Figures> {
  const baseDir = mkdtempSync(join(tmpdir(), "haring-bench-etcd-"));
  const ports = await findFreePorts(6);
  const names = ["e1", "e2", "e3"];
  const peerUrl = (index: number) => `http://${loopbackHost}:${ports[index * 2 + 1]}`;
  const initialCluster = names.map((name, index) => `${name}=${peerUrl(index)}`).join(",");
  const members: EtcdMember[] = names.map((name, index) => {
    const clientUrl = `http://${loopbackHost}:${ports[index * 2]}`;
    return {
      name,
      clientUrl,
      process: undefined,
      output: "",
      args: [
        "--name", name,
        "--data-dir", join(baseDir, name),
        "--listen-client-urls", clientUrl,
        "--advertise-client-urls", clientUrl,
        "--listen-peer-urls", peerUrl(index),
        "--initial-advertise-peer-urls", peerUrl(index),
        "--initial-cluster", initialCluster,
        "--initial-cluster-state", "new",
        "--initial-cluster-token", "haring-bench",
        "--log-level", "warn",
      ],
    };
  });
  const value = Buffer.alloc(commandBytes, "v").toString("base64");
  let counter = 0;
  let target: EtcdMember | undefined;
  const put = async (timeoutMs: number): Promise<void> => {
    const member = target!;
    // A new key per put, as every haring command adds a VM: both stores grow through the run.
    await etcdPost(`${member.clientUrl}/v3/kv/put`, { key: Buffer.from(`bench-${counter++}`).toString("base64"), value }, timeoutMs);
  };
  const commit = async (): Promise<number> => {
    const started = performance.now();
    await put(5_000);
    return performance.now() - started;
  };
  try {
    for (const member of members) startEtcdProcess(member);
    target = await waitEtcd("a leader", () => etcdLeader(members), members);
    progress(`etcd: warm-up, ${options.warmupCommands} puts`);
    for (let index = 0; index < options.warmupCommands; index++) await commit();
    progress(`etcd: latency, ${options.latencyCommands} puts one at a time`);
    const record = new LatencyRecord();
    const latencies = record.latencies;
    const systemPids = () => [...members.map((member) => member.process?.pid), process.pid];
    const cpuSpent = systemPids().map(() => ({ userMs: 0, systemMs: 0 }));
    await turns.measure(turn, options.latencyCommands, latencyBlocks, async (commits) => {
      const cpuBefore = systemPids().map(cpuSplitMs);
      for (let index = 0; index < commits; index++) record.add(await commit());
      addCpuSpent(cpuSpent, systemPids(), cpuBefore);
    });
    writeLatencies(options, "etcd", record);
    const cpuMsPerCommit = totalCpuMs(cpuSpent) / options.latencyCommands;
    const processNames = [...members.map((member) => (member === target ? `${member.name} (leader)` : member.name)), "client"];
    const cpuByProcess = cpuBreakdown(cpuSpent, processNames, options.latencyCommands);
    latencies.sort((a, b) => a - b);
    await turns.after(turn);
    progress(`etcd: throughput, ${inFlightForThroughput} in flight for ${options.throughputSeconds} s`);
    const throughput = await measureThroughput(options.throughputSeconds, async () => void (await commit()));

    const failoverMs: number[] = [];
    for (let round = 0; round < options.failovers; round++) {
      progress(`etcd: failover ${round + 1}/${options.failovers}`);
      target = await waitEtcd("a leader", () => etcdLeader(members), members);
      // Like a client with all endpoints: a failed or slow put moves on to the next member.
      const resilientCommit = async (): Promise<number> => {
        const started = performance.now();
        for (let attempt = 0; ; attempt++) {
          try {
            await put(250);
            return performance.now() - started;
          } catch {
            const live = members.filter((member) => member.process !== undefined);
            target = live[(live.indexOf(target!) + 1) % live.length] ?? target;
            if (performance.now() - started > 30_000) throw new Error("etcd: no put within 30 s");
          }
        }
      };
      failoverMs.push(await measureFailover(resilientCommit, async () => {
        const victim = target!;
        const killedAt = performance.now();
        await killEtcd(victim);
        const revive = async () => {
          startEtcdProcess(victim);
          await waitEtcd(`${victim.name} back`, async () => {
            try {
              const health = (await (await fetch(`${victim.clientUrl}/health`, { signal: AbortSignal.timeout(1_000) })).json()) as { health?: string };
              return health.health === "true" ? true : undefined;
            } catch {
              return undefined;
            }
          }, members);
        };
        return { killedAt, revive };
      }));
    }
    return {
      system: "etcd 3.4.23 (Raft, 3 member processes, HTTP/JSON gateway)",
      latencyP50Ms: percentile(latencies, 0.5),
      latencyP99Ms: percentile(latencies, 0.99),
      throughputPerSecond: throughput,
      failoverMs,
      cpuMsPerCommit,
      notes: [`value: ${commandBytes} bytes`, cpuByProcess],
    };
  } finally {
    await Promise.all(members.map(killEtcd));
    rmSync(baseDir, { recursive: true, force: true });
  }
}

// ---- the NATS relay floor ----

async function benchFloor(links: FloorLinks, options: Options, turns: LatencyTurns, turn: number): Promise<Figures> {
  const name = links === "nats" ? "floor" : "floor-direct";
  const floor = await startNatsRelayFloor(links);
  try {
    // The payload of haring's commands, so both carry the same bytes.
    const payload = pack(haringCommand(0)) as Uint8Array;
    progress(`${name}: warm-up, ${options.warmupCommands} commands`);
    for (let index = 0; index < options.warmupCommands; index++) await floor.commit(payload);
    progress(`${name}: latency, ${options.latencyCommands} commands one at a time`);
    const record = new LatencyRecord();
    const latencies = record.latencies;
    const pids = [...floor.pids, process.pid];
    const cpuSpent = pids.map(() => ({ userMs: 0, systemMs: 0 }));
    await turns.measure(turn, options.latencyCommands, latencyBlocks, async (commits) => {
      const cpuBefore = pids.map(cpuSplitMs);
      for (let index = 0; index < commits; index++) record.add(await floor.commit(payload));
      addCpuSpent(cpuSpent, pids, cpuBefore);
    });
    writeLatencies(options, name, record);
    latencies.sort((a, b) => a - b);
    await turns.after(turn);
    return {
      system: links === "nats" ? "NATS relay floor (4 hops, 2 O_DSYNC writes, no Paxos)" : "floor with a direct leader-voter link (2 NATS hops, 1 TCP round trip, 2 O_DSYNC writes)",
      latencyP50Ms: percentile(latencies, 0.5),
      latencyP99Ms: percentile(latencies, 0.99),
      throughputPerSecond: Number.NaN,
      failoverMs: [],
      cpuMsPerCommit: totalCpuMs(cpuSpent) / options.latencyCommands,
      notes: [`payload: ${payload.length} bytes`, cpuBreakdown(cpuSpent, [...floorRoles, "nats-server", "client"], options.latencyCommands)],
    };
  } finally {
    await floor.stop();
  }
}

// ---- report ----

function formatMs(value: number): string {
  return value >= 100 ? value.toFixed(0) : value.toFixed(2);
}

/** The first row is the header. */
function markdownTable(rows: readonly (readonly string[])[]): string {
  return [`| ${rows[0]!.join(" | ")} |`, `|${rows[0]!.map(() => "---").join("|")}|`, ...rows.slice(1).map((row) => `| ${row.join(" | ")} |`)].join("\n");
}

function table(results: readonly Figures[]): string {
  const failover = (figures: Figures) => {
    const sorted = [...figures.failoverMs].sort((a, b) => a - b);
    return sorted.length === 0 ? "-" : `median ${formatMs(percentile(sorted, 0.5))}, max ${formatMs(sorted.at(-1)!)} (${sorted.map(formatMs).join(", ")})`;
  };
  const rows = [
    ["", ...results.map((figures) => figures.system)],
    ["commit latency p50, 1 client (ms)", ...results.map((figures) => formatMs(figures.latencyP50Ms))],
    ["commit latency p99, 1 client (ms)", ...results.map((figures) => formatMs(figures.latencyP99Ms))],
    [`throughput, ${inFlightForThroughput} in flight (commits/s)`, ...results.map((figures) => (Number.isNaN(figures.throughputPerSecond) ? "-" : figures.throughputPerSecond.toFixed(0)))],
    ["CPU per commit, all processes, 1 client (ms)", ...results.map((figures) => figures.cpuMsPerCommit.toFixed(2))],
    ["leader kill -9 → next commit (ms)", ...results.map(failover)],
  ];
  return markdownTable(rows);
}

const stallProbeModule = new URL("./eventLoopStallProbe.mjs", import.meta.url).pathname;
const kernelThreadProbeModule = new URL("./kernelThreadCpuProbe.mjs", import.meta.url).pathname;

/** The probes of `--stall-probes`: this process's, an idle canary process's and the kernel-thread probe's (its controllers load their own); stops the two processes. */
function startStallProbes(directory: string): () => void {
  // Inherited by the controllers, whose copy of the probe module starts itself when it finds this.
  process.env.HARING_STALL_PROBE_DIR = directory;
  startStallProbe(directory, "client");
  const canary = spawn(process.execPath, [stallProbeModule, directory], { stdio: ["pipe", "ignore", "ignore"] });
  const kernelThreads = spawn(process.execPath, [kernelThreadProbeModule, directory], { stdio: ["pipe", "ignore", "ignore"] });
  return () => {
    canary.kill("SIGTERM");
    kernelThreads.kill("SIGTERM");
  };
}

type SystemBench = (options: Options, turns: LatencyTurns, turn: number) => Promise<Figures>;

const benchOf: Record<SystemName, SystemBench> = {
  haring: benchHaring,
  floor: (options, turns, turn) => benchFloor("nats", options, turns, turn),
  "floor-direct": (options, turns, turn) => benchFloor("direct", options, turns, turn),
  etcd: benchEtcd,
};

/** Why the etcd side cannot run (checked before any system starts, so no half-run is left behind), or undefined. */
function missingEtcd(options: Options): string | undefined {
  if (options.only !== undefined && options.only !== "etcd") return undefined;
  const probe = spawnSync("etcd", ["--version"], { encoding: "utf8", timeout: 10_000 });
  if (probe.error === undefined && probe.status === 0) return undefined;
  const reason = probe.error === undefined ? `exit ${probe.status}` : probe.error.message;
  return `etcd cannot run (${reason}): install Debian's etcd-server (apt-get install -y etcd-server), or measure without it (--only haring|floor|floor-direct)`;
}

async function main(): Promise<void> {
  let options: Options;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    // A wrong argument is the operator's typo, not a crash of the benchmark: say which, without a stack.
    process.stderr.write(`bench:paxos: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 2;
    return;
  }
  const missing = missingEtcd(options);
  if (missing !== undefined) {
    process.stderr.write(`bench:paxos: ${missing}\n`);
    process.exitCode = 3;
    return;
  }
  const stopStallProbes = options.stallProbes ? startStallProbes(options.latenciesDir!) : () => {};
  try {
    await runSystems(options);
  } finally {
    stopStallProbes();
  }
}

/** One round: every system chosen, one after the other or interleaved; each entry names the system it measured. */
async function runRound(options: Options): Promise<Array<{ readonly name: SystemName; readonly figures: Figures }>> {
  const names = systemNames.filter((name) => options.only === undefined || options.only === name);
  const systems = names.map((name) => benchOf[name]);
  const results: Figures[] = [];
  if (options.interleave) {
    // Both systems start and warm up together, take turns in blocks of the latency run, then run their
    // throughput and failover rounds one after the other (LatencyTurns). Every system settles (and tears
    // down its processes) before a failure of either is reported.
    const turns = new LatencyTurns(systems.length);
    const settled = await Promise.allSettled(systems.map((bench, turn) => bench(options, turns, turn).finally(() => turns.finish(turn))));
    for (const outcome of settled) {
      if (outcome.status === "rejected") throw outcome.reason;
      results.push(outcome.value);
    }
  } else {
    // One system after the other, each alone on the machine.
    for (const bench of systems) results.push(await bench(options, new LatencyTurns(1), 0));
  }
  return results.map((figures, index) => ({ name: names[index]!, figures }));
}

function formatSpread(spread: Spread | undefined, format: (value: number) => string): string {
  if (spread === undefined) return "-";
  return spread.min === spread.max ? format(spread.median) : `${format(spread.median)} (${format(spread.min)}-${format(spread.max)})`;
}

function acrossRoundsTable(summaries: readonly SystemAcrossRounds[]): string {
  const rows = [
    ["medians (range) across rounds", ...summaries.map((summary) => `${summary.system}, ${summary.rounds} rounds`)],
    ["commit latency p50, 1 client (ms)", ...summaries.map((summary) => formatSpread(summary.latencyP50Ms, formatMs))],
    ["commit latency p99, 1 client (ms)", ...summaries.map((summary) => formatSpread(summary.latencyP99Ms, formatMs))],
    [`throughput, ${inFlightForThroughput} in flight (commits/s)`, ...summaries.map((summary) => formatSpread(summary.throughputPerSecond, (value) => value.toFixed(0)))],
    ["CPU per commit, all processes, 1 client (ms)", ...summaries.map((summary) => formatSpread(summary.cpuMsPerCommit, (value) => value.toFixed(2)))],
    ["leader kill -9 → next commit (ms)", ...summaries.map((summary) => (summary.failoverMs.length === 0 ? "-" : `median ${formatMs(percentile(summary.failoverMs, 0.5))}, max ${formatMs(summary.failoverMs.at(-1)!)} of ${summary.failoverMs.length}`))],
  ];
  return markdownTable(rows);
}

/** "haring at or below etcd, round by round: p50 in 4 of 5, ..." when both ran; empty otherwise. */
function headToHead(rounds: ReadonlyArray<ReadonlyArray<{ readonly name: SystemName; readonly figures: Figures }>>): string {
  const byName = rounds.map((round) => round.map(({ name, figures }) => ({ ...figures, system: name })));
  const figures: Array<[LowerIsBetter, string]> = [["latencyP50Ms", "p50"], ["latencyP99Ms", "p99"], ["cpuMsPerCommit", "CPU per commit"]];
  const counts = figures.map(([figure, label]) => ({ label, ...roundsAtOrBelow(byName, "haring", "etcd", figure) }));
  if (counts[0]!.of === 0) return "";
  return `haring at or below etcd, round by round: ${counts.map(({ label, atOrBelow, of }) => `${label} in ${atOrBelow} of ${of}`).join(", ")}\n`;
}

async function runSystems(options: Options): Promise<void> {
  // The figures move with the machine's load (both systems share it with whatever else runs): report it.
  const loadAtStart = loadavg()[0]!;
  const rounds: Array<Array<{ readonly name: SystemName; readonly figures: Figures }>> = [];
  for (let round = 1; round <= options.rounds; round++) {
    if (options.rounds > 1) progress(`round ${round} of ${options.rounds}`);
    rounds.push(await runRound(options));
  }
  const load = `load average (1 min) ${loadAtStart.toFixed(1)} at the start, ${loadavg()[0]!.toFixed(1)} at the end, ${cpus().length} CPUs`;
  const figuresOf = rounds.map((round) => round.map(({ figures }) => figures));
  if (options.json) {
    const report = options.rounds === 1 ? { results: figuresOf[0], load } : { rounds: figuresOf, acrossRounds: summarizeRounds(figuresOf), load };
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return;
  }
  const roundReport = (results: readonly Figures[]) => `${table(results)}\n\n${results.map((figures) => `${figures.system}: ${figures.notes.join("; ")}`).join("\n")}\n`;
  if (options.rounds === 1) {
    process.stdout.write(`${roundReport(figuresOf[0]!)}${load}\n`);
    return;
  }
  const perRound = figuresOf.map((results, index) => `### Round ${index + 1} of ${options.rounds}\n\n${roundReport(results)}`).join("\n");
  process.stdout.write(`${perRound}\n### Across the rounds\n\n${acrossRoundsTable(summarizeRounds(figuresOf))}\n\n${headToHead(rounds)}${load}\n`);
}

await main();

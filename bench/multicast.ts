/**
 * Command multicast benchmark (ARCHITECTURE §8: multicast to 100 hosts, all
 * acks: p99 ≤ 50 ms, overhead ≤ 2× raw JetStream in the same run).
 *
 *   npx tsx bench/multicast.ts [--members N] [--rounds R] [--warmup W] [--processes P] [--storage file|memory] [--only haring|raw] [--json] [--profile-dir DIR]
 *
 * One nats-server (JetStream, file store) on loopback in a temp dir. The
 * members run in P worker processes (each member with its own NATS
 * connection, as hosts would have); the sender runs in this process. A
 * round is one command to all N members; it ends when this process holds
 * all N answers. Rounds run one after the other, alternating between the
 * systems (both sets of members are up throughout); the first W rounds of
 * each are not counted.
 *
 * - haring: actors/groupcomm (startCommandMulticaster → startCommandMember
 *   per member, its ledger in files with fdatasync, or in memory with
 *   `--storage memory` to show what the disk costs). A member's answer is
 *   its published result after the ledger's two syncs (begin, done); its
 *   ack follows.
 * - raw: the same stream layout without haring: the sender publishes N
 *   messages (one per member subject, with a msg id), each member has a
 *   durable consumer with explicit ack on its own subject, acks each
 *   message and answers with a core NATS publish. No ledger, no codec.
 * - disk alone (with `--storage file`, no `--only`): N files on this
 *   machine's one disk, each written and fdatasynced twice in a row, all at
 *   once: the part of a haring round that 100 hosts would spread over 100
 *   disks but that this benchmark puts on one.
 *
 * Every process is killed in teardown and every temp directory removed.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { open as openFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { AckPolicy, DeliverPolicy, DiscardPolicy, RetentionPolicy, StorageType, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { headers, nanos, type NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { startCommandMember } from "../actors/groupcomm/commandMember.ts";
import { startCommandMulticaster, type MemberOutcome } from "../actors/groupcomm/commandMulticast.ts";
import type { RecordLog, Storage } from "../actors/ports/storage.ts";
import { NatsStream } from "../runtime/natsStream.ts";
import { startNatsServer } from "../runtime/natsServer.ts";
import { connectRuntimeNode } from "../runtime/runtimeNodePorts.ts";

const clusterId = "bench";
const rawStream = "RAW";
const roundTimeoutMs = 5_000;
const payloadBytes = 256;
const maxThreadPoolSize = 256;

interface Options {
  readonly members: number;
  readonly rounds: number;
  readonly warmup: number;
  readonly processes: number;
  readonly storage: "file" | "memory";
  readonly only: "haring" | "raw" | undefined;
  readonly json: boolean;
  /** Where the worker processes write CPU profiles (node --cpu-prof), when set. */
  readonly profileDir: string | undefined;
}

interface Figures {
  readonly system: string;
  readonly rounds: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly meanMs: number;
  /** Rounds in which some member did not answer within the round timeout. */
  readonly incompleteRounds: number;
}

function parseOptions(argv: readonly string[]): Options {
  const options = { members: 100, rounds: 300, warmup: 20, processes: 2, storage: "file" as Options["storage"], only: undefined as Options["only"], json: false, profileDir: undefined as string | undefined };
  for (let index = 0; index < argv.length; index++) {
    const argument = argv[index]!;
    const number = (min: number, max: number) => {
      const value = Number(argv[++index]);
      if (!Number.isSafeInteger(value) || value < min || value > max) throw new RangeError(`${argument} takes a whole number in [${min}, ${max}]`);
      return value;
    };
    if (argument === "--members") options.members = number(1, 1_000);
    else if (argument === "--rounds") options.rounds = number(1, 100_000);
    else if (argument === "--warmup") options.warmup = number(0, 10_000);
    else if (argument === "--processes") options.processes = number(1, 16);
    else if (argument === "--json") options.json = true;
    else if (argument === "--profile-dir") options.profileDir = argv[++index];
    else if (argument === "--storage") {
      const which = argv[++index];
      if (which !== "file" && which !== "memory") throw new RangeError("--storage takes file or memory");
      options.storage = which;
    } else if (argument === "--only") {
      const which = argv[++index];
      if (which !== "haring" && which !== "raw") throw new RangeError("--only takes haring or raw");
      options.only = which;
    } else throw new RangeError(`unknown argument ${argument}`);
  }
  return options;
}

function percentile(sorted: readonly number[], fraction: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1)]!;
}

function summarize(system: string, latencies: readonly number[], incompleteRounds: number): Figures {
  const sorted = [...latencies].sort((a, b) => a - b);
  const mean = sorted.reduce((total, value) => total + value, 0) / Math.max(1, sorted.length);
  const round = (value: number) => Math.round(value * 100) / 100;
  return { system, rounds: sorted.length, p50Ms: round(percentile(sorted, 0.5)), p99Ms: round(percentile(sorted, 0.99)), maxMs: round(sorted[sorted.length - 1] ?? Number.NaN), meanMs: round(mean), incompleteRounds };
}

const memberName = (index: number) => `m${String(index).padStart(3, "0")}`;

/** A Storage that keeps records in memory and syncs at once: the ledger without a disk. */
class MemoryStorage implements Storage {
  open(): RecordLog {
    let records: Uint8Array[] = [];
    return {
      readAll: () => records,
      append: (record) => void records.push(record),
      sync: (done) => queueMicrotask(() => done({ ok: true })),
      rewrite: (replacement, done) => {
        records = [...replacement];
        queueMicrotask(() => done({ ok: true }));
      },
      discardedTailBytes: 0,
    };
  }
}

// ---- worker processes ----

async function runHaringMembers(url: string, memberIds: readonly string[], dataDirectory: string, storage: Options["storage"]): Promise<() => Promise<void>> {
  const closers: (() => Promise<void>)[] = [];
  const result = new Uint8Array(16);
  await Promise.all(
    memberIds.map(async (memberId) => {
      const runtime = await connectRuntimeNode({ nodeId: memberId, clusterId, natsServers: url, dataDirectory: join(dataDirectory, memberId), seed: 1, logLine: () => undefined });
      const stream = new NatsStream(runtime.network.connection, { onError: () => undefined });
      const ports = { ...runtime.ports, stream, ...(storage === "memory" ? { storage: new MemoryStorage() } : {}) };
      const member = startCommandMember(ports, (_command, done) => done({ ok: true, result }));
      await new Promise<void>((resolve, reject) => {
        const started = performance.now();
        const poll = () => {
          if (member.status === "consuming") return resolve();
          if (performance.now() - started > 30_000) return reject(new Error(`${memberId} did not start consuming`));
          setTimeout(poll, 20);
        };
        poll();
      });
      closers.push(async () => {
        member.stop();
        await stream.close();
        await runtime.close();
      });
    }),
  );
  return async () => void (await Promise.all(closers.map((close) => close())));
}

async function runRawMembers(url: string, memberIds: readonly string[]): Promise<() => Promise<void>> {
  const closers: (() => Promise<void>)[] = [];
  const answer = new Uint8Array(16);
  await Promise.all(
    memberIds.map(async (memberId) => {
      const connection = await connect({ servers: url, name: `raw-${memberId}` });
      const jsm = await jetstreamManager(connection);
      const durable = `raw-${memberId}`;
      await jsm.consumers.add(rawStream, {
        durable_name: durable,
        ack_policy: AckPolicy.Explicit,
        ack_wait: nanos(5_000),
        max_deliver: 20,
        max_ack_pending: 64,
        filter_subject: `raw.${memberId}`,
        deliver_policy: DeliverPolicy.All,
      });
      const consumer = await jetstream(connection).consumers.get(rawStream, durable);
      const messages = await consumer.consume({
        max_messages: 64,
        callback: (message) => {
          message.ack();
          const reply = message.headers?.get("Reply-To");
          if (reply) connection.publish(reply, answer);
        },
      });
      closers.push(async () => {
        await messages.close();
        await connection.close();
      });
    }),
  );
  return async () => void (await Promise.all(closers.map((close) => close())));
}

async function worker(argv: readonly string[]): Promise<void> {
  const [mode, url, dataDirectory, storage, ...memberIds] = argv;
  const close =
    mode === "haring"
      ? await runHaringMembers(url!, memberIds, dataDirectory!, storage === "memory" ? "memory" : "file")
      : await runRawMembers(url!, memberIds);
  process.stdout.write("ready\n");
  // The parent says when to stop by closing stdin.
  process.stdin.resume();
  process.stdin.on("end", () => {
    void close().finally(() => process.exit(0));
  });
}

// ---- the parent: server, workers, sender ----

interface Workers {
  stop(): Promise<void>;
}

async function startWorkers(mode: "haring" | "raw", url: string, dataDirectory: string, options: Options): Promise<Workers> {
  const children: ChildProcess[] = [];
  const all = Array.from({ length: options.members }, (_, index) => memberName(index));
  const ready: Promise<void>[] = [];
  for (let index = 0; index < options.processes; index++) {
    const share = all.filter((_, member) => member % options.processes === index);
    if (share.length === 0) continue;
    const profile = options.profileDir !== undefined ? ["--cpu-prof", "--cpu-prof-dir", options.profileDir] : [];
    const child = spawn(process.execPath, [...profile, "--import", "tsx", new URL(import.meta.url).pathname, "--worker", mode, url, dataDirectory, options.storage, ...share], {
      stdio: ["pipe", "pipe", "inherit"],
      // Each member's fdatasync runs on libuv's thread pool (4 threads by default); a host has its own process and pool.
      env: { ...process.env, UV_THREADPOOL_SIZE: String(Math.min(maxThreadPoolSize, share.length + 4)) },
    });
    children.push(child);
    ready.push(
      new Promise((resolve, reject) => {
        const lines = createInterface({ input: child.stdout! });
        lines.on("line", (line) => {
          if (line === "ready") resolve();
        });
        child.once("exit", (code) => reject(new Error(`${mode} worker exited with ${code} before it was ready`)));
      }),
    );
  }
  await Promise.all(ready);
  return {
    stop: async () => {
      await Promise.all(
        children.map(
          (child) =>
            new Promise<void>((resolve) => {
              const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
              child.once("exit", () => {
                clearTimeout(timer);
                resolve();
              });
              child.stdin?.end();
            }),
        ),
      );
    },
  };
}

interface RoundRunner {
  readonly system: string;
  /** Runs one round; resolves with its latency and whether every member answered. */
  round(round: number): Promise<{ elapsedMs: number; complete: boolean }>;
  close(): Promise<void>;
}

async function haringRunner(url: string, dataDirectory: string, options: Options): Promise<RoundRunner> {
  const workers = await startWorkers("haring", url, join(dataDirectory, "members"), options);
  const runtime = await connectRuntimeNode({ nodeId: "sender", clusterId, natsServers: url, dataDirectory: join(dataDirectory, "sender"), seed: 1, logLine: () => undefined });
  const stream = new NatsStream(runtime.network.connection, { onError: () => undefined });
  const multicaster = startCommandMulticaster({ ...runtime.ports, stream });
  const members = Array.from({ length: options.members }, (_, index) => memberName(index));
  const payload = new Uint8Array(payloadBytes);
  return {
    system: options.storage === "file" ? "haring (ledger fdatasync)" : "haring (ledger in memory)",
    round: async (round) => {
      const started = performance.now();
      const outcomes = await new Promise<readonly MemberOutcome[]>((resolve) =>
        multicaster.send(members, { commandId: `r${round}`, kind: "bench.noop", payload }, { timeoutMs: roundTimeoutMs }, resolve),
      );
      return { elapsedMs: performance.now() - started, complete: outcomes.every((outcome) => outcome.status === "applied") };
    },
    close: async () => {
      multicaster.dispose();
      await stream.close();
      await runtime.close();
      await workers.stop();
    },
  };
}

async function rawRunner(url: string, dataDirectory: string, options: Options): Promise<RoundRunner> {
  const connection: NatsConnection = await connect({ servers: url, name: "raw-sender" });
  const jsm = await jetstreamManager(connection);
  await jsm.streams.add({
    name: rawStream,
    subjects: ["raw.>"],
    duplicate_window: nanos(120_000),
    num_replicas: 1,
    max_msgs: 1_000_000,
    max_bytes: 1024 * 1024 * 1024,
    discard: DiscardPolicy.Old,
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
  });
  const workers = await startWorkers("raw", url, dataDirectory, options);
  const js = jetstream(connection);
  const members = Array.from({ length: options.members }, (_, index) => memberName(index));
  const payload = new Uint8Array(payloadBytes);
  return {
    system: "raw JetStream",
    round: async (round) => {
      const replySubject = `rawres.${round}`;
      // Timed from before the reply subscription, as haring's send() subscribes to results first.
      const started = performance.now();
      let answers = 0;
      let finish: (complete: boolean) => void = () => undefined;
      const finished = new Promise<boolean>((resolve) => (finish = resolve));
      const subscription = connection.subscribe(replySubject, {
        callback: () => {
          if (++answers === members.length) finish(true);
        },
      });
      const timer = setTimeout(() => finish(false), roundTimeoutMs);
      const published = members.map((memberId) => {
        const header = headers();
        header.set("Reply-To", replySubject);
        return js.publish(`raw.${memberId}`, payload, { msgID: `r${round}.${memberId}`, headers: header });
      });
      const complete = await finished;
      const elapsedMs = performance.now() - started;
      clearTimeout(timer);
      await Promise.allSettled(published);
      subscription.unsubscribe();
      return { elapsedMs, complete };
    },
    close: async () => {
      await workers.stop();
      await connection.close();
    },
  };
}

/**
 * What the members' disk alone costs a round: N files on the one disk of this
 * machine, each written and fdatasynced twice in a row (a ledger's begin and
 * done), all at once. On real hosts each member syncs its own disk.
 */
async function diskFloorRunner(dataDirectory: string, options: Options): Promise<RoundRunner> {
  const directory = join(dataDirectory, "disk-floor");
  mkdirSync(directory, { recursive: true });
  const files = await Promise.all(Array.from({ length: options.members }, (_, index) => openFile(join(directory, memberName(index)), "w")));
  const record = new Uint8Array(96);
  return {
    system: `disk alone: ${options.members} files × 2 fdatasyncs`,
    round: async () => {
      const started = performance.now();
      await Promise.all(
        files.map(async (file) => {
          await file.write(record);
          await file.datasync();
          await file.write(record);
          await file.datasync();
        }),
      );
      return { elapsedMs: performance.now() - started, complete: true };
    },
    close: async () => void (await Promise.all(files.map((file) => file.close()))),
  };
}

/** Rounds alternate between the systems, so load on the machine that comes and goes weighs on both alike. */
async function runAlternating(runners: readonly RoundRunner[], options: Options): Promise<Figures[]> {
  const latencies = runners.map(() => [] as number[]);
  const incomplete = runners.map(() => 0);
  for (let round = 0; round < options.warmup + options.rounds; round++) {
    for (let index = 0; index < runners.length; index++) {
      const { elapsedMs, complete } = await runners[index]!.round(round);
      if (!complete) incomplete[index]!++;
      if (round >= options.warmup) latencies[index]!.push(elapsedMs);
    }
  }
  return runners.map((runner, index) => summarize(runner.system, latencies[index]!, incomplete[index]!));
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === "--worker") return worker(argv.slice(1));
  const options = parseOptions(argv);
  // Before the first asynchronous file operation creates the pool: the disk floor syncs every member's file at once.
  process.env.UV_THREADPOOL_SIZE ??= String(Math.min(maxThreadPoolSize, options.members + 4));
  const server = await startNatsServer();
  const dataDirectory = mkdtempSync(join(tmpdir(), "haring-bench-multicast-"));
  const runners: RoundRunner[] = [];
  let figures: Figures[] = [];
  try {
    if (options.only !== "raw") runners.push(await haringRunner(server.url, dataDirectory, options));
    if (options.only !== "haring") runners.push(await rawRunner(server.url, dataDirectory, options));
    if (options.only === undefined && options.storage === "file") runners.push(await diskFloorRunner(dataDirectory, options));
    figures = await runAlternating(runners, options);
  } finally {
    for (const runner of runners) await runner.close().catch(() => undefined);
    await server.stop();
    rmSync(dataDirectory, { recursive: true, force: true });
  }
  const haring = figures.find((entry) => entry.system.startsWith("haring"));
  const raw = figures.find((entry) => entry.system === "raw JetStream");
  const overhead = haring && raw ? { p50: Math.round((haring.p50Ms / raw.p50Ms) * 100) / 100, p99: Math.round((haring.p99Ms / raw.p99Ms) * 100) / 100 } : undefined;
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ options, figures, overhead })}\n`);
    return;
  }
  const lines = [
    `multicast to ${options.members} members, ${options.rounds} rounds after ${options.warmup} warm-up, members in ${options.processes} processes, one nats-server on loopback`,
    "| system | rounds | p50 ms | p99 ms | max ms | mean ms | incomplete rounds |",
    "|---|---|---|---|---|---|---|",
    ...figures.map((entry) => `| ${entry.system} | ${entry.rounds} | ${entry.p50Ms} | ${entry.p99Ms} | ${entry.maxMs} | ${entry.meanMs} | ${entry.incompleteRounds} |`),
  ];
  if (overhead) lines.push(`haring / raw: p50 ${overhead.p50}×, p99 ${overhead.p99}×`);
  process.stdout.write(`${lines.join("\n")}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});

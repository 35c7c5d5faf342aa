/**
 * Which stalls the slowest commits of a benchmark run met:
 *
 *   npx tsx bench/viewCommit.ts --latencies-dir DIR --stall-probes [...]
 *   npx tsx bench/stallCorrelation.ts DIR
 *
 * For each system whose latency run is in DIR (`<system>.txt`, `<system>-ended-at.txt`), the commits
 * at or above its p99 are matched against the event-loop stalls the probes recorded in the same
 * minutes (bench/eventLoopStallProbe.mjs): the idle canary process's (the whole machine stalled), and
 * any probed process's (a controller's or the client's, which includes the machine's). A commit meets a
 * stall when the late timer's lateness overlaps the commit's time. Also against the CPU bursts of the
 * kernel's memory-management threads (bench/kernelThreadCpuProbe.mjs): how many of the slowest commits
 * met one, and the p99 of the commits that overlapped none. Prints a markdown table.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { probeIntervalMs, reportedLatenessMs } from "./eventLoopStallProbe.mjs";
import { clockTickMs, kernelThreadCpuFile } from "./kernelThreadCpuProbe.mjs";
import { percentile } from "./percentile.ts";

interface Stall {
  readonly fromMs: number;
  readonly toMs: number;
  readonly process: string;
}

interface Burst {
  readonly fromMs: number;
  toMs: number;
  cpuMs: number;
  readonly thread: string;
}

/** Lines of one thread closer than this belong to one burst (its CPU time shows a tick at a time). */
const burstGapMs = 60;

/** The share of the run's commits counted as its slowest. */
const slowestFraction = 0.01;

function numbers(path: string): number[] {
  return readFileSync(path, "utf8").split("\n").filter((line) => line !== "").map(Number);
}

function stallsIn(directory: string): Stall[] {
  const stalls: Stall[] = [];
  for (const file of readdirSync(directory)) {
    if (!file.endsWith(".jsonl") || file === kernelThreadCpuFile) continue;
    const process = file.replace(/-\d+\.jsonl$/, "");
    for (const line of readFileSync(join(directory, file), "utf8").split("\n")) {
      if (line === "") continue;
      const [dueAtMs, lateMs] = JSON.parse(line) as [number, number];
      // The loop was busy or not scheduled from some time after the timer was last armed until it ran.
      stalls.push({ fromMs: dueAtMs - probeIntervalMs, toMs: dueAtMs + lateMs, process });
    }
  }
  return stalls;
}

/** The kernel threads' CPU bursts, each from a tick before its first line to its last. */
function burstsIn(directory: string): Burst[] {
  let text = "";
  try {
    text = readFileSync(join(directory, kernelThreadCpuFile), "utf8");
  } catch {
    return [];
  }
  const open = new Map<string, Burst>();
  const bursts: Burst[] = [];
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const [atMs, cpuMs, thread] = JSON.parse(line) as [number, number, string];
    const current = open.get(thread);
    if (current && atMs - current.toMs < burstGapMs) {
      current.toMs = atMs;
      current.cpuMs += cpuMs;
      continue;
    }
    const burst: Burst = { fromMs: atMs - clockTickMs, toMs: atMs, cpuMs, thread };
    open.set(thread, burst);
    bursts.push(burst);
  }
  return bursts;
}

function main(): void {
  const directory = process.argv[2];
  if (directory === undefined) throw new Error("usage: npx tsx bench/stallCorrelation.ts DIR (written by bench/viewCommit.ts --latencies-dir DIR --stall-probes)");
  const stalls = stallsIn(directory);
  const bursts = burstsIn(directory);
  const systems = readdirSync(directory).filter((file) => file.endsWith("-ended-at.txt")).map((file) => file.replace(/-ended-at\.txt$/, ""));
  const notes: string[] = [];
  const rows = [
    "| system | commits | p99 ms | slowest 1% | met a canary stall | met a stall of a probed process | met none | met a kernel-thread burst | p99 of the commits that met no burst ms |",
    "|---|---|---|---|---|---|---|---|---|",
  ];
  for (const system of systems.sort()) {
    const latencies = numbers(join(directory, `${system}.txt`));
    const endedAt = numbers(join(directory, `${system}-ended-at.txt`));
    const sorted = [...latencies].sort((a, b) => a - b);
    const p99 = percentile(sorted, 1 - slowestFraction);
    const metBurst = latencies.map((latencyMs, index) => bursts.some((burst) => burst.fromMs < endedAt[index]! && burst.toMs > endedAt[index]! - latencyMs));
    const clearOfBursts = latencies.filter((_latency, index) => !metBurst[index]).sort((a, b) => a - b);
    let slow = 0;
    let burst = 0;
    let canary = 0;
    let any = 0;
    const metByProcess = new Map<string, number>();
    latencies.forEach((latencyMs, index) => {
      if (latencyMs < p99) return;
      slow++;
      const endMs = endedAt[index]!;
      const met = stalls.filter((stall) => stall.fromMs < endMs && stall.toMs > endMs - latencyMs);
      if (met.some((stall) => stall.process === "canary")) canary++;
      if (met.length > 0) any++;
      if (metBurst[index]) burst++;
      for (const name of new Set(met.map((stall) => stall.process))) metByProcess.set(name, (metByProcess.get(name) ?? 0) + 1);
    });
    notes.push(`${system}: slowest commits that met a stall of each process: ${[...metByProcess].sort().map(([name, count]) => `${name} ${count}`).join(", ") || "none"}`);
    const share = (count: number) => `${count} (${Math.round((100 * count) / Math.max(1, slow))}%)`;
    rows.push(`| ${system} | ${latencies.length} | ${p99.toFixed(2)} | ${slow} | ${share(canary)} | ${share(any)} | ${share(slow - any)} | ${share(burst)} | ${percentile(clearOfBursts, 1 - slowestFraction).toFixed(2)} (${latencies.length - clearOfBursts.length} met one) |`);
  }
  const byProcess = new Map<string, number>();
  for (const stall of stalls) byProcess.set(stall.process, (byProcess.get(stall.process) ?? 0) + 1);
  const burstCpu = new Map<string, { count: number; cpuMs: number }>();
  for (const { thread, cpuMs } of bursts) {
    const sum = burstCpu.get(thread) ?? { count: 0, cpuMs: 0 };
    burstCpu.set(thread, { count: sum.count + 1, cpuMs: sum.cpuMs + cpuMs });
  }
  const kernelThreads = [...burstCpu].sort().map(([thread, { count, cpuMs }]) => `${thread} ${count} bursts, ${cpuMs} ms of CPU`).join(", ") || "none recorded";
  process.stdout.write(`${rows.join("\n")}\n\n${notes.join("\n")}\ntimers ${reportedLatenessMs} ms or more late, by process (the whole run): ${[...byProcess].sort().map(([name, count]) => `${name} ${count}`).join(", ")}\nkernel threads' CPU bursts (the whole run): ${kernelThreads}\n`);
}

main();

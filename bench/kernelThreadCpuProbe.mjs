/**
 * Records when the kernel's memory-management threads take a CPU: `kdamond*` (DAMON, which on the
 * benchmark machine samples page access every 500 ms and pages cold memory out), `kswapd*` and
 * `kcompactd*`. Every `pollIntervalMs` it reads their CPU time from /proc/<pid>/stat; a rise is a
 * line `[wallClockMs, cpuMs, thread]` in `<directory>/kthread-cpu.jsonl` (cpuMs in clock ticks of
 * 10 ms, so a burst shows as a few lines close together). bench/viewCommit.ts (`--stall-probes`)
 * runs it as its own process, like the idle canary, and bench/stallCorrelation.ts lines the bursts
 * up with the slowest commits: on two CPUs, a kernel thread busy for 20 ms halves the machine.
 *
 *   node bench/kernelThreadCpuProbe.mjs <directory>
 *
 * Ends on SIGTERM or when its stdin closes. Without /proc (or without such threads) it records nothing.
 */
import { appendFileSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import process from "node:process";
import { setInterval } from "node:timers";
import { fileURLToPath } from "node:url";

export const pollIntervalMs = 2;
/** One clock tick of /proc/<pid>/stat's utime and stime (USER_HZ is 100 on Linux). */
export const clockTickMs = 10;
export const kernelThreadCpuFile = "kthread-cpu.jsonl";
const watchedThreadPattern = /^(kdamond|kswapd|kcompactd)/;
const rescanIntervalMs = 1_000;
const flushIntervalMs = 1_000;
/** Lines kept between flushes at most. */
const maxBufferedLines = 10_000;

/** The watched kernel threads now: pid → name. */
function watchedThreads() {
  const threads = new Map();
  let entries = [];
  try {
    entries = readdirSync("/proc");
  } catch {
    return threads;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const name = readFileSync(`/proc/${entry}/comm`, "utf8").trim();
      if (watchedThreadPattern.test(name)) threads.set(entry, name);
    } catch {
      // Gone meanwhile.
    }
  }
  return threads;
}

/** utime + stime in clock ticks, or undefined once the thread is gone. */
function cpuTicks(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return undefined;
  }
}

/** Polls until the process ends; the lines go to `<directory>/kthread-cpu.jsonl`. */
function runProbe(directory) {
  const file = join(directory, kernelThreadCpuFile);
  const lines = [];
  let threads = watchedThreads();
  const lastTicks = new Map();
  setInterval(() => {
    for (const [pid, name] of threads) {
      const ticks = cpuTicks(pid);
      if (ticks === undefined) continue;
      const last = lastTicks.get(pid);
      lastTicks.set(pid, ticks);
      if (last !== undefined && ticks > last && lines.length < maxBufferedLines) {
        lines.push(JSON.stringify([Number((performance.timeOrigin + performance.now()).toFixed(1)), (ticks - last) * clockTickMs, name]));
      }
    }
  }, pollIntervalMs);
  setInterval(() => (threads = watchedThreads()), rescanIntervalMs);
  const flush = () => {
    if (lines.length === 0) return;
    appendFileSync(file, `${lines.join("\n")}\n`);
    lines.length = 0;
  };
  setInterval(flush, flushIntervalMs);
  process.on("exit", flush);
  process.on("SIGTERM", () => process.exit(0));
  process.stdin.on("end", () => process.exit(0));
  process.stdin.resume();
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const directory = process.argv[2];
  if (!directory) {
    process.stderr.write("usage: node bench/kernelThreadCpuProbe.mjs <directory>\n");
    process.exit(2);
  }
  runProbe(directory);
}

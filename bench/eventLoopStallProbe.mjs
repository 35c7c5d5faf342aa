/**
 * Records when a process's event loop ran late: a timer every `probeIntervalMs`, and a line
 * `[wallClockMs, lateMs]` in `<directory>/<label>-<pid>.jsonl` whenever it fired `reportedLatenessMs`
 * or more after it was due. bench/viewCommit.ts (`--stall-probes`) loads it into each controller
 * (`--import`, with HARING_STALL_PROBE_DIR set), starts it in its own process (the client), and runs
 * it alone as an idle canary process (`node bench/eventLoopStallProbe.mjs <directory>`): a canary that
 * does nothing else and still runs late shows a stall of the whole machine, not of any program on it.
 * bench/stallCorrelation.ts lines these up with the slowest commits.
 *
 * Plain JavaScript: a controller loads it before tsx is registered.
 */
import { appendFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import process from "node:process";
import { setInterval } from "node:timers";
import { fileURLToPath } from "node:url";

export const probeIntervalMs = 5;
export const reportedLatenessMs = 8;
const flushIntervalMs = 1_000;
/** Lines kept between flushes at most: a process stalled for good does not grow without bound. */
const maxBufferedStalls = 10_000;

/** Starts the probe; the timers keep the process alive only when `keepAlive` (the canary). */
export function startStallProbe(directory, label, keepAlive = false) {
  const file = join(directory, `${label}-${process.pid}.jsonl`);
  const stalls = [];
  let dueAt = performance.now() + probeIntervalMs;
  const probe = setInterval(() => {
    const now = performance.now();
    const lateMs = now - dueAt;
    if (lateMs >= reportedLatenessMs && stalls.length < maxBufferedStalls) stalls.push([performance.timeOrigin + dueAt, Number(lateMs.toFixed(2))]);
    dueAt = now + probeIntervalMs;
  }, probeIntervalMs);
  let writeFailed = false;
  const flush = () => {
    if (stalls.length === 0) return;
    try {
      appendFileSync(file, `${stalls.map((stall) => JSON.stringify(stall)).join("\n")}\n`);
    } catch (error) {
      // A probe is a measurement aid: a directory that went away must not kill the process it watches (a
      // benchmark client dying here left its nats-server and controllers running).
      if (!writeFailed) process.stderr.write(`stall probe: cannot write ${file}: ${error.message}\n`);
      writeFailed = true;
    }
    stalls.length = 0;
  };
  const flusher = setInterval(flush, flushIntervalMs);
  if (!keepAlive) {
    probe.unref();
    flusher.unref();
  }
  process.on("exit", flush);
}

const directory = process.env.HARING_STALL_PROBE_DIR;
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const canaryDirectory = process.argv[2];
  if (!canaryDirectory) throw new Error("usage: node bench/eventLoopStallProbe.mjs <directory>");
  startStallProbe(canaryDirectory, "canary", true);
  // Ended by the benchmark, or by its end of the stdin pipe closing when it dies first: exit normally, so the last
  // stalls are written and no canary outlives its run.
  process.on("SIGTERM", () => process.exit(0));
  process.stdin.on("end", () => process.exit(0));
  process.stdin.resume();
} else if (directory) {
  // A controller: its id is the name of the directory of its config file (…/c1/controller.json). Any other
  // importer (the benchmark itself) starts its probe by calling startStallProbe.
  const id = /([^/]+)\/controller\.json$/.exec(process.argv.join(" "))?.[1];
  if (id !== undefined) startStallProbe(directory, id);
}

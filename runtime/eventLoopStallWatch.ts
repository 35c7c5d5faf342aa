/**
 * Reports stalls of this process's event loop. While the loop is blocked
 * (a long synchronous task, a slow disk write on the loop, a pause of the
 * whole process) nothing else runs either: no heartbeat leaves, no message
 * is read, no lease is renewed. A controller silent for an election timeout
 * costs the cluster an election; a host silent for its lease fences itself.
 * The warning names how long the loop was held, so an operator (or the
 * benchmark reading the logs) can tie an election or a fence to the stall
 * that caused it, and the metrics show how often it happens.
 *
 * A probe timer fires every `eventLoopProbeIntervalMs`; one that fires more
 * than `eventLoopStallThresholdMs` late measures a stall. The timer is
 * unref'd, so it never keeps a process alive.
 *
 * Work the process does on purpose while it cannot do anything else (a
 * controller recovering from its log at start) runs through `attribute()`:
 * a stall that overlaps it is counted as ever, but logged as
 * `runtime.event-loop-busy` (info) naming the work, since it is expected
 * rather than a problem to look into.
 */
import type { Log, Metrics } from "../actors/ports/telemetry.ts";

export const eventLoopProbeIntervalMs = 20;
/** Two controller heartbeat intervals: below it a late timer is ordinary scheduling noise. */
export const eventLoopStallThresholdMs = 100;
/** Warnings at most this often; every stall is still counted. */
export const minStallWarningSpacingMs = 1_000;
/** Attributed pieces of work remembered for matching with a stall the probe sees after them. */
export const maxAttributedWorks = 8;

export const eventLoopStallsMetric = "haring_event_loop_stalls_total";
export const eventLoopStallMsMetric = "haring_event_loop_stall_ms";

export interface EventLoopStallWatchOptions {
  readonly log: Log;
  readonly metrics: Metrics;
  readonly thresholdMs?: number;
  readonly probeIntervalMs?: number;
  readonly minWarningSpacingMs?: number;
  /** Monotonic ms; performance.now() unless a test gives another. */
  readonly now?: () => number;
}

export interface EventLoopStallWatch {
  /** Stalls seen since the start (every one, warned or not). */
  readonly stalls: number;
  readonly longestStallMs: number;
  /** Runs `work` (synchronous) and names it as the cause of a stall that overlaps it. */
  attribute<T>(activity: string, work: () => T): T;
  stop(): void;
}

interface AttributedWork {
  readonly activity: string;
  readonly fromMs: number;
  readonly toMs: number;
}

export function startEventLoopStallWatch(options: EventLoopStallWatchOptions): EventLoopStallWatch {
  const thresholdMs = options.thresholdMs ?? eventLoopStallThresholdMs;
  const probeIntervalMs = options.probeIntervalMs ?? eventLoopProbeIntervalMs;
  if (!(thresholdMs > 0) || !(probeIntervalMs > 0)) throw new RangeError(`stall threshold and probe interval must be positive, got ${thresholdMs} and ${probeIntervalMs}`);
  const warningSpacingMs = options.minWarningSpacingMs ?? minStallWarningSpacingMs;
  const now = options.now ?? (() => performance.now());
  let stalls = 0;
  let longestStallMs = 0;
  let unwarned = 0;
  let lastWarningAtMs = Number.NEGATIVE_INFINITY;
  let lastProbeAtMs = now();
  const attributed: AttributedWork[] = [];
  const timer = setInterval(() => {
    const at = now();
    const lateMs = at - lastProbeAtMs - probeIntervalMs;
    const sinceMs = lastProbeAtMs;
    lastProbeAtMs = at;
    if (lateMs < thresholdMs) {
      attributed.length = 0;
      return;
    }
    stalls++;
    longestStallMs = Math.max(longestStallMs, lateMs);
    options.metrics.increment(eventLoopStallsMetric);
    options.metrics.observe(eventLoopStallMsMetric, lateMs);
    const activities = [...new Set(attributed.filter((work) => work.toMs > sinceMs && work.fromMs < at).map((work) => work.activity))];
    attributed.length = 0;
    if (activities.length > 0) {
      options.log.write("info", "runtime.event-loop-busy", {
        stalledMs: Math.round(lateMs),
        activity: activities.join(","),
        note: "expected: this process did that work meanwhile and nothing else (no heartbeat sent, no message read)",
      });
      return;
    }
    if (at - lastWarningAtMs < warningSpacingMs) {
      unwarned++;
      return;
    }
    lastWarningAtMs = at;
    options.log.write("warn", "runtime.event-loop-stall", {
      stalledMs: Math.round(lateMs),
      ...(unwarned > 0 ? { stallsSinceLastWarning: unwarned } : {}),
      note: "nothing in this process ran meanwhile: no heartbeat sent, no message read",
    });
    unwarned = 0;
  }, probeIntervalMs);
  timer.unref();
  return {
    get stalls() {
      return stalls;
    },
    get longestStallMs() {
      return longestStallMs;
    },
    attribute(activity, work) {
      const fromMs = now();
      try {
        return work();
      } finally {
        if (attributed.length >= maxAttributedWorks) attributed.shift();
        attributed.push({ activity, fromMs, toMs: now() });
      }
    },
    stop: () => clearInterval(timer),
  };
}

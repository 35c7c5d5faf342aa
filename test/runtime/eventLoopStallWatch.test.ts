import test from "ava";
import type { LogFields, LogLevel } from "../../actors/ports/telemetry.ts";
import { eventLoopStallMsMetric, eventLoopStallsMetric, startEventLoopStallWatch } from "../../runtime/eventLoopStallWatch.ts";
import { MetricsRegistry } from "../../runtime/metricsRegistry.ts";

interface LoggedLine {
  readonly level: LogLevel;
  readonly event: string;
  readonly fields: LogFields | undefined;
}

function recordingLog(): { readonly lines: LoggedLine[]; write(level: LogLevel, event: string, fields?: LogFields): void } {
  const lines: LoggedLine[] = [];
  return { lines, write: (level, event, fields) => void lines.push({ level, event, fields }) };
}

function blockEventLoop(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // holding the loop on purpose
  }
}

const settle = (ms: number) => new Promise((done) => setTimeout(done, ms));

test("a blocked event loop is warned about with how long it was held, and counted", async (t) => {
  const log = recordingLog();
  const metrics = new MetricsRegistry();
  const watch = startEventLoopStallWatch({ log, metrics, thresholdMs: 60, probeIntervalMs: 10 });
  t.teardown(() => watch.stop());
  await settle(30);
  blockEventLoop(200);
  await settle(40);
  t.true(watch.stalls >= 1);
  t.true(watch.longestStallMs >= 150, `longest stall ${watch.longestStallMs} ms`);
  const warnings = log.lines.filter((line) => line.event === "runtime.event-loop-stall");
  t.true(warnings.length >= 1);
  t.is(warnings[0]!.level, "warn");
  t.true((warnings[0]!.fields?.stalledMs as number) >= 150);
  t.is(metrics.total(eventLoopStallsMetric), watch.stalls);
  t.true(metrics.total(eventLoopStallMsMetric) >= 150);
});

test("stalls close together are all counted but warned about once per spacing", async (t) => {
  const log = recordingLog();
  const metrics = new MetricsRegistry();
  const watch = startEventLoopStallWatch({ log, metrics, thresholdMs: 60, probeIntervalMs: 10, minWarningSpacingMs: 60_000 });
  t.teardown(() => watch.stop());
  await settle(30);
  blockEventLoop(120);
  await settle(30);
  blockEventLoop(120);
  await settle(30);
  t.true(watch.stalls >= 2, `${watch.stalls} stalls`);
  const warnings = log.lines.filter((line) => line.event === "runtime.event-loop-stall");
  t.is(warnings.length, 1);
  t.is(metrics.total(eventLoopStallsMetric), watch.stalls);
});

test("a loop held for less than the threshold is no stall", async (t) => {
  const log = recordingLog();
  const metrics = new MetricsRegistry();
  const watch = startEventLoopStallWatch({ log, metrics, thresholdMs: 5_000, probeIntervalMs: 10 });
  t.teardown(() => watch.stop());
  await settle(30);
  blockEventLoop(150);
  await settle(40);
  t.is(watch.stalls, 0);
  t.is(log.lines.length, 0);
  t.is(metrics.total(eventLoopStallsMetric), 0);
});

test("a threshold or probe interval that is not positive is refused", (t) => {
  const log = recordingLog();
  const metrics = new MetricsRegistry();
  t.throws(() => startEventLoopStallWatch({ log, metrics, thresholdMs: 0 }), { instanceOf: RangeError });
  t.throws(() => startEventLoopStallWatch({ log, metrics, probeIntervalMs: Number.NaN }), { instanceOf: RangeError });
});

test.serial("a stall during work the process names (attribute) is counted, logged as expected busy work with its name, and not warned about; one after it is", async (t) => {
  const log = recordingLog();
  const metrics = new MetricsRegistry();
  const watch = startEventLoopStallWatch({ log, metrics, thresholdMs: 60, probeIntervalMs: 10, minWarningSpacingMs: 0 });
  t.teardown(() => watch.stop());
  await settle(30);
  t.is(
    watch.attribute("paxos-recovery", () => {
      blockEventLoop(150);
      return "recovered";
    }),
    "recovered",
  );
  await settle(40);
  t.true(watch.stalls >= 1);
  const busy = log.lines.filter((line) => line.event === "runtime.event-loop-busy");
  t.is(busy.length, 1);
  t.is(busy[0]!.level, "info");
  t.is(busy[0]!.fields?.activity, "paxos-recovery");
  t.true((busy[0]!.fields?.stalledMs as number) >= 100);
  t.deepEqual(log.lines.filter((line) => line.event === "runtime.event-loop-stall"), [], "no warning for the named work");
  t.is(metrics.total(eventLoopStallsMetric), watch.stalls, "still counted");

  // Work that did not stall is forgotten: a later stall outside any named work is warned about as before.
  watch.attribute("quick", () => undefined);
  await settle(30);
  blockEventLoop(150);
  await settle(40);
  const warnings = log.lines.filter((line) => line.event === "runtime.event-loop-stall");
  t.is(warnings.length, 1);
  t.is(warnings[0]!.level, "warn");
  t.is(log.lines.filter((line) => line.event === "runtime.event-loop-busy").length, 1);
});

test.serial("a named piece of work that throws still counts as the cause of its stall, and the error reaches the caller", async (t) => {
  const log = recordingLog();
  const metrics = new MetricsRegistry();
  const watch = startEventLoopStallWatch({ log, metrics, thresholdMs: 60, probeIntervalMs: 10 });
  t.teardown(() => watch.stop());
  await settle(30);
  t.throws(
    () =>
      watch.attribute("failing-start", () => {
        blockEventLoop(120);
        throw new Error("unreadable log");
      }),
    { message: "unreadable log" },
  );
  await settle(40);
  t.is(log.lines.filter((line) => line.event === "runtime.event-loop-busy")[0]?.fields?.activity, "failing-start");
});

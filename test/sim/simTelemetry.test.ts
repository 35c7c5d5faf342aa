import test from "ava";
import { SimLog, SimMetrics, Transcript, formatLogLine, formatTranscriptTime, maxMetricSeries } from "../../sim/simTelemetry.ts";

test("time is fixed-width milliseconds with three decimals", (t) => {
  t.is(formatTranscriptTime(0), "000000.000");
  t.is(formatTranscriptTime(12.345), "000012.345");
  t.is(formatTranscriptTime(1_234_567.8901), "1234567.890");
});

test("a line is time, node, level, event, then fields in the order given; strings quoted only when needed", (t) => {
  const line = formatLogLine(12.5, "h1", "warn", "hb.missed", {
    monitor: "m2",
    count: 3,
    ok: false,
    note: "two words",
    empty: "",
    absent: null,
    tricky: 'a"b=c',
  });
  t.is(line, '000012.500 h1 warn hb.missed monitor=m2 count=3 ok=false note="two words" empty="" absent=null tricky="a\\"b=c"');
  t.is(formatLogLine(0, "h1", "info", "x", { multi: "line\nbreak" }), '000000.000 h1 info x multi="line\\nbreak"');
});

test("the transcript keeps lines at or above its level, never formatting the others", (t) => {
  let now = 0;
  const transcript = new Transcript(() => now, "info");
  const log = new SimLog(transcript, "n1");
  log.write("debug", "noise");
  now = 1.5;
  log.write("info", "kept", { a: 1 });
  log.write("error", "bad");
  t.false(transcript.isEnabled("debug"));
  t.is(transcript.text(), "000001.500 n1 info kept a=1\n000001.500 n1 error bad\n");
});

test("a full transcript drops further lines and says so at the end", (t) => {
  const transcript = new Transcript(() => 0, "debug", 2);
  for (let index = 0; index < 5; index++) transcript.write("n", "info", `e${index}`);
  t.is(transcript.text(), "000000.000 n info e0\n000000.000 n info e1\n... 3 lines dropped after 2\n");
});

test("metrics: counters by name and labels (label order irrelevant), totals, gauges, observation summaries", (t) => {
  const metrics = new SimMetrics();
  metrics.increment("hb_sent_total");
  metrics.increment("hb_sent_total", undefined, 2);
  metrics.increment("acks_total", { monitor: "m1", result: "ok" });
  metrics.increment("acks_total", { result: "ok", monitor: "m1" });
  metrics.increment("acks_total", { monitor: "m2", result: "ok" }, 5);
  metrics.increment("acks_total_other");
  t.is(metrics.counter("hb_sent_total"), 3);
  t.is(metrics.counter("acks_total", { monitor: "m1", result: "ok" }), 2);
  t.is(metrics.counter("acks_total", { monitor: "m3", result: "ok" }), 0);
  t.is(metrics.counterTotal("acks_total"), 7);
  metrics.setGauge("queue_depth", 4);
  metrics.setGauge("queue_depth", 2);
  t.is(metrics.gauge("queue_depth"), 2);
  t.is(metrics.gauge("missing"), undefined);
  for (const value of [3, 1, 8]) metrics.observe("rtt_ms", value, { monitor: "m1" });
  t.deepEqual(metrics.summary("rtt_ms", { monitor: "m1" }), { count: 3, sum: 12, min: 1, max: 8 });
});

test("metrics refuse nonsense and unbounded series instead of growing without limit", (t) => {
  const metrics = new SimMetrics();
  metrics.increment("c", undefined, -1);
  metrics.increment("c", undefined, Number.NaN);
  metrics.setGauge("g", Number.POSITIVE_INFINITY);
  t.is(metrics.counter("c"), 0);
  t.is(metrics.rejectedUpdates, 3);
  for (let index = 0; index < maxMetricSeries + 10; index++) metrics.increment("by_id", { id: String(index) });
  t.is(metrics.counterTotal("by_id"), maxMetricSeries);
  t.is(metrics.rejectedUpdates, 13);
});

import test from "ava";
import { roundsAtOrBelow, spreadOf, summarizeRounds, type RoundFigures } from "../../bench/roundSummary.ts";

function figures(system: string, p50: number, p99: number, throughput: number, cpu: number, failovers: number[] = []): RoundFigures {
  return { system, latencyP50Ms: p50, latencyP99Ms: p99, throughputPerSecond: throughput, cpuMsPerCommit: cpu, failoverMs: failovers };
}

const rounds = [
  [figures("haring", 2.1, 12.7, 3_700, 3.6, [410, 480]), figures("floor", 1.2, 4.1, Number.NaN, 1.5), figures("etcd", 2.5, 10.2, 850, 3.7, [1_300])],
  [figures("haring", 2.2, 14.0, 3_850, 3.8, [395]), figures("floor", 1.3, 5.0, Number.NaN, 1.6), figures("etcd", 2.4, 10.8, 940, 3.9, [1_250])],
  [figures("haring", 1.9, 10.8, 3_880, 3.2, []), figures("floor", 1.1, 4.0, Number.NaN, 1.4), figures("etcd", 2.3, 11.5, 1_200, 3.6, [])],
];

test("each figure's median and range across the rounds, failovers pooled and sorted, systems in first-seen order", (t) => {
  const [haring, floor, etcd] = summarizeRounds(rounds);
  t.deepEqual(haring, {
    system: "haring",
    rounds: 3,
    latencyP50Ms: { median: 2.1, min: 1.9, max: 2.2 },
    latencyP99Ms: { median: 12.7, min: 10.8, max: 14.0 },
    throughputPerSecond: { median: 3_850, min: 3_700, max: 3_880 },
    cpuMsPerCommit: { median: 3.6, min: 3.2, max: 3.8 },
    failoverMs: [395, 410, 480],
  });
  t.is(floor!.system, "floor");
  t.is(floor!.throughputPerSecond, undefined, "a system that never measured throughput has no spread, not NaN");
  t.deepEqual(etcd!.latencyP99Ms, { median: 10.8, min: 10.2, max: 11.5 });
  t.deepEqual(etcd!.failoverMs, [1_250, 1_300]);
});

test("round by round: at or below counts ties, and only rounds that measured both", (t) => {
  t.deepEqual(roundsAtOrBelow(rounds, "haring", "etcd", "latencyP99Ms"), { atOrBelow: 1, of: 3 });
  t.deepEqual(roundsAtOrBelow(rounds, "haring", "etcd", "latencyP50Ms"), { atOrBelow: 3, of: 3 });
  t.deepEqual(roundsAtOrBelow(rounds, "etcd", "haring", "latencyP99Ms"), { atOrBelow: 2, of: 3 });
  const tie = [[figures("haring", 2, 10, 1, 1), figures("etcd", 2, 10, 1, 1)]];
  t.deepEqual(roundsAtOrBelow(tie, "haring", "etcd", "latencyP99Ms"), { atOrBelow: 1, of: 1 });
  const haringOnly = [[figures("haring", 2, 10, 1, 1)], [figures("haring", 2, 10, 1, 1), figures("etcd", 3, 12, 1, 1)]];
  t.deepEqual(roundsAtOrBelow(haringOnly, "haring", "etcd", "latencyP99Ms"), { atOrBelow: 1, of: 1 });
});

test("the median of an even count is the upper middle, as the reported percentiles pick; none gives no spread", (t) => {
  t.deepEqual(spreadOf([4, 1, 3, 2]), { median: 3, min: 1, max: 4 });
  t.deepEqual(spreadOf([Number.NaN, 5]), { median: 5, min: 5, max: 5 });
  t.is(spreadOf([]), undefined);
  t.is(spreadOf([Number.NaN]), undefined);
});

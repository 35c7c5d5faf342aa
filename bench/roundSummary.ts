/**
 * What `bench:paxos --rounds N` reports across its rounds (bench/viewCommit.ts). One run of each
 * system on this shared machine moves by a quarter or more from one minute to the next (its p99
 * by 10-20 ms between runs of the same code), so a verdict from one round is a coin toss near
 * parity. The rounds alternate the systems; this gives each figure's median and range over them,
 * and in how many rounds one system was at or below another, round by round (each pair measured
 * minutes apart, under the same drift).
 */
import { percentile } from "./percentile.ts";

/** The figures of one system in one round (a subset of bench/viewCommit.ts's `Figures`). */
export interface RoundFigures {
  readonly system: string;
  readonly latencyP50Ms: number;
  readonly latencyP99Ms: number;
  /** NaN for a system without a throughput run (the floors). */
  readonly throughputPerSecond: number;
  readonly cpuMsPerCommit: number;
  readonly failoverMs: readonly number[];
}

export interface Spread {
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

export interface SystemAcrossRounds {
  readonly system: string;
  readonly rounds: number;
  readonly latencyP50Ms: Spread;
  readonly latencyP99Ms: Spread;
  /** undefined when no round measured it. */
  readonly throughputPerSecond: Spread | undefined;
  readonly cpuMsPerCommit: Spread;
  /** Every round's failovers together, sorted. */
  readonly failoverMs: readonly number[];
}

/** The median (the upper middle for an even count: `percentile`'s index floor(n / 2)) and the range of `values`; undefined for none. */
export function spreadOf(values: readonly number[]): Spread | undefined {
  const sorted = values.filter((value) => !Number.isNaN(value)).sort((a, b) => a - b);
  if (sorted.length === 0) return undefined;
  return { median: percentile(sorted, 0.5), min: sorted[0]!, max: sorted.at(-1)! };
}

function must(spread: Spread | undefined, what: string): Spread {
  if (spread === undefined) throw new RangeError(`no round measured ${what}`);
  return spread;
}

/** Each system's figures across `rounds` (every round lists the systems it measured), in the order they first appear. */
export function summarizeRounds(rounds: readonly (readonly RoundFigures[])[]): SystemAcrossRounds[] {
  const bySystem = new Map<string, RoundFigures[]>();
  for (const round of rounds) {
    for (const figures of round) {
      const list = bySystem.get(figures.system) ?? [];
      list.push(figures);
      bySystem.set(figures.system, list);
    }
  }
  return [...bySystem].map(([system, list]) => ({
    system,
    rounds: list.length,
    latencyP50Ms: must(spreadOf(list.map((figures) => figures.latencyP50Ms)), `${system}'s p50`),
    latencyP99Ms: must(spreadOf(list.map((figures) => figures.latencyP99Ms)), `${system}'s p99`),
    throughputPerSecond: spreadOf(list.map((figures) => figures.throughputPerSecond)),
    cpuMsPerCommit: must(spreadOf(list.map((figures) => figures.cpuMsPerCommit)), `${system}'s CPU per commit`),
    failoverMs: list.flatMap((figures) => figures.failoverMs).sort((a, b) => a - b),
  }));
}

export type LowerIsBetter = "latencyP50Ms" | "latencyP99Ms" | "cpuMsPerCommit";

/**
 * In how many of the rounds that measured both `system` and `peer` the first's `figure` was at or
 * below the peer's (`of` counts those rounds).
 */
export function roundsAtOrBelow(rounds: readonly (readonly RoundFigures[])[], system: string, peer: string, figure: LowerIsBetter): { readonly atOrBelow: number; readonly of: number } {
  let atOrBelow = 0;
  let of = 0;
  for (const round of rounds) {
    const mine = round.find((figures) => figures.system === system);
    const theirs = round.find((figures) => figures.system === peer);
    if (mine === undefined || theirs === undefined) continue;
    of++;
    if (mine[figure] <= theirs[figure]) atOrBelow++;
  }
  return { atOrBelow, of };
}

/**
 * The percentile bench:paxos reports (bench/viewCommit.ts) and bench/stallCorrelation.ts matches: the
 * value at index floor(fraction × n) of the sorted figures, NaN for none.
 */
export function percentile(sorted: readonly number[], fraction: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))]!;
}

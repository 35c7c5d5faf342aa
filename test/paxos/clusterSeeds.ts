/**
 * Runs a range of seeds through the cluster harness and sums what happened, so
 * each test file can assert both "no violation" and "the faults really ran".
 */
import { runCluster, type ClusterRunOptions } from "./clusterHarness.ts";

export interface SeedRangeSummary {
  readonly seeds: number;
  readonly failures: string[];
  readonly crashes: number;
  readonly wipes: number;
  readonly commandsCommitted: number;
  readonly slotsChosen: number;
  readonly worstProbeCommitMs: number;
}

export function runSeedRange(firstSeed: number, count: number, options: Partial<ClusterRunOptions> = {}): SeedRangeSummary {
  const failures: string[] = [];
  let crashes = 0;
  let wipes = 0;
  let commandsCommitted = 0;
  let slotsChosen = 0;
  let worstProbeCommitMs = 0;
  for (let seed = firstSeed; seed < firstSeed + count; seed++) {
    const result = runCluster({ ...options, seed });
    failures.push(...result.failures);
    crashes += result.crashes;
    wipes += result.wipes;
    commandsCommitted += result.commandsCommitted;
    slotsChosen += result.slotsChosen;
    worstProbeCommitMs = Math.max(worstProbeCommitMs, result.probeCommitMs);
  }
  return { seeds: count, failures, crashes, wipes, commandsCommitted, slotsChosen, worstProbeCommitMs };
}

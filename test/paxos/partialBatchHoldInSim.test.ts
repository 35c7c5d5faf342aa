/**
 * Leaders that hold back partial batches (`maxInFlightSlotsForPartialBatches`, on in controller
 * processes, off in the recorded scenarios) under the same faults as the default seeds: still safe,
 * still live after healing, and the batches really grew.
 */
import test from "ava";
import { runPaxosCluster } from "../../sim/paxos/paxosClusterRun.ts";
import { runSeedRange } from "./clusterSeeds.ts";

test("pure cores, 3 acceptors, 200 seeds with partial batches held from 1 slot in flight: safe, then live after healing", (t) => {
  const summary = runSeedRange(1, 200, { acceptorCount: 3, config: { maxInFlightSlotsForPartialBatches: 1 } });
  t.deepEqual(summary.failures, [], summary.failures.join("\n"));
  t.true(summary.crashes > 150, `${summary.crashes} crashes`);
  t.true(summary.commandsCommitted > 600, `${summary.commandsCommitted} commands committed`);
  t.true(summary.worstProbeCommitMs > 0 && summary.worstProbeCommitMs < 3_000, `worst probe ${summary.worstProbeCommitMs}ms after healing`);
  // Fuller slots than without the hold, on the same seeds.
  const unheld = runSeedRange(1, 200, { acceptorCount: 3 });
  t.true(summary.commandsCommitted / summary.slotsChosen > unheld.commandsCommitted / unheld.slotsChosen, `${summary.commandsCommitted}/${summary.slotsChosen} against ${unheld.commandsCommitted}/${unheld.slotsChosen} commands per slot`);
});

test("controller actors, 3 controllers, 60 seeds with partial batches held from 2 slots in flight: safe, then live after healing", (t) => {
  const failures: string[] = [];
  let committed = 0;
  for (let seed = 1; seed <= 60; seed++) {
    const result = runPaxosCluster({ seed, controllers: 3, config: { maxInFlightSlotsForPartialBatches: 2 } });
    failures.push(...result.failures.map((failure) => `seed ${seed}: ${failure}`));
    committed += result.stats.commandsCommitted;
  }
  t.deepEqual(failures, [], failures.join("\n"));
  t.true(committed > 500, `${committed} commands committed`);
});

/**
 * Vote notices (`maxVoteNoticeRecipientsPerSlot`, on in controller processes, off in the recorded
 * scenarios): host learners also learn slots from a majority of the acceptors' notices, before the
 * leader's commit. Under the same faults as the default seeds (crashes, disk loss, partitions, loss,
 * duplication, reordering), every learner must still apply the same sequence, and the notices must
 * really have chosen slots.
 */
import test from "ava";
import { runPaxosCluster } from "../../sim/paxos/paxosClusterRun.ts";
import { runSeedRange } from "./clusterSeeds.ts";

test("pure cores, 3 and 5 acceptors, 150 seeds each with vote notices on: safe, then live after healing, and notices chose slots", (t) => {
  for (const acceptorCount of [3, 5]) {
    const summary = runSeedRange(1, 150, { acceptorCount, config: { maxVoteNoticeRecipientsPerSlot: 4, maxInFlightSlotsForPartialBatches: 2 } });
    t.deepEqual(summary.failures, [], summary.failures.join("\n"));
    t.true(summary.crashes > 100, `${acceptorCount} acceptors: ${summary.crashes} crashes`);
    t.true(summary.worstProbeCommitMs > 0 && summary.worstProbeCommitMs < 3_000, `worst probe ${summary.worstProbeCommitMs}ms after healing`);
    t.true(summary.slotsLearnedFromVoteNotices > 200, `${acceptorCount} acceptors: ${summary.slotsLearnedFromVoteNotices} slots learned from vote notices`);
  }
  const off = runSeedRange(1, 20, { acceptorCount: 3 });
  t.is(off.slotsLearnedFromVoteNotices, 0, "off by default");
});

test("controller and learner actors, 3 controllers, 60 seeds with vote notices on: safe, then live after healing", (t) => {
  const failures: string[] = [];
  let committed = 0;
  let byNotices = 0;
  for (let seed = 1; seed <= 60; seed++) {
    const result = runPaxosCluster({ seed, controllers: 3, config: { maxVoteNoticeRecipientsPerSlot: 4, maxInFlightSlotsForPartialBatches: 2 } });
    failures.push(...result.failures.map((failure) => `seed ${seed}: ${failure}`));
    committed += result.stats.commandsCommitted;
    byNotices += result.stats.slotsChosenByVoteNotices;
  }
  t.deepEqual(failures, [], failures.join("\n"));
  t.true(committed > 500, `${committed} commands committed`);
  t.true(byNotices > 50, `${byNotices} slots chosen by vote notices at host learners`);
});

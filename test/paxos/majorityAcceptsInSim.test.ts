/**
 * Controllers as controller processes run them, under the same faults as the default seeds: a
 * new slot's accept goes to a bare majority only (`acceptRecipientsBeyondMajority` 0) and to the
 * rest after `acceptHedgeMs`; messages that attest nothing about the sender's disk leave at once
 * and leaders sync in the background (`leaderOverlapsItsDisk`). The recorded scenarios run none of
 * this. Still safe, still live after healing (a dead or cut-off member of that majority is
 * replaced at the hedge, the resend and by the next slot), and fewer messages on the wire.
 */
import test from "ava";
import { controllerProcessTimings } from "../../runtime/controller/controllerConfig.ts";
import { runPaxosCluster } from "../../sim/paxos/paxosClusterRun.ts";
import { runSeedRange } from "./clusterSeeds.ts";

const majorityOnly = { acceptRecipientsBeyondMajority: 0 };

test("pure cores, 3 acceptors, 200 seeds with accepts to a bare majority: safe, then live after healing", (t) => {
  const summary = runSeedRange(1, 200, { acceptorCount: 3, config: majorityOnly });
  t.deepEqual(summary.failures, [], summary.failures.join("\n"));
  t.true(summary.crashes > 150, `${summary.crashes} crashes`);
  t.true(summary.commandsCommitted > 600, `${summary.commandsCommitted} commands committed`);
  t.true(summary.worstProbeCommitMs > 0 && summary.worstProbeCommitMs < 3_000, `worst probe ${summary.worstProbeCommitMs}ms after healing`);
});

test("pure cores, 5 acceptors, 100 seeds with accepts to a bare majority: safe, then live after healing", (t) => {
  const summary = runSeedRange(1, 100, { acceptorCount: 5, config: majorityOnly });
  t.deepEqual(summary.failures, [], summary.failures.join("\n"));
  t.true(summary.commandsCommitted > 300, `${summary.commandsCommitted} commands committed`);
  t.true(summary.worstProbeCommitMs > 0 && summary.worstProbeCommitMs < 3_000, `worst probe ${summary.worstProbeCommitMs}ms after healing`);
});

test("controller actors as controller processes run them, 60 seeds: safe, live after healing, fewer messages than accepts to all", (t) => {
  const failures: string[] = [];
  let committed = 0;
  let delivered = 0;
  let deliveredToAll = 0;
  let committedToAll = 0;
  for (let seed = 1; seed <= 60; seed++) {
    const result = runPaxosCluster({ seed, controllers: 3, config: controllerProcessTimings, leaderOverlapsItsDisk: true });
    failures.push(...result.failures.map((failure) => `seed ${seed}: ${failure}`));
    committed += result.stats.commandsCommitted;
    delivered += result.stats.messagesDelivered;
    const toAll = runPaxosCluster({ seed, controllers: 3, config: { ...controllerProcessTimings, acceptRecipientsBeyondMajority: 9 }, leaderOverlapsItsDisk: true });
    deliveredToAll += toAll.stats.messagesDelivered;
    committedToAll += toAll.stats.commandsCommitted;
  }
  t.deepEqual(failures, [], failures.join("\n"));
  t.true(committed > 500, `${committed} commands committed`);
  t.true(delivered / committed < deliveredToAll / committedToAll, `${delivered} messages for ${committed} commands against ${deliveredToAll} for ${committedToAll}`);
});

test("controller actors as controller processes run them, 5 controllers, 200 more seeds with disk loss and chunked transfers: safe, then live after healing", (t) => {
  const failures: string[] = [];
  let committed = 0;
  for (let seed = 1001; seed <= 1200; seed++) {
    const result = runPaxosCluster({ seed, controllers: seed % 2 === 0 ? 5 : 3, config: controllerProcessTimings, leaderOverlapsItsDisk: true, diskLossPercent: 20, chunkedTransfers: seed % 3 === 0 });
    failures.push(...result.failures.map((failure) => `seed ${seed}: ${failure}`));
    committed += result.stats.commandsCommitted;
  }
  t.deepEqual(failures, [], failures.join("\n"));
  t.true(committed > 1_500, `${committed} commands committed`);
});

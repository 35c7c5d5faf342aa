/**
 * A compaction whose snapshot has many records not packed yet writes its log
 * rewrite later, once the background packing has packed them
 * (`maxRecordsPackedAtCompaction` in actors/paxos/controllerActor.ts): packing
 * tens of thousands of records in the compacting step held a leader for
 * 160-370 ms. Meanwhile the step's own records are appended as usual and the
 * log keeps the previous snapshot and every vote since. Here every compaction
 * waits (the limit at 0), through crashes, disk loss, chunked transfers and
 * partitions: safety and liveness are checked as in every cluster run, and the
 * held rewrites must still be written.
 */
import test from "ava";
import { controllerProcessTimings } from "../../runtime/controller/controllerConfig.ts";
import { runPaxosCluster } from "../../sim/paxos/paxosClusterRun.ts";

test("compactions that wait for background packing keep the cluster safe and live, and their rewrites are written: 80 seeds", (t) => {
  const failures: string[] = [];
  let held = 0;
  let done = 0;
  let committed = 0;
  for (let seed = 1; seed <= 80; seed++) {
    const result = runPaxosCluster({
      seed,
      controllers: seed % 2 === 0 ? 5 : 3,
      config: { ...controllerProcessTimings, snapshotEverySlots: 16, maxRetainedSlots: 32 },
      leaderOverlapsItsDisk: true,
      holdRewrites: true,
      diskLossPercent: 20,
      chunkedTransfers: seed % 3 === 0,
    });
    failures.push(...result.failures.map((failure) => `seed ${seed}: ${failure}`));
    held += result.stats.rewritesHeld;
    done += result.stats.rewritesDone;
    committed += result.stats.commandsCommitted;
  }
  t.deepEqual(failures, [], failures.join("\n"));
  t.true(committed > 500, `${committed} commands committed`);
  t.true(held > 100, `${held} compactions waited`);
  t.true(done > held / 2, `${done} rewrites written for ${held} compactions that waited`);
});

test("without holding, the same runs rewrite at every compaction and hold none", (t) => {
  let held = 0;
  let done = 0;
  for (let seed = 1; seed <= 10; seed++) {
    const result = runPaxosCluster({ seed, controllers: 3, config: { ...controllerProcessTimings, snapshotEverySlots: 16, maxRetainedSlots: 32 }, leaderOverlapsItsDisk: true });
    t.deepEqual(result.failures, []);
    held += result.stats.rewritesHeld;
    done += result.stats.rewritesDone;
  }
  t.is(held, 0, "sim views are small: under maxRecordsPackedAtCompaction unpacked records");
  t.true(done > 0);
});

import test from "ava";
import { runSeedRange } from "./clusterSeeds.ts";

test("5 acceptors, 400 seeds of loss, duplication, reordering, partitions, crashes, restarts and lost disks: safe, then live after healing", (t) => {
  const summary = runSeedRange(100_001, 400, { acceptorCount: 5 });
  t.deepEqual(summary.failures, [], summary.failures.join("\n"));
  t.true(summary.crashes > 400, `${summary.crashes} crashes`);
  t.true(summary.wipes > 50, `${summary.wipes} lost disks`);
  t.true(summary.commandsCommitted > 1_500, `${summary.commandsCommitted} commands committed`);
  t.true(summary.worstProbeCommitMs > 0 && summary.worstProbeCommitMs < 3_000, `worst probe ${summary.worstProbeCommitMs}ms after healing`);
});

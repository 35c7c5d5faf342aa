import test from "ava";
import { runCluster } from "./clusterHarness.ts";
import { runSeedRange } from "./clusterSeeds.ts";

test("3 acceptors, 600 seeds of loss, duplication, reordering, partitions, crashes, restarts and lost disks: safe, then live after healing", (t) => {
  const summary = runSeedRange(1, 600, { acceptorCount: 3 });
  t.deepEqual(summary.failures, [], summary.failures.join("\n"));
  // The faults really happened, and work got done despite them.
  t.true(summary.crashes > 600, `${summary.crashes} crashes`);
  t.true(summary.wipes > 100, `${summary.wipes} lost disks`);
  t.true(summary.commandsCommitted > 2_000, `${summary.commandsCommitted} commands committed`);
  t.true(summary.worstProbeCommitMs > 0 && summary.worstProbeCommitMs < 3_000, `worst probe ${summary.worstProbeCommitMs}ms after healing`);
});

test("a seed replays identically", (t) => {
  const trace = (seed: number): string[] => {
    const lines: string[] = [];
    runCluster({ seed, acceptorCount: 3, trace: (line) => lines.push(line) });
    return lines;
  };
  const first = trace(4242);
  t.true(first.length > 200);
  t.deepEqual(trace(4242), first);
  t.notDeepEqual(trace(4243), first);
});

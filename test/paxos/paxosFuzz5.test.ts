import test from "ava";
import { runPaxosFuzz } from "../../sim/paxos/paxosFuzz.ts";

test("5 controller actors, 50 seeds of partitions, crashes with torn tails, pauses, loss, duplication, reordering, drift and NATS outages: safe, then live after healing", (t) => {
  const result = runPaxosFuzz({ seeds: 50, startSeed: 100_001, controllers: 5 });
  t.true(result.ok, `${result.summaryText}\n${result.failures.join("\n")}`);
  const totals = result.totals;
  t.true(totals.crashes > 60, `${totals.crashes} crashes`);
  t.true(totals.partitions > 60, `${totals.partitions} partitions`);
  t.true(totals.leaderChanges > 60, `${totals.leaderChanges} elections won`);
  t.true(totals.commandsCommitted > 400, `${totals.commandsCommitted} commands committed`);
  t.true(totals.worstProbeCommitMs > 0 && totals.worstProbeCommitMs < 3_000, `worst probe ${totals.worstProbeCommitMs}ms after healing`);
});

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

// Found with lost disks (`--controllers 5 --disk-loss-percent 30 --chunked-transfers`): c3 campaigned at round 1, lost its
// disk and rejoined while c1 was cut off (c1 never heard its fence, so kept what it saw of c3's earlier life), then restarted
// on its new log. The vote recall refused that log for round 1, which its promise (2.c5) already forbids using again.
test("view fuzz seed 700448 with lost disks: a restart after a rejoin another controller never heard passes the vote recall", (t) => {
  const result = runPaxosFuzz({ seeds: 1, startSeed: 700448, controllers: 5, hosts: 3, diskLossPercent: 30, chunkedTransfers: true });
  t.true(result.ok, `${result.summaryText}\n${result.failures.join("\n")}`);
});

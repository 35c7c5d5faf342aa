import test from "ava";
import { runPaxosCluster } from "../../sim/paxos/paxosClusterRun.ts";

test("randomized runs with every snapshot, promise and rejoin-state moved in 4 KiB chunks, among all the faults (lost disks too): safe, then live after healing", (t) => {
  let transfers = 0;
  for (let seed = 1_000; seed < 1_030; seed++) {
    const result = runPaxosCluster({ seed, controllers: seed % 4 === 3 ? 5 : 3, chunkedTransfers: true, diskLossPercent: 30, healBoundMs: 4_000 });
    if (!result.ok) return t.fail(result.failures.join("\n"));
    transfers += result.stats.transfersCompleted;
  }
  t.true(transfers >= 50, `${transfers} chunked transfers completed over 30 seeds`);
});

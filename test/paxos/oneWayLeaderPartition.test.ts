/**
 * Fuzz seed 40's shape at the level of the pure controller cores: the leader's
 * messages still reach the two followers, but nothing the followers send
 * reaches the leader. The followers can talk to each other (a majority), so a
 * proposal must commit within the scenario library's bound (3 s); before
 * check quorum nothing ever did, because the followers kept hearing the leader.
 */
import test from "ava";
import { controllerHoldsLease } from "../../machines/paxos/controllerNode.ts";
import type { ViewCommand } from "../../machines/view/viewCommands.ts";
import { config, PureCluster } from "./pureCluster.ts";

const commitBoundMs = 3_000;

test("a leader that can send but not receive steps down, and the two followers that can talk commit within the bound", (t) => {
  // Seeds chosen so that c2 wins the first election, as in fuzz seed 40.
  const cluster = new PureCluster({ c1: 4, c2: 7, c3: 2 });
  cluster.runUntil(5_000, () => cluster.leader() !== undefined && controllerHoldsLease(cluster.nodes.get(cluster.leader()!)!, cluster.nowMs));
  t.is(cluster.leader(), "c2");
  cluster.runUntil(cluster.nowMs + 500);

  const cutAtMs = cluster.nowMs;
  cluster.blocked = (from, to) => to === "c2" && from !== "c2";
  const register: ViewCommand = { id: "after-cut", type: "host.register", hostId: "h-after-cut", capacity: { cpu: 4, memoryMiB: 1_024 } };
  // A client on c1 proposes to whoever c1 believes leads (c2 at first, then the new leader), every 200 ms.
  const committed = () => cluster.applied("c1", "h-after-cut") && cluster.applied("c3", "h-after-cut");
  while (!committed() && cluster.nowMs < cutAtMs + commitBoundMs) {
    const believed = cluster.nodes.get("c1")!.proposer.leaderId || "c1";
    if (!cluster.blocked("c1", believed)) cluster.deliver({ type: "paxos.propose", from: "c1", to: believed, command: register });
    cluster.runUntil(cluster.nowMs + 200, committed);
  }
  t.true(committed(), `nothing committed within ${commitBoundMs} ms of the cut`);
  t.log(`committed ${cluster.nowMs - cutAtMs} ms after the cut; leader ${cluster.leader()}`);
  t.true(cluster.nowMs - cutAtMs < config.electionTimeoutMs * 2 + config.electionJitterMs * 2 + config.prepareTimeoutMs);

  const deposed = cluster.nodes.get("c2")!.proposer;
  t.not(deposed.role, "leader", "c2 stepped down: it heard no majority");
  t.true(["c1", "c3"].includes(cluster.leader() ?? ""));
  t.false(controllerHoldsLease(cluster.nodes.get("c2")!, cluster.nowMs));

  // c2 keeps campaigning (it hears nothing), but the new leader's lease keeps its prepares out: no more leader changes.
  const leaderNow = cluster.leader();
  cluster.runUntil(cluster.nowMs + 5_000);
  t.is(cluster.leader(), leaderNow);
  t.true(controllerHoldsLease(cluster.nodes.get(leaderNow!)!, cluster.nowMs));
  t.deepEqual(cluster.leaseOverlaps, []);
});

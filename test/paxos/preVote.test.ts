/**
 * Pre-vote: a controller cut off from the others campaigns unheard; when the
 * partition heals it must not depose the leader the majority elected
 * meanwhile. Without pre-vote its own acceptor promised its ever higher
 * rounds, refused the leader's first heartbeat as stale, and the leader
 * stepped down (scenario controllers-split-2-1: one election, ~380 ms without
 * commits, after the heal).
 */
import test from "ava";
import { formatBallot } from "../../machines/paxos/ballot.ts";
import { controllerHoldsLease, leadershipOf } from "../../machines/paxos/controllerNode.ts";
import type { ViewCommand } from "../../machines/view/viewCommands.ts";
import { ids, PureCluster } from "./pureCluster.ts";

test("a controller cut off while others elect rejoins as a follower: the leader keeps its ballot and commits at once", (t) => {
  // Seeds chosen so that c1 wins the first election, as in the scenario.
  const cluster = new PureCluster({ c1: 1, c2: 2, c3: 3 });
  cluster.runUntil(5_000, () => cluster.leader() !== undefined && controllerHoldsLease(cluster.nodes.get(cluster.leader()!)!, cluster.nowMs));
  t.is(cluster.leader(), "c1");
  cluster.runUntil(cluster.nowMs + 500);

  cluster.blocked = (from, to) => from !== to && (from === "c1" || to === "c1");
  cluster.runUntil(cluster.nowMs + 4_000);
  const leader = cluster.leader() ?? "";
  t.true(leader === "c2" || leader === "c3", `the majority elected a leader (${leader})`);
  const ballot = leadershipOf(cluster.nodes.get(leader)!).ballot;
  t.not(cluster.nodes.get("c1")!.proposer.role, "leader", "c1 stepped down: it heard no majority");

  const healedAtMs = cluster.nowMs;
  cluster.blocked = () => false;
  const changes: string[] = [];
  cluster.runUntil(healedAtMs + 3_000, () => {
    const now = leadershipOf(cluster.nodes.get(leader)!);
    if (now.role !== "leader" || formatBallot(now.ballot) !== formatBallot(ballot)) changes.push(`${cluster.nowMs - healedAtMs} ms after the heal: ${leader} ${now.role} ${formatBallot(now.ballot)}`);
    return changes.length > 0;
  });
  t.deepEqual(changes, [], "the leader was never deposed");
  t.is(cluster.nodes.get("c1")!.proposer.leaderId, leader, "c1 follows the new leader");
  t.is(formatBallot(cluster.nodes.get("c1")!.acceptor.promised), formatBallot(ballot), "c1's acceptor never promised a round of its own unheard campaign");
  t.deepEqual(cluster.leaseOverlaps, []);

  // A command proposed right after the heal commits within a few message delays, with c1's vote counted.
  const register: ViewCommand = { id: "after-heal", type: "host.register", hostId: "h-after-heal", capacity: { cpu: 4, memoryMiB: 1_024 } };
  const proposedAtMs = cluster.nowMs;
  cluster.deliver({ type: "paxos.propose", from: "c1", to: leader, command: register });
  const everywhere = () => ids.every((id) => cluster.applied(id, "h-after-heal"));
  cluster.runUntil(proposedAtMs + 100, everywhere);
  t.true(everywhere(), "committed and applied on all three within 100 ms");
});

test("a follower that no longer hears the leader, which keeps its quorum through the third controller, still learns what it commits (fuzz seeds 237, 245)", (t) => {
  const cluster = new PureCluster({ c1: 1, c2: 2, c3: 3 });
  cluster.runUntil(5_000, () => cluster.leader() !== undefined && controllerHoldsLease(cluster.nodes.get(cluster.leader()!)!, cluster.nowMs));
  t.is(cluster.leader(), "c1");
  cluster.runUntil(cluster.nowMs + 500);
  const ballot = formatBallot(leadershipOf(cluster.nodes.get("c1")!).ballot);

  // One way: nothing from the leader reaches c2; c2 still reaches c1, and c2 and c3 talk both ways.
  cluster.blocked = (from, to) => from === "c1" && to === "c2";
  cluster.runUntil(cluster.nowMs + 1_000);
  const register: ViewCommand = { id: "while-cut", type: "host.register", hostId: "h-while-cut", capacity: { cpu: 4, memoryMiB: 1_024 } };
  const proposedAtMs = cluster.nowMs;
  cluster.deliver({ type: "paxos.propose", from: "c2", to: "c1", command: register });
  cluster.runUntil(proposedAtMs + 100, () => cluster.applied("c1", "h-while-cut") && cluster.applied("c3", "h-while-cut"));
  t.true(cluster.applied("c1", "h-while-cut") && cluster.applied("c3", "h-while-cut"), "c1 and c3 commit it at once");

  // c2's pre-votes are refused (c3 grants c1 the lease, rightly: c1 leads a majority), and no commit
  // index reaches c2 from the leader; the refusal itself must lead c2 to what it missed.
  cluster.runUntil(proposedAtMs + 1_500, () => cluster.applied("c2", "h-while-cut"));
  t.true(cluster.applied("c2", "h-while-cut"), `c2 learned the command within 1.5 s (it applied ${cluster.nodes.get("c2")!.learner.nextSlot} slots, c3 ${cluster.nodes.get("c3")!.learner.nextSlot})`);
  t.is(cluster.leader(), "c1", "the leader was never deposed");
  t.is(formatBallot(leadershipOf(cluster.nodes.get("c1")!).ballot), ballot);
  t.is(cluster.nodes.get("c2")!.proposer.role, "follower", "c2 never prepared");
  t.deepEqual(cluster.leaseOverlaps, []);
});

/**
 * Within one election round (`prepareTimeoutMs`) a candidate sends its
 * pre-vote and its prepare again, every `heartbeatIntervalMs`, to the
 * acceptors that have not answered. Before, a round needed every one of its
 * messages to get through: one lost pre-vote, prepare or answer cost the
 * round, then a fresh election timeout (CI fuzz seed 101: a bare majority of
 * five at 19% loss needed thirteen rounds, 3.3 s, to elect).
 */
import test from "ava";
import { controllerHoldsLease } from "../../machines/paxos/controllerNode.ts";
import { config, PureCluster, type Message } from "./pureCluster.ts";

const electionMessageTypes = ["paxos.pre-vote", "paxos.pre-vote-reply", "paxos.prepare", "paxos.promise"] as const;

/** c1 leads with the lease, then is cut off for good: c2 and c3 must elect one of them. */
function clusterWithLeaderGone(): PureCluster {
  const cluster = new PureCluster({ c1: 1, c2: 2, c3: 3 });
  cluster.runUntil(5_000, () => cluster.leader() !== undefined && controllerHoldsLease(cluster.nodes.get(cluster.leader()!)!, cluster.nowMs));
  cluster.runUntil(cluster.nowMs + 500);
  cluster.blocked = (from, to) => from !== to && (from === "c1" || to === "c1");
  return cluster;
}

/** Runs until c2 or c3 leads; returns ms from the first pre-vote either of them started to that. */
function electionTime(cluster: PureCluster): number | undefined {
  let startedAtMs: number | undefined;
  const deadline = cluster.nowMs + 5_000;
  cluster.runUntil(deadline, () => {
    if (startedAtMs === undefined && ["c2", "c3"].some((id) => cluster.nodes.get(id)!.proposer.preVote !== null)) startedAtMs = cluster.nowMs;
    const leader = cluster.leader();
    return leader === "c2" || leader === "c3";
  });
  const leader = cluster.leader();
  return startedAtMs === undefined || (leader !== "c2" && leader !== "c3") ? undefined : cluster.nowMs - startedAtMs;
}

for (const lostType of electionMessageTypes) {
  test(`the first ${lostType} on each link lost: the same round elects, well within prepareTimeoutMs`, (t) => {
    const cluster = clusterWithLeaderGone();
    t.is(cluster.leader(), "c1");
    const lostOn = new Set<string>();
    cluster.lost = (message: Message) => {
      if (message.type !== lostType || message.from === message.to) return false;
      const link = `${message.from}>${message.to}`;
      if (lostOn.has(link)) return false;
      lostOn.add(link);
      return true;
    };
    const tookMs = electionTime(cluster);
    t.true(lostOn.size >= 1, `a ${lostType} was lost`);
    t.not(tookMs, undefined, "c2 or c3 was elected");
    // Within the round (a resend interval or two and a few message delays); a lost round would cost
    // prepareTimeoutMs and then a new election timeout (350 ms and more).
    t.true(tookMs! < config.prepareTimeoutMs, `elected ${tookMs} ms after the first pre-vote`);
    t.deepEqual(cluster.leaseOverlaps, []);
  });
}

test("without loss the election sends nothing again: one pre-vote and one prepare per acceptor", (t) => {
  const cluster = clusterWithLeaderGone();
  const sent: Message[] = [];
  cluster.lost = (message) => {
    if ((electionMessageTypes as readonly string[]).includes(message.type)) sent.push(message);
    return false;
  };
  const tookMs = electionTime(cluster);
  t.not(tookMs, undefined);
  const winner = cluster.leader()!;
  const fromWinner = (type: string) => sent.filter((message) => message.type === type && message.from === winner).length;
  t.is(fromWinner("paxos.pre-vote"), config.acceptorIds.length);
  t.is(fromWinner("paxos.prepare"), config.acceptorIds.length);
});

test("resends are bounded: a candidate nobody answers sends each acceptor at most one pre-vote per heartbeat interval of its round, and stops with the round", (t) => {
  const cluster = clusterWithLeaderGone();
  // c2 hears nothing at all from now on (its own acceptor still answers it).
  cluster.blocked = (from, to) => from !== to && (from === "c1" || to === "c1" || to === "c2");
  const preVotes: { atMs: number; to: string }[] = [];
  cluster.lost = (message) => {
    if (message.type === "paxos.pre-vote" && message.from === "c2" && message.to !== "c2") preVotes.push({ atMs: cluster.nowMs, to: message.to });
    return false;
  };
  cluster.runUntil(cluster.nowMs + 3_000);
  t.true(preVotes.length > 0, "c2 campaigned");
  const roundStarts = preVotes.filter((sent, index) => index === 0 || sent.atMs - preVotes[index - 1]!.atMs > config.prepareTimeoutMs).map((sent) => sent.atMs);
  t.true(roundStarts.length >= 2, `${roundStarts.length} rounds in 3 s`);
  const perRoundMax = 2 * Math.ceil(config.prepareTimeoutMs / config.heartbeatIntervalMs);
  for (const start of roundStarts) {
    const inRound = preVotes.filter((sent) => sent.atMs >= start && sent.atMs < start + config.prepareTimeoutMs);
    t.true(inRound.length > 2, `the round at ${start} ms sent again (${inRound.length} pre-votes)`);
    t.true(inRound.length <= perRoundMax, `the round at ${start} ms sent ${inRound.length} pre-votes, at most ${perRoundMax} allowed`);
    t.true(inRound.every((sent) => sent.atMs - start < config.prepareTimeoutMs), "nothing after the round ended");
  }
  // Between rounds c2 waits out an election delay: no pre-vote in the gaps.
  for (let index = 1; index < preVotes.length; index++) {
    const gap = preVotes[index]!.atMs - preVotes[index - 1]!.atMs;
    t.true(gap === 0 || gap >= config.heartbeatIntervalMs, `pre-votes ${gap} ms apart`);
  }
});

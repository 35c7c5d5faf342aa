import test from "ava";
import type { Ballot } from "../../machines/paxos/ballot.ts";
import { createPaxosConfig, type PaxosConfig } from "../../machines/paxos/config.ts";
import type { PaxosMessage, ReportedVote } from "../../machines/paxos/messages.ts";
import {
  createProposer,
  holdsLease,
  nextAcceptHedgeAtMs,
  stepProposer,
  type ProposerInput,
  type ProposerState,
  type ProposerStep,
  type ProposerSurroundings,
} from "../../machines/paxos/proposer.ts";
import type { SlotValue } from "../../machines/paxos/values.ts";

interface Cmd {
  readonly id: string;
}

const acceptors = ["c1", "c2", "c3"];
const baseConfig = createPaxosConfig(acceptors, {
  heartbeatIntervalMs: 50,
  leaseDurationMs: 300,
  clockDriftMarginMs: 30,
  electionTimeoutMs: 400,
  electionJitterMs: 100,
  prepareTimeoutMs: 200,
  acceptRetryMs: 100,
  maxCommandsPerBatch: 4,
  maxInFlightSlots: 2,
  maxPendingCommands: 8,
  commitBeaconIntervalMs: 1_000,
});
const around: ProposerSurroundings = { chosenBelow: 0, acceptorPromisedRound: 0, mayCampaign: true };
const ballot = (round: number, controllerId: string): Ballot => ({ round, controllerId });
const value = (...ids: string[]): SlotValue<Cmd> => ({ kind: "commands", commands: ids.map((id) => ({ id })) });
const cmd = (id: string): Cmd => ({ id });

function fresh(config: PaxosConfig = baseConfig, seed = 7): ProposerState<Cmd> {
  return createProposer<Cmd>({ proposerId: "c1", config, records: [], nowMs: 0, randomSeed: seed });
}

function step(state: ProposerState<Cmd>, input: ProposerInput<Cmd>, surroundings = around): ProposerStep<Cmd> {
  return stepProposer(state, input, surroundings);
}

function deliver(state: ProposerState<Cmd>, message: PaxosMessage<Cmd>, nowMs: number, surroundings = around): ProposerStep<Cmd> {
  return step(state, { type: "message", message, nowMs }, surroundings);
}

function sent<T extends PaxosMessage<Cmd>["type"]>(result: ProposerStep<Cmd>, type: T): Extract<PaxosMessage<Cmd>, { type: T }>[] {
  return result.sendAfterSync.filter((message): message is Extract<PaxosMessage<Cmd>, { type: T }> => message.type === type);
}

const promise = (from: string, b: Ballot, votes: ReportedVote<Cmd>[] = [], floorSlot = 0): PaxosMessage<Cmd> => ({ type: "paxos.promise", from, to: "c1", ballot: b, floorSlot, votes });
const accepted = (from: string, b: Ballot, slot: number): PaxosMessage<Cmd> => ({ type: "paxos.accepted", from, to: "c1", ballot: b, slot });
const propose = (from: string, id: string): PaxosMessage<Cmd> => ({ type: "paxos.propose", from, to: "c1", command: cmd(id) });

const preVoteGrant = (from: string, b: Ballot): PaxosMessage<Cmd> => ({ type: "paxos.pre-vote-reply", from, to: "c1", ballot: b, granted: true, promised: ballot(0, ""), leaseHolderId: "", leaseRemainingMs: 0 });

/** The election at `nowMs` of a proposer that has seen a ballot: a pre-vote first, granted by c1 and c2, then the prepare. */
function campaignAfterPreVote(state: ProposerState<Cmd>, nowMs: number, surroundings = around): ProposerStep<Cmd> {
  const asked = step(state, { type: "tick", nowMs }, surroundings);
  const preVotes = sent(asked, "paxos.pre-vote");
  if (preVotes.length === 0) return asked;
  const b = preVotes[0]!.ballot;
  return deliver(deliver(asked.state, preVoteGrant("c1", b), nowMs + 1, surroundings).state, preVoteGrant("c2", b), nowMs + 2, surroundings);
}

/** Campaigns at `atMs` and collects promises from c1 and c2 with the given votes. */
function elect(votes: { c1?: ReportedVote<Cmd>[]; c2?: ReportedVote<Cmd>[] } = {}, surroundings = around, config = baseConfig): { state: ProposerState<Cmd>; last: ProposerStep<Cmd>; b: Ballot } {
  const campaign = step(fresh(config), { type: "tick", nowMs: 1_000 }, surroundings);
  const b = campaign.state.ballot;
  const first = deliver(campaign.state, promise("c1", b, votes.c1 ?? []), 1_010, surroundings);
  const last = deliver(first.state, promise("c2", b, votes.c2 ?? []), 1_020, surroundings);
  return { state: last.state, last, b };
}

test("a follower campaigns only after the election timeout plus jitter, persisting its round before preparing", (t) => {
  const state = fresh();
  t.true(state.electionDueAtMs >= 400 && state.electionDueAtMs <= 500);
  t.deepEqual(step(state, { type: "tick", nowMs: state.electionDueAtMs - 1 }).sendAfterSync, []);
  const campaign = step(state, { type: "tick", nowMs: state.electionDueAtMs }, { ...around, chosenBelow: 5 });
  t.is(campaign.state.role, "candidate");
  t.deepEqual(campaign.persist, [{ kind: "round", round: 1 }]);
  t.deepEqual(
    sent(campaign, "paxos.prepare").map((message) => [message.to, message.fromSlot, message.ballot.round]),
    acceptors.map((to) => [to, 5, 1]),
  );
  // Different seeds spread the first election over the jitter window.
  const dues = new Set(Array.from({ length: 20 }, (_, seed) => fresh(baseConfig, seed).electionDueAtMs));
  t.true(dues.size > 10);
});

test("no campaign while the node's acceptor is rejoining, and rounds start above its promise", (t) => {
  const state = fresh();
  t.deepEqual(step(state, { type: "tick", nowMs: 10_000 }, { ...around, mayCampaign: false }).sendAfterSync, []);
  const campaign = campaignAfterPreVote(state, 10_000, { ...around, acceptorPromisedRound: 41 });
  t.deepEqual(campaign.state.ballot, ballot(42, "c1"));
});

test("a heartbeat from a leader postpones the election; a newer candidate's prepare too", (t) => {
  const state = fresh();
  const heard = deliver(state, { type: "paxos.heartbeat", from: "c2", to: "c1", ballot: ballot(3, "c2"), commitIndex: 0, sequence: 1 }, 450);
  t.is(heard.state.leaderId, "c2");
  t.true(heard.state.electionDueAtMs >= 850);
  t.deepEqual(step(heard.state, { type: "tick", nowMs: 849 }).sendAfterSync, []);
  const prepared = deliver(state, { type: "paxos.prepare", from: "c3", to: "c1", ballot: ballot(2, "c3"), fromSlot: 0 }, 300);
  t.true(prepared.state.electionDueAtMs >= 700);
  t.is(prepared.state.maxRoundSeen, 2);
});

test("on a majority of promises the leader re-proposes the highest-ballot vote per slot and fills gaps with no-ops", (t) => {
  const { state, last, b } = elect({
    c1: [
      { slot: 0, ballot: ballot(1, "c2"), value: value("a") },
      { slot: 1, ballot: ballot(1, "c2"), value: value("b-old") },
    ],
    c2: [
      { slot: 1, ballot: ballot(2, "c3"), value: value("b-new") },
      { slot: 3, ballot: ballot(1, "c2"), value: value("d") },
    ],
  }, around, { ...baseConfig, maxInFlightSlots: 8 });
  t.true(last.becameLeader);
  t.is(state.role, "leader");
  t.is(state.leader?.startSlot, 0);
  t.is(state.leader?.nextSlot, 4);
  const accepts = sent(last, "paxos.accept").filter((message) => message.to === "c2");
  t.deepEqual(
    accepts.map((message) => [message.slot, message.value]),
    [
      [0, value("a")],
      [1, value("b-new")],
      [2, { kind: "noop" }],
      [3, value("d")],
    ],
  );
  t.true(accepts.every((message) => message.ballot === b || (message.ballot.round === b.round && message.ballot.controllerId === b.controllerId)));
  t.is(sent(last, "paxos.heartbeat").length, 3);
});

test("phase 1 starts above the highest compaction floor reported: those slots are chosen already", (t) => {
  const { state } = elect({ c1: [{ slot: 12, ballot: ballot(1, "c2"), value: value("m") }] }, around);
  t.is(state.leader?.startSlot, 0);
  const campaign = step(fresh(), { type: "tick", nowMs: 1_000 });
  const b = campaign.state.ballot;
  const one = deliver(campaign.state, promise("c2", b, [{ slot: 12, ballot: ballot(1, "c2"), value: value("m") }], 10), 1_010);
  const two = deliver(one.state, promise("c3", b, [], 4), 1_020);
  t.is(two.state.leader?.startSlot, 10);
  t.is(two.state.leader?.commitIndex, 10);
  t.deepEqual(sent(two, "paxos.accept").map((message) => message.slot).filter((slot, index, all) => all.indexOf(slot) === index), [10, 11]);
});

test("commands are pipelined within maxInFlightSlots and batched while the window is full; a majority chooses and advances the commit index", (t) => {
  const elected = elect();
  const b = elected.b;
  let state = elected.state;
  for (let index = 0; index < 7; index++) state = deliver(state, propose("h1", `x${index}`), 1_030).state;
  t.is(state.leader?.sendCursor, 2, "two slots in flight, the rest waits");
  t.deepEqual(state.leader?.proposals.get(0)?.value, value("x0"));
  t.deepEqual(state.leader?.proposals.get(1)?.value, value("x1"));
  t.deepEqual(state.pending.map((item) => item.command.id), ["x2", "x3", "x4", "x5", "x6"]);
  // One vote is not a majority.
  let result = deliver(state, accepted("c1", b, 1), 1_040);
  t.deepEqual(result.chosen, []);
  result = deliver(result.state, accepted("c3", b, 1), 1_041);
  t.deepEqual(result.chosen, [{ slot: 1, value: value("x1") }]);
  t.is(result.state.leader?.commitIndex, 0, "slot 0 is still open");
  t.deepEqual(sent(result, "paxos.commit"), [{ type: "paxos.commit", from: "c1", to: "*", entries: [{ slot: 1, value: value("x1") }], commitIndex: 0 }]);
  t.deepEqual(sent(result, "paxos.accept"), [], "the window is bounded by the commit index, not by chosen slots");
  result = deliver(result.state, accepted("c2", b, 0), 1_042);
  result = deliver(result.state, accepted("c3", b, 0), 1_043);
  t.is(result.state.leader?.commitIndex, 2);
  // The window opened: waiting commands go out in batches of maxCommandsPerBatch, carrying the new commit index.
  const next = sent(result, "paxos.accept");
  t.deepEqual([...new Set(next.map((message) => message.slot))], [2, 3]);
  t.deepEqual(next.find((message) => message.slot === 2)?.value, value("x2", "x3", "x4", "x5"));
  t.deepEqual(next.find((message) => message.slot === 3)?.value, value("x6"));
  t.true(next.every((message) => message.commitIndex === 2));
  // Duplicate votes are not counted twice.
  const twice = deliver(deliver(result.state, accepted("c1", b, 2), 1_050).state, accepted("c1", b, 2), 1_051);
  t.deepEqual(twice.chosen, []);
});

test("from maxInFlightSlotsForPartialBatches slots in flight a leader opens new slots only for full batches", (t) => {
  let state = elect({}, around, { ...baseConfig, maxInFlightSlots: 8, maxInFlightSlotsForPartialBatches: 2 }).state;
  // Fewer than two slots in flight: single commands go at once.
  for (const id of ["x0", "x1", "x2", "x3", "x4"]) state = deliver(state, propose("h1", id), 1_030).state;
  t.is(state.leader?.sendCursor, 2, "two slots in flight; the next three commands are not a full batch and wait");
  t.deepEqual(state.pending.map((item) => item.command.id), ["x2", "x3", "x4"]);
  // A full batch does not wait: the window still has room.
  const full = deliver(state, propose("h1", "x5"), 1_031);
  t.is(full.state.leader?.sendCursor, 3);
  t.deepEqual(sent(full, "paxos.accept").find((message) => message.to === "c2")?.value, value("x2", "x3", "x4", "x5"));
  t.deepEqual(full.state.pending, []);
});

test("a leader whose partial batches wait sends them all in one slot when an earlier slot is chosen", (t) => {
  const elected = elect({}, around, { ...baseConfig, maxInFlightSlots: 8, maxInFlightSlotsForPartialBatches: 1 });
  const b = elected.b;
  let state = deliver(elected.state, propose("h1", "x0"), 1_030).state;
  t.is(state.leader?.sendCursor, 1, "alone, the first command goes at once");
  for (const id of ["x1", "x2", "x3"]) state = deliver(state, propose("h1", id), 1_031).state;
  t.is(state.leader?.sendCursor, 1, "three commands are not a full batch of four: they wait for slot 0");
  t.deepEqual(state.pending.map((item) => item.command.id), ["x1", "x2", "x3"]);
  const chosen = deliver(deliver(state, accepted("c2", b, 0), 1_040).state, accepted("c3", b, 0), 1_041);
  t.deepEqual(chosen.chosen, [{ slot: 0, value: value("x0") }]);
  const accepts = sent(chosen, "paxos.accept");
  t.deepEqual(accepts.map((message) => [message.to, message.slot]), acceptors.map((to) => [to, 1]));
  t.deepEqual(accepts[0]?.value, value("x1", "x2", "x3"));
  t.deepEqual(chosen.state.pending, []);
});

test("with acceptRecipientsBeyondMajority 0 a new slot goes to the leader and the follower it heard from last; the other gets it at the resend", (t) => {
  const config = { ...baseConfig, acceptRecipientsBeyondMajority: 0 };
  const elected = elect({}, around, config);
  const b = elected.b;
  // c2 promised, c3 was never heard.
  const first = deliver(elected.state, propose("h1", "x"), 1_030);
  t.deepEqual(sent(first, "paxos.accept").map((message) => message.to), ["c1", "c2"]);
  t.deepEqual(sent(step(first.state, { type: "tick", nowMs: 1_129 }), "paxos.accept"), []);
  t.deepEqual(sent(step(first.state, { type: "tick", nowMs: 1_130 }), "paxos.accept").map((message) => message.to), ["c1", "c2", "c3"], "unanswered: every acceptor at the resend");
  // c3 answers a heartbeat after c2's vote: the next slot goes to c3.
  let state = deliver(deliver(first.state, accepted("c1", b, 0), 1_031).state, accepted("c2", b, 0), 1_032).state;
  state = deliver(state, { type: "paxos.heartbeat-ack", from: "c3", to: "c1", ballot: b, sequence: 0 }, 1_040).state;
  t.deepEqual(sent(deliver(state, propose("h1", "y"), 1_041), "paxos.accept").map((message) => [message.to, message.slot]), [["c1", 1], ["c3", 1]]);
  // The default sends to all.
  t.deepEqual(sent(deliver(elect().state, propose("h1", "x"), 1_030), "paxos.accept").map((message) => message.to), acceptors);
});

test("a slot sent to a bare majority goes to the rest acceptHedgeMs later if still open, once; nextAcceptHedgeAtMs says when", (t) => {
  const config = { ...baseConfig, acceptRecipientsBeyondMajority: 0, acceptHedgeMs: 1 };
  const elected = elect({}, around, config);
  const b = elected.b;
  const first = deliver(elected.state, propose("h1", "x"), 1_030.25);
  t.deepEqual(sent(first, "paxos.accept").map((message) => message.to), ["c1", "c2"]);
  t.is(nextAcceptHedgeAtMs(first.state), 1_031.25);
  t.deepEqual(sent(step(first.state, { type: "tick", nowMs: 1_031.2 }), "paxos.accept"), []);
  const hedged = step(first.state, { type: "tick", nowMs: 1_031.25 });
  t.deepEqual(sent(hedged, "paxos.accept").map((message) => [message.to, message.slot]), [["c3", 0]]);
  t.is(nextAcceptHedgeAtMs(hedged.state), null, "hedged once");
  t.deepEqual(sent(step(hedged.state, { type: "tick", nowMs: 1_032 }), "paxos.accept"), []);
  // c3's vote with the leader's own chooses the slot: c2's never mattered.
  const chosen = deliver(deliver(hedged.state, accepted("c3", b, 0), 1_032).state, accepted("c1", b, 0), 1_033);
  t.deepEqual(chosen.chosen, [{ slot: 0, value: value("x") }]);
  // A slot chosen before its hedge is due is never hedged.
  const quick = deliver(deliver(first.state, accepted("c1", b, 0), 1_030.5).state, accepted("c2", b, 0), 1_030.6);
  t.is(nextAcceptHedgeAtMs(quick.state), null);
  t.deepEqual(sent(step(quick.state, { type: "tick", nowMs: 1_040 }), "paxos.accept"), []);
  // Off (0), or a slot sent to all: nothing to hedge.
  t.is(nextAcceptHedgeAtMs(deliver(elect({}, around, { ...config, acceptHedgeMs: 0 }).state, propose("h1", "x"), 1_030).state), null);
  t.is(nextAcceptHedgeAtMs(deliver(elect({}, around, { ...config, acceptRecipientsBeyondMajority: 9 }).state, propose("h1", "x"), 1_030).state), null);
});

test("with accepts to a bare majority, a follower that just reached its snapshot point goes last", (t) => {
  const config = { ...baseConfig, acceptRecipientsBeyondMajority: 0, snapshotEverySlots: 512, maxRetainedSlots: 1_024 };
  // c2 snapshots at phase 170 of each 512 slots: once it has applied slot 169.
  const busy = deliver(elect({}, { ...around, chosenBelow: 171 }, config).state, propose("h1", "x"), 1_030, { ...around, chosenBelow: 171 });
  t.deepEqual(sent(busy, "paxos.accept").map((message) => [message.to, message.slot]), [["c1", 171], ["c3", 171]], "c2 is busy: c3, never heard, goes instead");
  const later = deliver(elect({}, { ...around, chosenBelow: 170 + 64 }, config).state, propose("h1", "x"), 1_030, { ...around, chosenBelow: 234 });
  t.deepEqual(sent(later, "paxos.accept").map((message) => message.to), ["c1", "c2"], "64 slots after its snapshot point c2 counts as done");
});

test("with five acceptors a bare majority is three, and acceptRecipientsBeyondMajority adds to it", (t) => {
  const five = ["c1", "c2", "c3", "c4", "c5"];
  const config = createPaxosConfig(five, { ...baseConfig, acceptRecipientsBeyondMajority: 0 });
  const campaign = step(fresh(config), { type: "tick", nowMs: 1_000 });
  const b = campaign.state.ballot;
  let state = campaign.state;
  for (const [from, at] of [["c1", 1_010], ["c4", 1_011], ["c2", 1_012]] as const) {
    state = deliver(state, { ...promise(from, b), to: "c1" }, at).state;
  }
  t.is(state.role, "leader");
  t.deepEqual(sent(deliver(state, propose("h1", "x"), 1_030), "paxos.accept").map((message) => message.to), ["c1", "c2", "c4"], "heard at the same ms as the others' promises: index order breaks the tie");
  const oneMore = { ...state, config: { ...config, acceptRecipientsBeyondMajority: 1 } };
  t.is(sent(deliver(oneMore, propose("h1", "x"), 1_030), "paxos.accept").length, 4);
});

test("unacknowledged accepts are re-sent after acceptRetryMs to the acceptors that have not voted", (t) => {
  const elected = elect();
  const b = elected.b;
  let state = deliver(elected.state, propose("h1", "x"), 1_030).state;
  state = deliver(state, accepted("c2", b, 0), 1_040).state;
  t.deepEqual(sent(step(state, { type: "tick", nowMs: 1_100 }), "paxos.accept"), []);
  const resent = sent(step(state, { type: "tick", nowMs: 1_130 }), "paxos.accept");
  t.deepEqual(resent.map((message) => message.to), ["c1", "c3"]);
});

test("the lease holds from a heartbeat's send time once a majority acknowledged it, minus the drift margin", (t) => {
  const { state: leader, b } = elect();
  t.false(holdsLease(leader, 1_020), "promises grant no lease");
  const ticked = step(leader, { type: "tick", nowMs: 1_070 });
  const heartbeats = sent(ticked, "paxos.heartbeat");
  t.is(heartbeats.length, 3);
  const sequence = heartbeats[0]!.sequence;
  const ack = (from: string): PaxosMessage<Cmd> => ({ type: "paxos.heartbeat-ack", from, to: "c1", ballot: b, sequence });
  let state = deliver(ticked.state, ack("c2"), 1_080).state;
  t.false(holdsLease(state, 1_080));
  state = deliver(state, ack("c3"), 1_090).state;
  t.true(holdsLease(state, 1_090));
  t.true(holdsLease(state, 1_070 + 300 - 30 - 1));
  t.false(holdsLease(state, 1_070 + 300 - 30));
});

test("a stale-ballot refusal makes the leader step down and refuse its pending commands to their senders", (t) => {
  const elected = elect({}, around, { ...baseConfig, maxInFlightSlots: 1 });
  const b = elected.b;
  let state = deliver(elected.state, propose("h1", "x"), 1_030).state;
  state = deliver(state, propose("h2", "y"), 1_030).state;
  const refusal: PaxosMessage<Cmd> = {
    type: "paxos.reject",
    from: "c2",
    to: "c1",
    ballot: b,
    reason: "stale-ballot",
    promised: ballot(9, "c3"),
    leaseHolderId: "c3",
    leaseRemainingMs: 0,
    floorSlot: 0,
    slot: 0,
  };
  const result = deliver(state, refusal, 1_040);
  t.true(result.lostLeadership);
  t.is(result.state.role, "follower");
  t.is(result.state.leaderId, "c3");
  t.is(result.state.maxRoundSeen, 9);
  t.deepEqual(sent(result, "paxos.propose-reply"), [{ type: "paxos.propose-reply", from: "c1", to: "h2", commandId: "y", refusal: "not-leader", leaderHint: "c3" }]);
  // A refusal naming this proposer's own id is a fence by a rejoining acceptor: prepare again at once.
  const fenced = deliver(state, { ...refusal, promised: ballot(b.round + 1, "c1") }, 1_040);
  t.is(fenced.state.role, "candidate");
  t.deepEqual(fenced.state.ballot, ballot(b.round + 2, "c1"));
  t.is(sent(fenced, "paxos.prepare").length, 3);
});

test("a candidate refused for a held lease waits at least the remaining lease before trying again", (t) => {
  const campaign = step(fresh(), { type: "tick", nowMs: 1_000 });
  const refused = deliver(
    campaign.state,
    { type: "paxos.reject", from: "c2", to: "c1", ballot: campaign.state.ballot, reason: "lease-held", promised: ballot(1, "c3"), leaseHolderId: "c3", leaseRemainingMs: 250, floorSlot: 0, slot: -1 },
    1_010,
  );
  t.is(refused.state.role, "follower");
  t.is(refused.state.leaderId, "c3");
  t.true(refused.state.electionDueAtMs >= 1_260 && refused.state.electionDueAtMs <= 1_360);
  // An unanswered prepare is abandoned after prepareTimeoutMs.
  t.is(step(campaign.state, { type: "tick", nowMs: 1_199 }).state.role, "candidate");
  t.is(step(campaign.state, { type: "tick", nowMs: 1_200 }).state.role, "follower");
});

test("proposals reaching a follower are refused with a leader hint; a full queue refuses as overloaded", (t) => {
  const follower = deliver(fresh(), { type: "paxos.heartbeat", from: "c2", to: "c1", ballot: ballot(3, "c2"), commitIndex: 0, sequence: 1 }, 10).state;
  t.deepEqual(sent(deliver(follower, propose("h1", "x"), 20), "paxos.propose-reply"), [
    { type: "paxos.propose-reply", from: "c1", to: "h1", commandId: "x", refusal: "not-leader", leaderHint: "c2" },
  ]);
  let { state } = elect({}, around, { ...baseConfig, maxInFlightSlots: 1, maxCommandsPerBatch: 1, maxPendingCommands: 2 });
  for (const id of ["a", "b", "c"]) state = deliver(state, propose("h1", id), 1_030).state;
  t.deepEqual(state.pending.map((item) => item.command.id), ["b", "c"]);
  t.deepEqual(sent(deliver(state, propose("h1", "d"), 1_031), "paxos.propose-reply").map((message) => message.refusal), ["overloaded"]);
  // A local submission is refused through `refused`, not a message.
  t.deepEqual(step(state, { type: "submit", command: cmd("e"), nowMs: 1_032 }).refused, [{ commandId: "e", refusal: "overloaded" }]);
});

test("a leader confirms slots its learner learned elsewhere when they match its proposal, and steps down when they do not", (t) => {
  let { state } = elect();
  state = deliver(state, propose("h1", "x"), 1_030).state;
  const matching = step(state, { type: "learned", entries: [{ slot: 0, value: value("x") }], nowMs: 1_040 });
  t.is(matching.state.leader?.commitIndex, 1);
  t.deepEqual(matching.chosen, [{ slot: 0, value: value("x") }]);
  const other = step(state, { type: "learned", entries: [{ slot: 0, value: value("z") }], nowMs: 1_040 });
  t.is(other.state.role, "follower");
  t.true(other.lostLeadership);
});

test("a leader whose learner jumped past its commit index by catch-up prepares again from there", (t) => {
  let { state } = elect();
  state = deliver(state, propose("h1", "x"), 1_030).state;
  const ahead = { ...around, chosenBelow: 5 };
  t.is(step(state, { type: "tick", nowMs: 1_100 }, ahead).state.role, "leader", "grace period");
  const again = step(state, { type: "tick", nowMs: 1_030 + 200 }, ahead);
  t.is(again.state.role, "candidate");
  t.deepEqual(sent(again, "paxos.prepare").map((message) => message.fromSlot), [5, 5, 5]);
  t.deepEqual(again.state.pending.map((item) => item.command.id), [], "x was in flight, not pending");
});

test("a restarted proposer never reuses a round it made durable", (t) => {
  const campaign = step(fresh(), { type: "tick", nowMs: 1_000 });
  const restarted = createProposer<Cmd>({ proposerId: "c1", config: baseConfig, records: [...campaign.persist], nowMs: 2_000, randomSeed: 1 });
  const next = campaignAfterPreVote(restarted, 10_000);
  t.deepEqual(next.state.ballot, ballot(2, "c1"));
});

/** Elected at 1_020; its heartbeat of 1_070 acknowledged by c1 (itself) at 1_071 and c2 at 1_072. */
function electedAndAcked(): { state: ProposerState<Cmd>; b: Ballot; ack: (from: string) => PaxosMessage<Cmd> } {
  const { state: leader, b } = elect();
  const ticked = step(leader, { type: "tick", nowMs: 1_070 });
  const sequence = sent(ticked, "paxos.heartbeat")[0]!.sequence;
  const ack = (from: string): PaxosMessage<Cmd> => ({ type: "paxos.heartbeat-ack", from, to: "c1", ballot: b, sequence });
  return { state: deliver(deliver(ticked.state, ack("c1"), 1_071).state, ack("c2"), 1_072).state, b, ack };
}

test("check quorum: a leader that hears no majority within the election timeout steps down, its lease already lapsed", (t) => {
  // From 1_072 on only its own acceptor (c1) answers.
  const acked = electedAndAcked();
  const { b, ack } = acked;
  let state = acked.state;
  t.true(holdsLease(state, 1_080));
  // c2's last answer came at 1_072: the quorum lasts until 1_072 + electionTimeoutMs. The leader goes on
  // ticking and sending heartbeats that only its own acceptor answers.
  for (let nowMs = 1_120; nowMs < 1_072 + 400 - 1; nowMs += 50) state = step(state, { type: "tick", nowMs }).state;
  state = deliver(state, ack("c1"), 1_400).state;
  const still = step(state, { type: "tick", nowMs: 1_072 + 400 - 1 });
  t.is(still.state.role, "leader");
  t.false(holdsLease(still.state, 1_072 + 400 - 1), "the lease ran out long before the quorum check fires");
  const down = step(still.state, { type: "tick", nowMs: 1_072 + 400 });
  t.true(down.lostLeadership);
  t.is(down.state.role, "follower");
  t.is(down.state.leaderId, "");
  t.deepEqual(down.sendAfterSync, [], "no heartbeat, accept or commit leaves on the step-down");
  // It gives the others a full election timeout plus the whole jitter, and its own jitter, before campaigning.
  t.true(down.state.electionDueAtMs >= 1_472 + 400 + 100 && down.state.electionDueAtMs <= 1_472 + 400 + 200);
  t.deepEqual(sent(step(down.state, { type: "tick", nowMs: 1_472 + 400 + 99 }), "paxos.heartbeat"), []);

  // Answers from a majority (accepted replies count like heartbeat acks) keep it leading.
  let kept = deliver(elect().state, propose("h1", "x"), 1_030).state;
  for (let nowMs = 1_050; nowMs <= 3_000; nowMs += 50) {
    kept = deliver(kept, accepted("c3", b, 0), nowMs).state;
    kept = deliver(kept, { type: "paxos.heartbeat-ack", from: "c1", to: "c1", ballot: b, sequence: 1 }, nowMs).state;
    kept = step(kept, { type: "tick", nowMs }).state;
  }
  t.is(kept.role, "leader");
  // Answers at another ballot are not answers to this leader.
  let other = elect().state;
  for (let nowMs = 1_050; nowMs < 1_020 + 400; nowMs += 50) {
    other = deliver(other, accepted("c3", ballot(b.round + 1, "c3"), 0), nowMs).state;
    other = step(other, { type: "tick", nowMs }).state;
  }
  t.is(step(other, { type: "tick", nowMs: 1_020 + 400 }).state.role, "follower");
});

test("check quorum counts silence in heartbeat rounds: a leader whose own ticks stopped (a stall) does not step down on its first tick back, but after 3 unanswered rounds", (t) => {
  const { state: answered, b } = electedAndAcked();
  // Held from 1_072 to 1_900: no tick, no heartbeat; then back.
  const back = step(answered, { type: "tick", nowMs: 1_900 });
  t.is(back.state.role, "leader", "silence it did not ask about is no evidence");
  t.is(sent(back, "paxos.heartbeat").length, 3, "it asks at once");
  t.false(holdsLease(back.state, 1_900), "but it holds no lease meanwhile");
  // Its followers answer the first round: it stays.
  const round = sent(back, "paxos.heartbeat")[0]!.sequence;
  const answeredAgain = deliver(back.state, { type: "paxos.heartbeat-ack", from: "c2", to: "c1", ballot: b, sequence: round }, 1_902).state;
  t.is(step(answeredAgain, { type: "tick", nowMs: 1_960 }).state.role, "leader");
  // Nobody answers: the third unanswered round is the last.
  let silent = back.state;
  const roles: string[] = [];
  for (let nowMs = 1_950; nowMs <= 2_050; nowMs += 50) {
    silent = step(silent, { type: "tick", nowMs }).state;
    roles.push(`${nowMs}:${silent.role}`);
  }
  t.deepEqual(roles, ["1950:leader", "2000:leader", "2050:follower"]);
});

test("a candidate whose prepare reached no majority waits longer than a follower postpones for its prepare", (t) => {
  const campaign = step(fresh(), { type: "tick", nowMs: 1_000 });
  for (let seed = 0; seed < 20; seed++) {
    const expired = step({ ...campaign.state, randomSeed: seed + 1 }, { type: "tick", nowMs: 1_200 });
    t.is(expired.state.role, "follower");
    // Followers that saw its prepare at 1_000 campaign by 1_000 + 400 + 100 at the latest.
    t.true(expired.state.electionDueAtMs > 1_000 + 400 + 100, `seed ${seed}`);
    t.true(expired.state.electionDueAtMs <= 1_200 + 400 + 200, `seed ${seed}`);
  }
});

test("pre-vote: a proposer that saw a ballot prepares only after a majority granted; a refusal under a lease makes it wait", (t) => {
  const restarted = createProposer<Cmd>({ proposerId: "c1", config: baseConfig, records: [{ kind: "round", round: 3 }], nowMs: 0, randomSeed: 7 });
  const asked = step(restarted, { type: "tick", nowMs: 1_000 });
  t.is(asked.state.role, "follower");
  t.deepEqual(asked.persist, [], "no round is used for a pre-vote");
  t.deepEqual(sent(asked, "paxos.prepare"), []);
  const b = sent(asked, "paxos.pre-vote")[0]!.ballot;
  t.deepEqual(sent(asked, "paxos.pre-vote").map((message) => message.to), acceptors);
  t.deepEqual(b, ballot(4, "c1"));

  // One grant is not a majority; the same acceptor twice is one grant.
  const one = deliver(deliver(asked.state, preVoteGrant("c1", b), 1_001).state, preVoteGrant("c1", b), 1_002);
  t.deepEqual(one.sendAfterSync, []);
  // A grant that reports a higher promise lifts the round of the real prepare above it.
  const higher: PaxosMessage<Cmd> = { type: "paxos.pre-vote-reply", from: "c2", to: "c1", ballot: b, granted: true, promised: ballot(9, "c3"), leaseHolderId: "", leaseRemainingMs: 0 };
  const prepared = deliver(one.state, higher, 1_003);
  t.is(prepared.state.role, "candidate");
  t.deepEqual(prepared.persist, [{ kind: "round", round: 10 }]);
  t.deepEqual(sent(prepared, "paxos.prepare").map((message) => message.ballot), acceptors.map(() => ballot(10, "c1")));

  // A live leader's lease at one acceptor: no prepare, and the next pre-vote waits for the grant to run out.
  const leaseHeld: PaxosMessage<Cmd> = { type: "paxos.pre-vote-reply", from: "c2", to: "c1", ballot: b, granted: false, promised: ballot(3, "c2"), leaseHolderId: "c2", leaseRemainingMs: 250 };
  const refused = deliver(asked.state, leaseHeld, 1_001);
  t.is(refused.state.role, "follower");
  t.is(refused.state.preVote, null);
  t.true(refused.state.electionDueAtMs >= 1_251);
  t.deepEqual(step(refused.state, { type: "tick", nowMs: 1_250 }).sendAfterSync, []);
  // A pre-vote nobody answers is dropped after prepareTimeoutMs; nothing was persisted or promised anywhere.
  const expired = step(asked.state, { type: "tick", nowMs: 1_000 + baseConfig.prepareTimeoutMs });
  t.is(expired.state.preVote, null);
  t.deepEqual(expired.persist, []);
  t.true(expired.state.electionDueAtMs > 1_000 + baseConfig.prepareTimeoutMs);
  // A leader heard meanwhile cancels it: late grants start nothing.
  const heard = deliver(asked.state, { type: "paxos.heartbeat", from: "c2", to: "c1", ballot: ballot(5, "c2"), commitIndex: 0, sequence: 1 }, 1_001);
  const late = deliver(deliver(heard.state, preVoteGrant("c1", b), 1_002).state, preVoteGrant("c2", b), 1_003);
  t.is(late.state.role, "follower");
  t.deepEqual(late.sendAfterSync, []);
});

test("a follower passes a proposal marked relay on to the leader it knows, once, and still refuses it with the hint (whole-system fuzz seed 624)", (t) => {
  // c1 follows c3 (it heard c3's heartbeat).
  const following = deliver(fresh(), { type: "paxos.heartbeat", from: "c3", to: "c1", ballot: ballot(4, "c3"), commitIndex: 0, sequence: 1 }, 500).state;
  t.is(following.leaderId, "c3");
  const relayed = deliver(following, { type: "paxos.propose", from: "c2", to: "c1", command: cmd("x"), relay: true }, 510);
  t.deepEqual(sent(relayed, "paxos.propose"), [{ type: "paxos.propose", from: "c1", to: "c3", command: cmd("x") }], "on to the leader, without the mark: no second hop");
  t.deepEqual(sent(relayed, "paxos.propose-reply"), [{ type: "paxos.propose-reply", from: "c1", to: "c2", commandId: "x", refusal: "not-leader", leaderHint: "c3" }]);
  // Unmarked proposals are refused only, as before.
  t.deepEqual(sent(deliver(following, propose("c2", "y"), 510), "paxos.propose"), []);
  // Never back to the sender, nor anywhere without a known leader.
  t.deepEqual(sent(deliver(following, { type: "paxos.propose", from: "c3", to: "c1", command: cmd("z"), relay: true }, 510), "paxos.propose"), []);
  t.deepEqual(sent(deliver(fresh(), { type: "paxos.propose", from: "c2", to: "c1", command: cmd("w"), relay: true }, 510), "paxos.propose"), []);
  // The leader itself takes a marked proposal as any other.
  const { state: leading } = elect();
  const taken = deliver(leading, { type: "paxos.propose", from: "c2", to: "c1", command: cmd("v"), relay: true }, 1_030);
  t.deepEqual(sent(taken, "paxos.propose"), []);
  t.true(sent(taken, "paxos.accept").some((accept) => accept.value.kind === "commands" && accept.value.commands.some((command) => command.id === "v")));
});

test("a candidate refuses proposals naming no leader: the one it last followed is the one it replaces (whole-system fuzz seed 1093)", (t) => {
  const following = deliver(fresh(), { type: "paxos.heartbeat", from: "c3", to: "c1", ballot: ballot(4, "c3"), commitIndex: 0, sequence: 1 }, 500).state;
  t.deepEqual(sent(deliver(following, propose("h1", "x"), 510), "paxos.propose-reply").map((reply) => reply.leaderHint), ["c3"], "a follower names its leader");
  const candidate = campaignAfterPreVote(following, 2_000).state;
  t.is(candidate.role, "candidate");
  t.is(candidate.leaderId, "c3");
  const refused = deliver(candidate, propose("h1", "y"), 2_001);
  t.deepEqual(sent(refused, "paxos.propose-reply"), [{ type: "paxos.propose-reply", from: "c1", to: "h1", commandId: "y", refusal: "not-leader", leaderHint: "" }]);
});

import test from "ava";
import { acceptorRecords, recoverAcceptor, stepAcceptor, type AcceptorState, type AcceptorStep } from "../../machines/paxos/acceptor.ts";
import type { Ballot } from "../../machines/paxos/ballot.ts";
import { createPaxosConfig } from "../../machines/paxos/config.ts";
import type { PaxosMessage } from "../../machines/paxos/messages.ts";
import type { DurableRecord } from "../../machines/paxos/records.ts";
import type { SlotValue } from "../../machines/paxos/values.ts";

interface Cmd {
  readonly id: string;
}

const config = createPaxosConfig(["a1", "a2", "a3"], { leaseDurationMs: 300, clockDriftMarginMs: 30, heartbeatIntervalMs: 50, rejoinQuarantineMs: 1_000, rejoinRetryMs: 200 });
const ballot = (round: number, controllerId: string): Ballot => ({ round, controllerId });
const value = (...ids: string[]): SlotValue<Cmd> => ({ kind: "commands", commands: ids.map((id) => ({ id })) });

function fresh(): AcceptorState<Cmd> {
  return recoverAcceptor<Cmd>({ acceptorId: "a1", config, records: [], nowMs: 0, bootstrap: true }).state;
}

function deliver(state: AcceptorState<Cmd>, message: PaxosMessage<Cmd>, nowMs: number): AcceptorStep<Cmd> {
  return stepAcceptor(state, { type: "message", message, nowMs });
}

const prepare = (b: Ballot, fromSlot = 0): PaxosMessage<Cmd> => ({ type: "paxos.prepare", from: b.controllerId, to: "a1", ballot: b, fromSlot });
const accept = (b: Ballot, slot: number, v: SlotValue<Cmd>, commitIndex = 0): PaxosMessage<Cmd> => ({ type: "paxos.accept", from: b.controllerId, to: "a1", ballot: b, slot, value: v, commitIndex });
const heartbeat = (b: Ballot, sequence = 1): PaxosMessage<Cmd> => ({ type: "paxos.heartbeat", from: b.controllerId, to: "a1", ballot: b, commitIndex: 0, sequence });

test("bootstrapping on an empty disk writes the init record and votes", (t) => {
  const started = recoverAcceptor<Cmd>({ acceptorId: "a1", config, records: [], nowMs: 0, bootstrap: true });
  t.is(started.state.mode, "voting");
  t.deepEqual(started.persist, [{ kind: "init", acceptors: ["a1", "a2", "a3"] }], "the init record names the acceptor set its votes count in");
});

test("a higher prepare is promised durably and answered with every vote from its first slot on", (t) => {
  let state = fresh();
  state = deliver(state, accept(ballot(1, "c1"), 3, value("x")), 10).state;
  state = deliver(state, accept(ballot(1, "c1"), 7, value("y")), 11).state;
  const step = deliver(state, prepare(ballot(2, "c2"), 5), 1_000);
  t.deepEqual(step.persist, [{ kind: "promise", ballot: ballot(2, "c2") }]);
  t.deepEqual(step.state.promised, ballot(2, "c2"));
  t.deepEqual(step.sendAfterSync, [
    { type: "paxos.promise", from: "a1", to: "c2", ballot: ballot(2, "c2"), floorSlot: 0, votes: [{ slot: 7, ballot: ballot(1, "c1"), value: value("y") }] },
  ]);
});

test("a prepare, accept or heartbeat below the promise is refused and nothing is persisted", (t) => {
  const state = deliver(fresh(), prepare(ballot(5, "c2")), 0).state;
  for (const message of [prepare(ballot(4, "c3")), prepare(ballot(5, "c1")), accept(ballot(4, "c3"), 0, value("x")), heartbeat(ballot(4, "c3"))]) {
    const step = deliver(state, message, 1);
    t.deepEqual(step.persist, []);
    t.is(step.state, state);
    t.is(step.sendAfterSync.length, 1);
    const reply = step.sendAfterSync[0]!;
    t.is(reply.type, "paxos.reject");
    if (reply.type === "paxos.reject") {
      t.is(reply.reason, "stale-ballot");
      t.deepEqual(reply.promised, ballot(5, "c2"));
    }
  }
});

test("an accept at or above the promise is voted durably, raises the promise, and is acknowledged after sync", (t) => {
  const state = deliver(fresh(), prepare(ballot(2, "c1")), 0).state;
  const step = deliver(state, accept(ballot(3, "c2"), 4, value("x")), 5);
  t.deepEqual(step.persist, [{ kind: "accept", slot: 4, ballot: ballot(3, "c2"), value: value("x") }]);
  t.deepEqual(step.state.promised, ballot(3, "c2"));
  t.deepEqual(step.sendAfterSync, [{ type: "paxos.accepted", from: "a1", to: "c2", ballot: ballot(3, "c2"), slot: 4 }]);
  // A retransmission is acknowledged again without a second write.
  const again = deliver(step.state, accept(ballot(3, "c2"), 4, value("x")), 6);
  t.deepEqual(again.persist, []);
  t.is(again.sendAfterSync[0]?.type, "paxos.accepted");
});

test("a rival's prepare is refused while the lease granted to the leader runs, and taken after", (t) => {
  let state = deliver(fresh(), prepare(ballot(1, "c1")), 0).state;
  // A promise alone grants no lease: a rival candidate may still prepare.
  t.is(deliver(state, prepare(ballot(2, "c2")), 1).sendAfterSync[0]?.type, "paxos.promise");
  state = deliver(state, accept(ballot(1, "c1"), 0, value("x")), 100).state;
  const refused = deliver(state, prepare(ballot(2, "c2")), 250);
  t.deepEqual(refused.persist, []);
  const reply = refused.sendAfterSync[0]!;
  t.is(reply.type, "paxos.reject");
  if (reply.type === "paxos.reject") {
    t.is(reply.reason, "lease-held");
    t.is(reply.leaseHolderId, "c1");
    t.is(reply.leaseRemainingMs, 150);
  }
  // A heartbeat renews the lease.
  state = deliver(state, heartbeat(ballot(1, "c1")), 350).state;
  t.is(deliver(state, prepare(ballot(2, "c2")), 640).sendAfterSync[0]?.type, "paxos.reject");
  // The holder itself may prepare a higher round at any time.
  t.is(deliver(state, prepare(ballot(3, "c1")), 400).sendAfterSync[0]?.type, "paxos.promise");
  // Once the lease ran out the rival is promised.
  const taken = deliver(state, prepare(ballot(2, "c2")), 650);
  t.is(taken.sendAfterSync[0]?.type, "paxos.promise");
  t.deepEqual(taken.persist, [{ kind: "promise", ballot: ballot(2, "c2") }]);
});

test("a heartbeat is acknowledged with its sequence and a higher heartbeat ballot is persisted as a promise", (t) => {
  const state = deliver(fresh(), prepare(ballot(1, "c1")), 0).state;
  const same = deliver(state, heartbeat(ballot(1, "c1"), 7), 10);
  t.deepEqual(same.persist, []);
  t.deepEqual(same.sendAfterSync, [{ type: "paxos.heartbeat-ack", from: "a1", to: "c1", ballot: ballot(1, "c1"), sequence: 7 }]);
  const higher = deliver(state, heartbeat(ballot(2, "c2"), 1), 10);
  t.deepEqual(higher.persist, [{ kind: "promise", ballot: ballot(2, "c2") }]);
});

test("recovery from persisted records restores promise and votes, and assumes the promised leader's lease from the restart", (t) => {
  const records: DurableRecord<Cmd>[] = [];
  let state = fresh();
  records.push({ kind: "init" });
  for (const [message, nowMs] of [
    [prepare(ballot(1, "c1")), 0],
    [accept(ballot(1, "c1"), 0, value("a")), 1],
    [accept(ballot(1, "c1"), 1, value("b")), 2],
    [prepare(ballot(2, "c2")), 900],
    [accept(ballot(2, "c2"), 1, value("c")), 901],
  ] as const) {
    const step = deliver(state, message, nowMs);
    records.push(...step.persist);
    state = step.state;
  }
  const recovered = recoverAcceptor<Cmd>({ acceptorId: "a1", config, records, nowMs: 5_000, bootstrap: false });
  t.deepEqual(recovered.persist, []);
  t.is(recovered.state.mode, "voting");
  t.deepEqual(recovered.state.promised, ballot(2, "c2"));
  t.deepEqual([...recovered.state.votes.entries()], [...state.votes.entries()]);
  t.deepEqual(recovered.state.lease, { holderId: "c2", expiresAtMs: 5_300 });
  t.is(deliver(recovered.state, prepare(ballot(3, "c3")), 5_100).sendAfterSync[0]?.type, "paxos.reject");
  t.is(deliver(recovered.state, prepare(ballot(3, "c3")), 5_300).sendAfterSync[0]?.type, "paxos.promise");
  // A compacting rewrite reproduces the same state.
  const rewritten = recoverAcceptor<Cmd>({ acceptorId: "a1", config, records: acceptorRecords(state), nowMs: 5_000, bootstrap: false });
  t.deepEqual(rewritten.state, recovered.state);
});

test("compaction far past the votes held (a snapshot installed from a peer) drops every vote below it and keeps those above", (t) => {
  let state = fresh();
  for (const slot of [3, 4, 9, 5_000, 5_001]) state = deliver(state, accept(ballot(1, "c1"), slot, value(`v${slot}`)), slot).state;
  state = stepAcceptor(state, { type: "compact", belowSlot: 5 }).state;
  t.deepEqual([...state.votes.keys()].sort((a, b) => a - b), [9, 5_000, 5_001], "a few slots past the floor: walked slot by slot");
  state = stepAcceptor(state, { type: "compact", belowSlot: 5_001 }).state;
  t.deepEqual([...state.votes.keys()], [5_001], "thousands of slots past the floor, three votes: walked vote by vote");
  t.is(state.floorSlot, 5_001);
});

test("compaction drops votes below the floor; accepts there are refused and promises report the floor", (t) => {
  let state = fresh();
  for (let slot = 0; slot < 6; slot++) state = deliver(state, accept(ballot(1, "c1"), slot, value(`v${slot}`)), slot).state;
  state = stepAcceptor(state, { type: "compact", belowSlot: 4 }).state;
  t.deepEqual([...state.votes.keys()], [4, 5]);
  const refused = deliver(state, accept(ballot(1, "c1"), 2, value("late")), 10);
  t.is(refused.sendAfterSync[0]?.type, "paxos.reject");
  if (refused.sendAfterSync[0]?.type === "paxos.reject") t.is(refused.sendAfterSync[0].reason, "compacted");
  const promise = deliver(state, prepare(ballot(2, "c1"), 0), 20).sendAfterSync[0]!;
  t.is(promise.type, "paxos.promise");
  if (promise.type === "paxos.promise") {
    t.is(promise.floorSlot, 4);
    t.deepEqual(promise.votes.map((vote) => vote.slot), [4, 5]);
  }
  const records = acceptorRecords(state);
  t.deepEqual(records.slice(0, 3), [{ kind: "init", acceptors: ["a1", "a2", "a3"] }, { kind: "promise", ballot: ballot(1, "c1") }, { kind: "floor", slot: 4 }]);
  t.is(recoverAcceptor<Cmd>({ acceptorId: "a1", config, records, nowMs: 0, bootstrap: false }).state.floorSlot, 4);
});

test("an acceptor holding as many votes as allowed stops voting instead of growing", (t) => {
  const tiny = createPaxosConfig(["a1", "a2", "a3"], { maxRetainedSlots: 2, snapshotEverySlots: 2, maxInFlightSlots: 1 });
  let state = recoverAcceptor<Cmd>({ acceptorId: "a1", config: tiny, records: [], nowMs: 0, bootstrap: true }).state;
  let slot = 0;
  for (;; slot++) {
    const step = deliver(state, accept(ballot(1, "c1"), slot, value(`v${slot}`)), 0);
    if (step.sendAfterSync[0]?.type === "paxos.reject") {
      t.is((step.sendAfterSync[0] as { reason: string }).reason, "vote-log-full");
      t.deepEqual(step.persist, []);
      break;
    }
    state = step.state;
  }
  t.is(slot, 12);
  // Votes on slots it already holds are still taken.
  t.is(deliver(state, accept(ballot(2, "c1"), 3, value("again")), 0).sendAfterSync[0]?.type, "paxos.accepted");
});

test("a disk that never voted rejoins only after quarantine and fencing a majority of the others", (t) => {
  const started = recoverAcceptor<Cmd>({ acceptorId: "a1", config, records: [], nowMs: 100, bootstrap: false });
  t.is(started.state.mode, "rejoining");
  t.deepEqual(started.persist, []);
  let state = started.state;
  // It does not vote while rejoining.
  for (const message of [prepare(ballot(9, "c2")), accept(ballot(9, "c2"), 0, value("x")), heartbeat(ballot(9, "c2"))]) {
    const reply = deliver(state, message, 200).sendAfterSync[0]!;
    t.is(reply.type, "paxos.reject");
    if (reply.type === "paxos.reject") t.is(reply.reason, "rejoining");
  }
  t.deepEqual(stepAcceptor(state, { type: "tick", nowMs: 1_099 }).sendAfterSync, []);
  const fence = stepAcceptor(state, { type: "tick", nowMs: 1_100 });
  t.deepEqual(fence.sendAfterSync, [
    { type: "paxos.rejoin-fence", from: "a1", to: "a2", attempt: 1 },
    { type: "paxos.rejoin-fence", from: "a1", to: "a3", attempt: 1 },
  ]);
  state = fence.state;
  t.deepEqual(stepAcceptor(state, { type: "tick", nowMs: 1_200 }).sendAfterSync, [], "no re-send before rejoinRetryMs");
  const fromA2: PaxosMessage<Cmd> = {
    type: "paxos.rejoin-state",
    from: "a2",
    to: "a1",
    attempt: 1,
    fence: ballot(5, "c2"),
    floorSlot: 2,
    votes: [
      { slot: 2, ballot: ballot(3, "c1"), value: value("old") },
      { slot: 3, ballot: ballot(4, "c2"), value: value("p") },
    ],
  };
  const fromA3: PaxosMessage<Cmd> = {
    type: "paxos.rejoin-state",
    from: "a3",
    to: "a1",
    attempt: 1,
    fence: ballot(7, "c3"),
    floorSlot: 1,
    votes: [
      { slot: 1, ballot: ballot(1, "c1"), value: value("below-floor") },
      { slot: 2, ballot: ballot(4, "c2"), value: value("new") },
      { slot: 3, ballot: ballot(2, "c1"), value: value("q") },
    ],
  };
  // A reply to an older attempt is ignored.
  t.is(deliver(state, { ...fromA2, attempt: 0 }, 1_210).state.rejoin?.replies.size, 0);
  state = deliver(state, fromA2, 1_210).state;
  t.is(state.mode, "rejoining");
  const rejoined = deliver(state, fromA3, 1_220);
  t.is(rejoined.state.mode, "voting");
  t.deepEqual(rejoined.state.promised, ballot(7, "c3"));
  t.is(rejoined.state.floorSlot, 2);
  t.deepEqual(rejoined.persist, [
    { kind: "init", fencedBy: ["a2", "a3"], acceptors: ["a1", "a2", "a3"] },
    { kind: "promise", ballot: ballot(7, "c3") },
    { kind: "floor", slot: 2 },
    { kind: "inherit", slot: 2, ballot: ballot(4, "c2"), value: value("new") },
    { kind: "inherit", slot: 3, ballot: ballot(4, "c2"), value: value("p") },
  ]);
  // Inherited votes are reported in promises like votes.
  const promise = deliver(rejoined.state, prepare(ballot(8, "c1"), 0), 5_000).sendAfterSync[0]!;
  t.is(promise.type, "paxos.promise");
  if (promise.type === "paxos.promise") t.deepEqual(promise.votes.map((vote) => [vote.slot, vote.ballot.round]), [[2, 4], [3, 4]]);
  // After a restart they are still inherited, not accepted.
  const recovered = recoverAcceptor<Cmd>({ acceptorId: "a1", config, records: rejoined.persist, nowMs: 0, bootstrap: false });
  t.true(recovered.state.votes.get(2)?.inherited);
});

test("a voting acceptor answers a fence by promising a round above its promise, keeping the holder's id", (t) => {
  let state = deliver(fresh(), prepare(ballot(4, "c2")), 0).state;
  state = deliver(state, accept(ballot(4, "c2"), 0, value("x")), 1).state;
  const step = deliver(state, { type: "paxos.rejoin-fence", from: "a3", to: "a1", attempt: 2 }, 2);
  t.deepEqual(step.persist, [{ kind: "promise", ballot: ballot(5, "c2") }]);
  t.deepEqual(step.sendAfterSync, [
    { type: "paxos.rejoin-state", from: "a1", to: "a3", attempt: 2, fence: ballot(5, "c2"), floorSlot: 0, votes: [{ slot: 0, ballot: ballot(4, "c2"), value: value("x") }] },
  ]);
  // Accepts of the old ballot are now refused: the fenced ballot can gather no more votes here.
  t.is(deliver(step.state, accept(ballot(4, "c2"), 1, value("y")), 3).sendAfterSync[0]?.type, "paxos.reject");
});

test("a pre-vote changes nothing and is granted unless another controller's lease runs or the acceptor rejoins", (t) => {
  const preVote = (b: Ballot): PaxosMessage<Cmd> => ({ type: "paxos.pre-vote", from: b.controllerId, to: "a1", ballot: b });
  const leased = deliver(fresh(), heartbeat(ballot(3, "c2")), 1_000).state;
  const refused = deliver(leased, preVote(ballot(4, "c3")), 1_100);
  t.is(refused.state, leased);
  t.deepEqual(refused.persist, []);
  t.deepEqual(refused.sendAfterSync, [
    { type: "paxos.pre-vote-reply", from: "a1", to: "c3", ballot: ballot(4, "c3"), granted: false, promised: ballot(3, "c2"), leaseHolderId: "c2", leaseRemainingMs: 200 },
  ]);
  const holder = deliver(leased, preVote(ballot(4, "c2")), 1_100);
  t.true(holder.sendAfterSync[0]?.type === "paxos.pre-vote-reply" && holder.sendAfterSync[0].granted, "the lease holder itself may always try a higher round");
  const lapsed = deliver(leased, preVote(ballot(4, "c3")), 1_300);
  t.is(lapsed.state, leased);
  t.deepEqual(lapsed.persist, []);
  t.true(lapsed.sendAfterSync[0]?.type === "paxos.pre-vote-reply" && lapsed.sendAfterSync[0].granted, "granted once the lease has run out");
  // Even a round below the promise is granted: the real prepare starts above the reported promise.
  const below = deliver(leased, preVote(ballot(1, "c3")), 1_300);
  t.true(below.sendAfterSync[0]?.type === "paxos.pre-vote-reply" && below.sendAfterSync[0].granted && below.sendAfterSync[0].promised.round === 3);
  const rejoining = recoverAcceptor<Cmd>({ acceptorId: "a1", config, records: [], nowMs: 0, bootstrap: false }).state;
  const quarantined = deliver(rejoining, preVote(ballot(4, "c3")), 10);
  t.true(quarantined.sendAfterSync[0]?.type === "paxos.pre-vote-reply" && !quarantined.sendAfterSync[0].granted);
});

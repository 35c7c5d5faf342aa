import test from "ava";
import type { Ballot } from "../../machines/paxos/ballot.ts";
import { createPaxosConfig } from "../../machines/paxos/config.ts";
import type { PaxosMessage } from "../../machines/paxos/messages.ts";
import type { DurableRecord } from "../../machines/paxos/records.ts";
import type { CommandEnvelope } from "../../machines/paxos/values.ts";
import { durableVotingState, evidenceAfter, evidenceShortfall, noVoteEvidence, recallPeers, type VoteEvidence } from "../../machines/paxos/voteEvidence.ts";
import { acceptorRecords, recoverAcceptor, stepAcceptor, type AcceptorStep } from "../../machines/paxos/acceptor.ts";
import { decodeRecords, encodeRecord, type ViewDurableRecord } from "../../actors/paxos/paxosRecords.ts";

const config = createPaxosConfig(["c1", "c2", "c3"]);
const b = (round: number, controllerId: string): Ballot => ({ round, controllerId });
const noop = { kind: "noop" } as const;

/** What c1 learns of c2 from these messages, in order (null once c2 is known to rejoin). */
function seen(messages: readonly PaxosMessage<CommandEnvelope>[]): VoteEvidence | null {
  let evidence: VoteEvidence | null = noVoteEvidence;
  for (const message of messages) evidence = evidenceAfter(evidence ?? noVoteEvidence, message);
  return evidence;
}

test("an acceptor's replies raise the promise seen; its votes the slot seen; its own ballots the round seen", (t) => {
  const from = { from: "c2", to: "c1" };
  t.deepEqual(seen([{ type: "paxos.promise", ...from, ballot: b(3, "c1"), floorSlot: 0, votes: [] }]), { ...noVoteEvidence, promised: b(3, "c1") });
  t.deepEqual(seen([{ type: "paxos.heartbeat-ack", ...from, ballot: b(4, "c1"), sequence: 1 }])!.promised, b(4, "c1"));
  const refusal = { type: "paxos.reject" as const, ...from, ballot: b(1, "c1"), promised: b(5, "c3"), leaseHolderId: "", leaseRemainingMs: 0, floorSlot: 0, slot: -1 };
  t.deepEqual(seen([{ ...refusal, reason: "stale-ballot" }])!.promised, b(5, "c3"));
  t.deepEqual(seen([{ type: "paxos.pre-vote-reply", ...from, ballot: b(2, "c1"), granted: false, promised: b(6, "c3"), leaseHolderId: "c3", leaseRemainingMs: 10 }])!.promised, b(6, "c3"));
  t.deepEqual(seen([{ type: "paxos.rejoin-state", ...from, attempt: 1, fence: b(7, "c3"), floorSlot: 0, votes: [] }])!.promised, b(7, "c3"));
  // Votes: the highest slot, and within it the highest ballot; an older slot arriving late changes nothing.
  const accepted = (slot: number, ballot: Ballot) => ({ type: "paxos.accepted" as const, ...from, ballot, slot });
  t.deepEqual(seen([accepted(9, b(3, "c1")), accepted(4, b(3, "c1")), accepted(9, b(4, "c3"))]), { promised: b(4, "c3"), votedSlot: 9, votedBallot: b(4, "c3"), roundUsed: 0 });
  // Its proposer's rounds count only in ballots of its own; the accepts and heartbeats of another leader say nothing of c2.
  t.is(seen([{ type: "paxos.prepare", ...from, ballot: b(8, "c2"), fromSlot: 0 }])!.roundUsed, 8);
  t.is(seen([{ type: "paxos.heartbeat", ...from, ballot: b(9, "c2"), commitIndex: 0, sequence: 1 }])!.roundUsed, 9);
  t.is(seen([{ type: "paxos.accept", ...from, ballot: b(9, "c3"), slot: 1, value: noop, commitIndex: 0 }])!.roundUsed, 0);
  // Nothing else speaks for a disk: a pre-vote's ballot was never made durable, a commit carries chosen values.
  t.deepEqual(seen([{ type: "paxos.pre-vote", ...from, ballot: b(12, "c2") }]), noVoteEvidence);
  t.deepEqual(seen([{ type: "paxos.commit", ...from, entries: [], commitIndex: 40 }]), noVoteEvidence);
});

test("a rejoining controller's earlier life is forgotten: its fence request or a refusal for rejoining clears the evidence", (t) => {
  const from = { from: "c2", to: "c1" };
  const promised: PaxosMessage<CommandEnvelope> = { type: "paxos.promise", ...from, ballot: b(3, "c1"), floorSlot: 0, votes: [] };
  t.is(seen([promised, { type: "paxos.rejoin-fence", ...from, attempt: 1 }]), null);
  t.is(seen([promised, { type: "paxos.reject", ...from, ballot: b(4, "c1"), reason: "rejoining", promised: b(0, ""), leaseHolderId: "", leaseRemainingMs: 0, floorSlot: 0, slot: -1 }]), null);
});

function logOf(records: readonly DurableRecord<CommandEnvelope>[]) {
  const state = durableVotingState("c2", config, records);
  if (state === null) throw new Error("expected a voting state");
  return state;
}

test("a log short of the evidence is refused, naming what is missing; one that holds it (or more) is not", (t) => {
  const log = logOf([
    { kind: "init" },
    { kind: "promise", ballot: b(3, "c1") },
    { kind: "round", round: 2 },
    { kind: "accept", slot: 7, ballot: b(3, "c1"), value: noop },
    { kind: "accept", slot: 8, ballot: b(3, "c1"), value: noop },
  ]);
  const evidence: VoteEvidence = { promised: b(3, "c1"), votedSlot: 8, votedBallot: b(3, "c1"), roundUsed: 2 };
  t.is(evidenceShortfall(log, evidence), undefined);
  t.is(evidenceShortfall(log, noVoteEvidence), undefined);
  t.is(evidenceShortfall(log, { ...evidence, votedSlot: 7 }), undefined, "an earlier vote it holds");
  // The positive space: each kind of forgetting is named.
  t.is(evidenceShortfall(log, { ...evidence, promised: b(3, "c3") }), "it promised ballot 3.c3, the log only 3.c1");
  t.is(evidenceShortfall(log, { ...evidence, votedSlot: 9 }), "it voted in slot 9 at ballot 3.c1, the log holds no vote there (its floor is slot 0)");
  t.is(evidenceShortfall(log, { ...evidence, promised: b(4, "c1"), votedSlot: 8, votedBallot: b(4, "c1") }), "it promised ballot 4.c1, the log only 3.c1");
  // Rounds: its next ballot goes above every round it used or promised (3 here), so only a higher one can be used twice.
  t.is(evidenceShortfall(log, { ...evidence, roundUsed: 3 }), undefined);
  t.is(evidenceShortfall(log, { ...evidence, roundUsed: 4 }), "it proposed in round 4, the log knows rounds only up to 3 (it could use round 4 again)");
});

test("a vote compacted under the floor, or replaced by one at a higher ballot, still holds the evidence", (t) => {
  const log = logOf([
    { kind: "init" },
    { kind: "promise", ballot: b(5, "c3") },
    { kind: "accept", slot: 3, ballot: b(2, "c1"), value: noop },
    { kind: "accept", slot: 12, ballot: b(2, "c1"), value: noop },
    { kind: "floor", slot: 10 },
    { kind: "accept", slot: 12, ballot: b(5, "c3"), value: noop },
  ]);
  t.is(evidenceShortfall(log, { promised: b(2, "c1"), votedSlot: 3, votedBallot: b(2, "c1"), roundUsed: 0 }), undefined);
  t.is(evidenceShortfall(log, { promised: b(2, "c1"), votedSlot: 12, votedBallot: b(2, "c1"), roundUsed: 0 }), undefined);
  t.is(evidenceShortfall(log, { promised: b(5, "c3"), votedSlot: 12, votedBallot: b(6, "c1"), roundUsed: 0 }), "it voted in slot 12 at ballot 6.c1, the log holds a vote at 5.c3 (its floor is slot 10)");
});

test("a log that never voted here has nothing to check: the controller rejoins instead", (t) => {
  t.is(durableVotingState("c2", config, []), null);
  t.is(durableVotingState("c2", config, [{ kind: "snapshot", throughSlot: 4, snapshot: {} }]), null);
});

test("a peer that missed the rejoin may remember the earlier life: the log's fence majority alone speaks for it, kept through a rewrite and on disk", (t) => {
  // Five controllers. In its earlier life c1 promised c5's ballot 6.c5 (c5 campaigned while cut off, so only c5 saw
  // it). c1 then lost its disk and rejoined with the fences of c2, c3 and c4, who had promised no more than round 2.
  const five = createPaxosConfig(["c1", "c2", "c3", "c4", "c5"], { rejoinQuarantineMs: 1_000 });
  const c5Saw = seen([{ type: "paxos.promise", from: "c1", to: "c5", ballot: b(6, "c5"), floorSlot: 0, votes: [] }])!;
  let rejoining = recoverAcceptor<CommandEnvelope>({ acceptorId: "c1", config: five, records: [], nowMs: 0, bootstrap: false }).state;
  rejoining = stepAcceptor(rejoining, { type: "tick", nowMs: 1_000 }).state;
  let step: AcceptorStep<CommandEnvelope> | undefined;
  for (const peer of ["c4", "c2", "c3"]) {
    const fence = { type: "paxos.rejoin-state" as const, from: peer, to: "c1", attempt: 1, fence: b(3, "c2"), floorSlot: 0, votes: [] };
    step = stepAcceptor(rejoining, { type: "message", message: fence, nowMs: 1_010 });
    rejoining = step.state;
  }
  t.is(rejoining.mode, "voting");
  t.deepEqual(step!.persist[0], { kind: "init", fencedBy: ["c2", "c3", "c4"], acceptors: ["c1", "c2", "c3", "c4", "c5"] });
  const log = durableVotingState("c1", five, step!.persist)!;
  // What c5 remembers is more than the new life holds, rightly: the old rule refused this log, which is no old copy.
  t.is(evidenceShortfall(log, c5Saw), "it promised ballot 6.c5, the log only 3.c2");
  t.deepEqual(recallPeers(log, five.acceptorIds, "c1"), { asked: ["c2", "c3", "c4"], missedRejoin: ["c5"] });
  // The fence majority is part of the log: a compacting rewrite and the disk's encoding keep it.
  const rewritten = acceptorRecords(rejoining);
  t.deepEqual(rewritten[0], { kind: "init", fencedBy: ["c2", "c3", "c4"], acceptors: ["c1", "c2", "c3", "c4", "c5"] });
  const read = decodeRecords(rewritten.map((record) => encodeRecord("c1", record as ViewDurableRecord)), "c1");
  t.true(read.ok);
  if (read.ok) t.deepEqual(durableVotingState("c1", five, read.records)!.fencedBy, ["c2", "c3", "c4"]);
  // A bootstrapped log had no earlier life: every other controller is asked (the negative space).
  const bootstrapped = durableVotingState("c1", five, [{ kind: "init" }, { kind: "promise", ballot: b(3, "c2") }])!;
  t.deepEqual(recallPeers(bootstrapped, five.acceptorIds, "c1"), { asked: ["c2", "c3", "c4", "c5"], missedRejoin: [] });
});

import test from "ava";
import { PeerEvidenceKeeper, peerEvidenceKeepIntervalMs } from "../../actors/paxos/peerEvidenceKeeper.ts";
import { decodeRecords, encodeRecord, type ViewDurableRecord } from "../../actors/paxos/paxosRecords.ts";
import type { ViewPaxosMessage } from "../../actors/paxos/paxosMessages.ts";
import type { Ballot } from "../../machines/paxos/ballot.ts";
import { noVoteEvidence } from "../../machines/paxos/voteEvidence.ts";

/** c1 keeps what c2 and c3 showed of their disks, in its own log. */
const b = (round: number, controllerId: string): Ballot => ({ round, controllerId });
const ids = ["c1", "c2", "c3"];
const vote: ViewDurableRecord = { kind: "promise", ballot: b(1, "c1") };
const promiseFrom = (from: string, round: number): ViewPaxosMessage => ({ type: "paxos.promise", from, to: "c1", ballot: b(round, "c1"), floorSlot: 0, votes: [] });
const fenceFrom = (from: string): ViewPaxosMessage => ({ type: "paxos.rejoin-fence", from, to: "c1", attempt: 1 });
const kinds = (records: readonly ViewDurableRecord[]) => records.map((record) => (record.kind === "peer-evidence" ? `${record.peer}:${record.promised.round}` : record.kind));

test("changes ride along with a step that writes anyway, at most once per interval; never a write of their own", (t) => {
  const keeper = new PeerEvidenceKeeper("c1", ids, [], 0);
  keeper.note(promiseFrom("c2", 3));
  t.deepEqual(kinds(keeper.withStepRecords([vote], 500)), ["promise"], "not yet due");
  t.deepEqual(kinds(keeper.withStepRecords([], peerEvidenceKeepIntervalMs)), [], "a step that writes nothing gets nothing");
  t.deepEqual(kinds(keeper.withStepRecords([vote], peerEvidenceKeepIntervalMs)), ["c2:3", "promise"]);
  t.deepEqual(kinds(keeper.withStepRecords([vote], 3 * peerEvidenceKeepIntervalMs)), ["promise"], "nothing changed since");
  keeper.note(promiseFrom("c3", 4));
  keeper.note(promiseFrom("c2", 5));
  t.deepEqual(kinds(keeper.withStepRecords([vote], 3 * peerEvidenceKeepIntervalMs)), ["c2:5", "c3:4", "promise"]);
  // Messages from itself or from outside the controller set say nothing.
  keeper.note(promiseFrom("c1", 9));
  keeper.note(promiseFrom("x9", 9));
  t.deepEqual(keeper.of("c1"), noVoteEvidence);
  t.deepEqual(keeper.of("x9"), noVoteEvidence);
});

test("a rejoin fence's forgetting is written with the very next writing step, before its records, once", (t) => {
  const keeper = new PeerEvidenceKeeper("c1", ids, [], 0);
  keeper.note(promiseFrom("c2", 3));
  keeper.note(fenceFrom("c2"));
  t.deepEqual(keeper.of("c2"), noVoteEvidence);
  // The fence's answer is a promise written by the same step: the forgetting goes first, whatever the interval.
  const written = keeper.withStepRecords([vote], 10);
  t.deepEqual(kinds(written), ["c2:0", "promise"]);
  t.deepEqual(written[0], { kind: "peer-evidence", peer: "c2", promised: b(0, ""), votedSlot: -1, votedBallot: b(0, ""), roundUsed: 0 });
  // The fence comes again every retry: nothing more to forget.
  keeper.note(fenceFrom("c2"));
  t.deepEqual(kinds(keeper.withStepRecords([vote], 20)), ["promise"]);
});

test("what was kept is read back at a restart, through the disk's encoding, the last record per peer; a rewrite carries all of it", (t) => {
  const keeper = new PeerEvidenceKeeper("c1", ids, [], 0);
  keeper.note(promiseFrom("c2", 3));
  keeper.note(promiseFrom("c3", 4));
  const log: ViewDurableRecord[] = [...keeper.withStepRecords([vote], peerEvidenceKeepIntervalMs)];
  keeper.note(fenceFrom("c3"));
  log.push(...keeper.withStepRecords([vote], peerEvidenceKeepIntervalMs + 1));
  const read = decodeRecords(log.map((record) => encodeRecord("c1", record)), "c1");
  if (!read.ok) return t.fail(read.error);
  const restarted = new PeerEvidenceKeeper("c1", ids, read.records, 0);
  t.deepEqual(restarted.of("c2").promised, b(3, "c1"));
  t.deepEqual(restarted.of("c3"), noVoteEvidence, "forgotten stays forgotten");
  // A rewrite replaces the log: it holds every peer's evidence (and no forgotten one), and what was pending is no longer.
  keeper.note(promiseFrom("c2", 7));
  t.deepEqual(kinds(keeper.recordsForRewrite(5_000)), ["c2:7"]);
  t.deepEqual(kinds(keeper.withStepRecords([vote], 5_000 + peerEvidenceKeepIntervalMs)), ["promise"]);
  // A record about itself or an unknown controller (a hand-edited log) is not taken.
  const odd = new PeerEvidenceKeeper("c1", ids, [{ kind: "peer-evidence", peer: "c1", promised: b(9, "c1"), votedSlot: -1, votedBallot: b(0, ""), roundUsed: 0 }], 0);
  t.deepEqual(odd.of("c1"), noVoteEvidence);
});

import test from "ava";
import { createPaxosConfig } from "../../machines/paxos/config.ts";
import { createLearner, stepLearner, type LearnerInput, type LearnerState, type LearnerStep } from "../../machines/paxos/learner.ts";
import type { PaxosMessage } from "../../machines/paxos/messages.ts";
import type { ReplicatedStateMachine } from "../../machines/paxos/replicatedStateMachine.ts";
import type { ChosenEntry, SlotValue } from "../../machines/paxos/values.ts";

interface Cmd {
  readonly id: string;
}

/** A log of applied ids; ids starting with "bad" are rejected, as a view rejects an invalid command. */
const appendLog: ReplicatedStateMachine<readonly string[], Cmd> = {
  initialState: [],
  apply: (state, _slot, commands) => {
    const next = [...state];
    const outcomes = commands.map((command) => {
      if (command.id.startsWith("bad")) return { kind: "rejected" as const, reason: `${command.id} is bad` };
      next.push(command.id);
      return { kind: "committed" as const };
    });
    return { state: next, outcomes };
  },
  toSnapshot: (state) => ({ ids: [...state] }),
  fromSnapshot: (snapshot) => {
    const ids = (snapshot as { ids?: unknown } | null)?.ids;
    return Array.isArray(ids) && ids.every((id) => typeof id === "string") ? { ok: true, state: ids as string[] } : { ok: false, error: "not an id list" };
  },
};

const config = createPaxosConfig(["c1", "c2", "c3"], {
  maxRetainedSlots: 4,
  snapshotEverySlots: 3,
  maxBufferedChosenSlots: 8,
  maxFetchSlots: 3,
  catchUpAfterMs: 100,
  fetchTimeoutMs: 200,
});
const value = (...ids: string[]): SlotValue<Cmd> => ({ kind: "commands", commands: ids.map((id) => ({ id })) });
const entry = (slot: number, ...ids: string[]): ChosenEntry<Cmd> => ({ slot, value: ids.length === 0 ? { kind: "noop" } : value(...ids) });

function fresh(learnerId = "c1"): LearnerState<Cmd, readonly string[]> {
  return createLearner({ learnerId, config, machine: appendLog, records: [], nowMs: 0 });
}

function run(state: LearnerState<Cmd, readonly string[]>, inputs: LearnerInput<Cmd>[]): LearnerStep<Cmd, readonly string[]>[] {
  const steps: LearnerStep<Cmd, readonly string[]>[] = [];
  for (const input of inputs) {
    const next = stepLearner(state, input);
    steps.push(next);
    state = next.state;
  }
  return steps;
}

const learn = (nowMs: number, ...entries: ChosenEntry<Cmd>[]): LearnerInput<Cmd> => ({ type: "learn", entries, nowMs });

test("chosen values are applied strictly in slot order; later ones wait for the gap", (t) => {
  const steps = run(fresh(), [learn(1, entry(1, "b")), learn(2, entry(2, "bad1", "c")), learn(3, entry(0, "a")), learn(4, entry(3))]);
  t.deepEqual(steps[0]!.applied, []);
  t.is(steps[0]!.state.nextSlot, 0);
  t.deepEqual(steps[2]!.applied, [
    { slot: 0, commandId: "a", outcome: { kind: "committed" } },
    { slot: 1, commandId: "b", outcome: { kind: "committed" } },
    { slot: 2, commandId: "bad1", outcome: { kind: "rejected", reason: "bad1 is bad" } },
    { slot: 2, commandId: "c", outcome: { kind: "committed" } },
  ]);
  const last = steps[3]!.state;
  t.is(last.nextSlot, 4, "a no-op slot is applied without commands");
  t.deepEqual(last.app, ["a", "b", "c"]);
});

test("a slot learned twice, or already applied, changes nothing", (t) => {
  const [first, second, third] = run(fresh(), [learn(1, entry(0, "a")), learn(2, entry(0, "other")), learn(3, entry(1, "b"), entry(1, "b2"))]);
  t.deepEqual(first!.state.app, ["a"]);
  t.deepEqual(second!.applied, []);
  t.deepEqual(third!.state.app, ["a", "b"]);
});

test("values too far ahead of the applied slot are not buffered", (t) => {
  const [step] = run(fresh(), [learn(1, entry(8, "far"), entry(7, "near"))]);
  t.deepEqual([...step!.state.buffered.keys()], [7]);
});

test("a learner behind the commit index fetches from the leader after catchUpAfterMs, and from another peer when it times out", (t) => {
  let state = stepLearner(fresh("c1"), { type: "hint", commitIndex: 5, leaderId: "c3", nowMs: 0 }).state;
  t.deepEqual(stepLearner(state, { type: "tick", nowMs: 99 }).sendAfterSync, []);
  const first = stepLearner(state, { type: "tick", nowMs: 100 });
  t.deepEqual(first.sendAfterSync, [{ type: "paxos.fetch", from: "c1", to: "c3", fromSlot: 0, maxSlots: 3 }]);
  state = first.state;
  t.deepEqual(stepLearner(state, { type: "tick", nowMs: 299 }).sendAfterSync, [], "one fetch at a time");
  const retry = stepLearner(state, { type: "tick", nowMs: 300 });
  t.deepEqual(retry.sendAfterSync, [{ type: "paxos.fetch", from: "c1", to: "c2", fromSlot: 0, maxSlots: 3 }]);
  // The reply is applied, and the next fetch follows at once while still behind.
  const reply: PaxosMessage<Cmd> = { type: "paxos.fetch-reply", from: "c2", to: "c1", entries: [entry(0, "a"), entry(1, "b"), entry(2, "c")], commitIndex: 5 };
  const applied = stepLearner(retry.state, { type: "message", message: reply, nowMs: 310 });
  t.is(applied.state.nextSlot, 3);
  t.deepEqual(applied.learnedFromPeers.map((item) => item.slot), [0, 1, 2]);
  t.deepEqual(applied.sendAfterSync, [{ type: "paxos.fetch", from: "c1", to: "c2", fromSlot: 3, maxSlots: 3 }]);
});

test("a learner serves retained slots, and a snapshot of its state to a fetch below them", (t) => {
  const [, served] = run(fresh("c2"), [learn(1, entry(0, "a"), entry(1, "b"), entry(2, "c"), entry(3, "d"), entry(4, "e"), entry(5, "f")), { type: "tick", nowMs: 2 }]);
  const state = served!.state;
  t.is(state.nextSlot, 6);
  t.is(state.retainedFrom, 2, "at most maxRetainedSlots applied slots are kept");
  const fetch = (fromSlot: number, maxSlots: number): PaxosMessage<Cmd> => ({ type: "paxos.fetch", from: "h1", to: "c2", fromSlot, maxSlots });
  t.deepEqual(stepLearner(state, { type: "message", message: fetch(3, 10), nowMs: 3 }).sendAfterSync, [
    { type: "paxos.fetch-reply", from: "c2", to: "h1", entries: [entry(3, "d"), entry(4, "e"), entry(5, "f")], commitIndex: 6 },
  ]);
  t.deepEqual(stepLearner(state, { type: "message", message: fetch(2, 2), nowMs: 3 }).sendAfterSync[0], {
    type: "paxos.fetch-reply",
    from: "c2",
    to: "h1",
    entries: [entry(2, "c"), entry(3, "d")],
    commitIndex: 6,
  });
  t.deepEqual(stepLearner(state, { type: "message", message: fetch(1, 2), nowMs: 3 }).sendAfterSync, [
    { type: "paxos.snapshot", from: "c2", to: "h1", throughSlot: 6, snapshot: { ids: ["a", "b", "c", "d", "e", "f"] }, commitIndex: 6 },
  ]);
});

test("a fetch reply stops before maxFetchReplyCommands commands, but always carries a slot; the requester asks again at once", (t) => {
  const budgeted = createPaxosConfig(["c1", "c2", "c3"], { ...config, maxRetainedSlots: 8, snapshotEverySlots: 8, maxFetchSlots: 8, maxFetchReplyCommands: 3 });
  const server = (learnerId: string) => createLearner({ learnerId, config: budgeted, machine: appendLog, records: [], nowMs: 0 });
  const slots = [entry(0, "a1", "a2"), entry(1), entry(2, "c1"), entry(3, "d1", "d2", "d3", "d4"), entry(4, "e1")];
  const state = run(server("c2"), [learn(1, ...slots)])[0]!.state;
  t.is(state.nextSlot, 5);
  const reply = (fromSlot: number) => stepLearner(state, { type: "message", message: { type: "paxos.fetch", from: "c1", to: "c2", fromSlot, maxSlots: 8 }, nowMs: 2 }).sendAfterSync[0];
  t.deepEqual(reply(0), { type: "paxos.fetch-reply", from: "c2", to: "c1", entries: [entry(0, "a1", "a2"), entry(1), entry(2, "c1")], commitIndex: 5 }, "2 + 0 + 1 commands; slot 3 would make 7");
  t.deepEqual(reply(3), { type: "paxos.fetch-reply", from: "c2", to: "c1", entries: [entry(3, "d1", "d2", "d3", "d4")], commitIndex: 5 }, "one slot beyond the budget alone still goes");
  t.deepEqual(reply(4), { type: "paxos.fetch-reply", from: "c2", to: "c1", entries: [entry(4, "e1")], commitIndex: 5 });

  // The requester, behind the commit index, applies each reply and asks for the rest at once.
  let requester = server("c1");
  requester = stepLearner(requester, { type: "hint", commitIndex: 5, leaderId: "c2", nowMs: 1 }).state;
  let step = stepLearner(requester, { type: "tick", nowMs: 200 });
  t.deepEqual(step.sendAfterSync, [{ type: "paxos.fetch", from: "c1", to: "c2", fromSlot: 0, maxSlots: 8 }]);
  for (let round = 0; round < 3; round++) {
    const answer = reply(step.state.nextSlot) as PaxosMessage<Cmd>;
    step = stepLearner(step.state, { type: "message", message: answer, nowMs: 201 + round });
  }
  t.is(step.state.nextSlot, 5);
  t.deepEqual(step.state.app, ["a1", "a2", "c1", "d1", "d2", "d3", "d4", "e1"]);
});

test("snapshots are taken every snapshotEverySlots applied slots, for the node to persist and compact below", (t) => {
  const steps = run(fresh(), [learn(1, entry(0, "a"), entry(1, "b")), learn(2, entry(2, "c")), learn(3, entry(3, "d"))]);
  t.is(steps[0]!.snapshot, null);
  t.deepEqual(steps[1]!.snapshot, { throughSlot: 3, snapshot: { ids: ["a", "b", "c"] } });
  t.is(steps[2]!.snapshot, null);
});

test("a snapshot from a peer is installed when ahead, validated first, and reported for persistence", (t) => {
  let state = stepLearner(fresh("h1"), learn(1, entry(7, "later"))).state;
  const bad: PaxosMessage<Cmd> = { type: "paxos.snapshot", from: "c2", to: "h1", throughSlot: 7, snapshot: { ids: [1, 2] }, commitIndex: 7 };
  const rejected = stepLearner(state, { type: "message", message: bad, nowMs: 2 });
  t.is(rejected.state.nextSlot, 0);
  t.is(rejected.state.snapshotsRejected, 1);
  const good: PaxosMessage<Cmd> = { ...bad, snapshot: { ids: ["x", "y"] } };
  const installed = stepLearner(state, { type: "message", message: good, nowMs: 3 });
  t.deepEqual(installed.snapshot, { throughSlot: 7, snapshot: { ids: ["x", "y"] } });
  // The buffered slot right after the snapshot is applied at once.
  t.is(installed.state.nextSlot, 8);
  t.deepEqual(installed.state.app, ["x", "y", "later"]);
  state = installed.state;
  // An older snapshot is ignored.
  t.is(stepLearner(state, { type: "message", message: { ...good, throughSlot: 4 }, nowMs: 4 }).state.nextSlot, 8);
});

test("a learner restarted with a snapshot record resumes from it", (t) => {
  const restarted = createLearner({
    learnerId: "c1",
    config,
    machine: appendLog,
    records: [
      { kind: "snapshot", throughSlot: 3, snapshot: { ids: ["a"] } },
      { kind: "snapshot", throughSlot: 7, snapshot: { ids: ["a", "b"] } },
      { kind: "snapshot", throughSlot: 9, snapshot: "corrupt" },
    ],
    nowMs: 0,
  });
  t.is(restarted.nextSlot, 7);
  t.deepEqual(restarted.app, ["a", "b"]);
  t.is(restarted.retainedFrom, 7);
});

test("commit broadcasts carry values and the commit index", (t) => {
  const message: PaxosMessage<Cmd> = { type: "paxos.commit", from: "c3", to: "*", entries: [entry(0, "a")], commitIndex: 4 };
  const step = stepLearner(fresh("h1"), { type: "message", message, nowMs: 1 });
  t.is(step.state.nextSlot, 1);
  t.is(step.state.commitHint, 4);
  t.is(step.state.leaderHint, "c3");
  // Still behind: it fetches the rest after catchUpAfterMs.
  t.is(stepLearner(step.state, { type: "tick", nowMs: 101 }).sendAfterSync[0]?.type, "paxos.fetch");
});

test("a fetch being answered in chunks is not timed out while chunks keep coming from its target; chunks from elsewhere do not count", (t) => {
  let state = stepLearner(fresh("c1"), { type: "hint", commitIndex: 5, leaderId: "c3", nowMs: 0 }).state;
  state = stepLearner(state, { type: "tick", nowMs: 100 }).state;
  t.is(state.fetch?.target, "c3");
  state = stepLearner(state, { type: "fetch-progress", from: "c2", nowMs: 250 }).state;
  state = stepLearner(state, { type: "fetch-progress", from: "c3", nowMs: 280 }).state;
  t.deepEqual(stepLearner(state, { type: "tick", nowMs: 479 }).sendAfterSync, [], "still waiting on c3");
  t.deepEqual(stepLearner(state, { type: "tick", nowMs: 480 }).sendAfterSync, [{ type: "paxos.fetch", from: "c1", to: "c2", fromSlot: 0, maxSlots: 3 }], "silent for fetchTimeoutMs: the next peer");
});

test("controllers take their snapshots at staggered slots, each at most snapshotEverySlots apart", (t) => {
  const staggered = createPaxosConfig(["c1", "c2", "c3"], { maxRetainedSlots: 12, snapshotEverySlots: 9, maxBufferedChosenSlots: 64 });
  const snapshotSlots = (learnerId: string, takesSnapshots = true) => {
    let state = createLearner({ learnerId, config: staggered, machine: appendLog, records: [], nowMs: 0, takesSnapshots });
    const slots: number[] = [];
    for (let slot = 0; slot < 30; slot++) {
      const step = stepLearner(state, learn(slot, entry(slot, `x${slot}`)));
      if (step.snapshot) slots.push(step.snapshot.throughSlot);
      state = step.state;
    }
    return slots;
  };
  t.deepEqual(snapshotSlots("c1"), [9, 18, 27]);
  t.deepEqual(snapshotSlots("c2"), [3, 12, 21, 30]);
  t.deepEqual(snapshotSlots("c3"), [6, 15, 24]);
  t.deepEqual(snapshotSlots("h1"), [9, 18, 27], "a learner that is not a controller keeps the plain period");
  t.deepEqual(snapshotSlots("h1", false), [], "one that keeps nothing on disk takes none");
});

test("a fetch behind the retained log is served the newest snapshot already made when the log continues it, not a new one", (t) => {
  let state = fresh("c1");
  let built = 0;
  const counting = { ...appendLog, toSnapshot: (ids: readonly string[]) => (built++, appendLog.toSnapshot(ids)) };
  state = { ...state, machine: counting };
  const ids = ["a", "b", "c", "d", "e", "f", "g", "h"];
  for (const [slot, id] of ids.entries()) state = stepLearner(state, learn(slot, entry(slot, id))).state;
  t.is(state.nextSlot, 8);
  t.is(state.retainedFrom, 4);
  t.is(built, 2, "snapshots at slots 3 and 6");
  const fetch = (fromSlot: number): LearnerInput<Cmd> => ({ type: "message", message: { type: "paxos.fetch", from: "h1", to: "c1", fromSlot, maxSlots: 3 }, nowMs: 9 });
  t.deepEqual(stepLearner(state, fetch(1)).sendAfterSync, [{ type: "paxos.snapshot", from: "c1", to: "h1", throughSlot: 6, snapshot: { ids: ids.slice(0, 6) }, commitIndex: 8 }]);
  t.is(built, 2, "nothing new was built");
  t.deepEqual(stepLearner(state, fetch(6)).sendAfterSync, [{ type: "paxos.fetch-reply", from: "c1", to: "h1", entries: [entry(6, "g"), entry(7, "h")], commitIndex: 8 }], "and the log continues it");
});

import test from "ava";
import { samePlainData, sharedApplyMachine } from "../../machines/paxos/sharedApply.ts";
import type { ViewCommand } from "../../machines/view/viewCommands.ts";
import { viewStateMachine } from "../../machines/view/viewStateMachine.ts";

const register = (hostId: string, cpu = 64): ViewCommand => ({ id: `reg-${hostId}`, type: "host.register", hostId, capacity: { cpu, memoryMiB: 1_024 } });

test("learners applying the same slot to the same view share one result, equal to what each computes alone", (t) => {
  const shared = sharedApplyMachine(viewStateMachine);
  const prior = viewStateMachine.initialState;
  // Each learner decoded its own copy of the commands (a fetch reply, say): equal data, distinct objects.
  const first = shared.apply(prior, 0, [register("h1"), register("h2")]);
  const second = shared.apply(prior, 0, [register("h1"), register("h2")]);
  t.is(second, first);
  t.is(second.state, first.state);
  t.deepEqual(shared.stats, { computed: 1, shared: 1, mismatched: 0 });
  const alone = viewStateMachine.apply(prior, 0, [register("h1"), register("h2")]);
  t.deepEqual([...first.state.hosts.keys()], [...alone.state.hosts.keys()]);
  t.is(first.state.epoch, alone.state.epoch);
  t.deepEqual(first.outcomes, alone.outcomes);
});

test("a different value for the same slot and view is applied on its own: an agreement bug is not hidden by the memo", (t) => {
  const shared = sharedApplyMachine(viewStateMachine);
  const prior = viewStateMachine.initialState;
  const chosen = shared.apply(prior, 0, [register("h1")]);
  // Same command id, different content: a learner that was handed something else.
  const divergent = shared.apply(prior, 0, [register("h1", 8)]);
  t.not(divergent, chosen);
  t.is(divergent.state.hosts.get("h1")?.capacity.cpu, 8);
  t.is(chosen.state.hosts.get("h1")?.capacity.cpu, 64);
  t.is(shared.stats.mismatched, 1);
  // The memo keeps the first result: a later learner with the chosen value still gets it.
  t.is(shared.apply(prior, 0, [register("h1")]), chosen);
});

test("results are keyed by slot as well as prior view", (t) => {
  const shared = sharedApplyMachine(viewStateMachine);
  const prior = viewStateMachine.initialState;
  const atZero = shared.apply(prior, 0, [register("h1")]);
  const atOne = shared.apply(prior, 1, [register("h1")]);
  t.not(atOne, atZero);
  t.is(atOne.state.recentCommandIndex.get("reg-h1")?.slot, 1);
  t.is(atZero.state.recentCommandIndex.get("reg-h1")?.slot, 0);
});

test("samePlainData compares decoded data structurally", (t) => {
  t.true(samePlainData({ a: 1, b: [1, { c: "x" }] }, { b: [1, { c: "x" }], a: 1 }));
  t.false(samePlainData({ a: 1 }, { a: 1, b: undefined }));
  t.false(samePlainData({ a: [1, 2] }, { a: [1, 2, 3] }));
  t.false(samePlainData({ a: "1" }, { a: 1 }));
  t.false(samePlainData([1], { 0: 1 }));
  t.true(samePlainData(Number.NaN, Number.NaN));
  t.false(samePlainData(null, {}));
});

import test from "ava";
import type { ViewLearnerState } from "../../actors/paxos/learnerActor.ts";
import type { ViewDurableRecord } from "../../actors/paxos/paxosRecords.ts";
import { ChunkedMap } from "../../machines/paxos/chunkedMap.ts";
import type { AppliedCommand } from "../../machines/paxos/replicatedStateMachine.ts";
import type { SlotValue } from "../../machines/paxos/values.ts";
import type { ViewCommand } from "../../machines/view/viewCommands.ts";
import { PaxosInvariants } from "../../sim/paxos/paxosInvariants.ts";

const up = (hostId: string): ViewCommand => ({ id: `up-${hostId}`, type: "host.up", hostId, incarnation: 1 });
const value = (...commands: ViewCommand[]): SlotValue<ViewCommand> => ({ kind: "commands", commands });

/** A learner that has applied slot 0 (holding `slotValue`) and stands at slot 1 with `epoch`. */
function learnerAt(slotValue: SlotValue<ViewCommand>, epoch: number): ViewLearnerState {
  return { nextSlot: 1, retained: ChunkedMap.empty<number, SlotValue<ViewCommand>>().with(0, slotValue), app: { epoch } } as unknown as ViewLearnerState;
}

function chosen(invariants: PaxosInvariants, slotValue: SlotValue<ViewCommand>): void {
  const record = { kind: "accept", slot: 0, ballot: { round: 1, controllerId: "c1" }, value: slotValue } as unknown as ViewDurableRecord;
  for (const acceptor of ["c1", "c2"]) invariants.synced(acceptor, [record]);
}

const committed = (commandId: string): AppliedCommand => ({ slot: 0, commandId, outcome: { kind: "committed" } });

test("learners sharing one value and one applied list agree; no violation", (t) => {
  const invariants = new PaxosInvariants(1, ["c1", "c2", "c3"], () => 0);
  const shared = value(up("h1"));
  chosen(invariants, shared);
  const applied = [committed("up-h1")];
  for (const host of ["h1", "h2", "h3"]) invariants.learnerStepped(host, 1, 0, learnerAt(shared, 1), applied);
  t.deepEqual(invariants.violations, []);
});

test("a learner whose outcomes differ from the others' is caught, also when the others share their items", (t) => {
  const invariants = new PaxosInvariants(1, ["c1", "c2", "c3"], () => 0);
  const shared = value(up("h1"));
  chosen(invariants, shared);
  const applied = [committed("up-h1")];
  invariants.learnerStepped("h1", 1, 0, learnerAt(shared, 1), applied);
  invariants.learnerStepped("h2", 1, 0, learnerAt(shared, 1), applied);
  invariants.learnerStepped("h3", 1, 0, learnerAt(value(up("h1")), 1), [{ slot: 0, commandId: "up-h1", outcome: { kind: "rejected", reason: "no" } }]);
  t.is(invariants.violations.length, 1);
  t.regex(invariants.violations[0]!, /learner h3 slot 0 outcomes up-h1:rejected, another learner up-h1:committed/);
});

test("a learner applying another value than the chosen one is caught", (t) => {
  const invariants = new PaxosInvariants(1, ["c1", "c2", "c3"], () => 0);
  const shared = value(up("h1"));
  chosen(invariants, shared);
  invariants.learnerStepped("h1", 1, 0, learnerAt(shared, 1), [committed("up-h1")]);
  invariants.learnerStepped("h2", 1, 0, learnerAt(value(up("h2")), 1), [committed("up-h2")]);
  t.true(invariants.violations.some((violation) => violation.includes("learner h2 applied [up-h2] at slot 0, but [up-h1] was chosen")));
  t.true(invariants.violations.some((violation) => violation.includes("another learner [up-h1]")));
});

test("learners disagreeing on the epoch after a slot are caught", (t) => {
  const invariants = new PaxosInvariants(1, ["c1", "c2", "c3"], () => 0);
  const shared = value(up("h1"));
  chosen(invariants, shared);
  invariants.learnerStepped("h1", 1, 0, learnerAt(shared, 1), [committed("up-h1")]);
  invariants.learnerStepped("h2", 1, 0, learnerAt(shared, 2), [committed("up-h1")]);
  t.true(invariants.violations.some((violation) => violation.includes("learner h2 has epoch 2 at slot 1, another learner 1")));
});

test("while the acceptor set changes, a ballot chooses with a majority of its controller's set: two such values for one slot are caught", (t) => {
  const vote = (acceptor: string, ballot: { round: number; controllerId: string }, slotValue: SlotValue<ViewCommand>) =>
    [{ kind: "accept", slot: 0, ballot, value: slotValue } as unknown as ViewDurableRecord] as const;
  const run = (c1Stepped: boolean): string[] => {
    const invariants = new PaxosInvariants(1, ["c1", "c2", "c3", "c4"], () => 0);
    // c1 stepped to c1-c3 (c4 removed): its ballots from round 1 on count majorities of three.
    if (c1Stepped) invariants.ballotsCountWith("c1", 0, ["c1", "c2", "c3"]);
    for (const acceptor of ["c1", "c2"]) invariants.synced(acceptor, vote(acceptor, { round: 1, controllerId: "c1" }, value(up("h1"))));
    // c4, still on c1-c4, chooses another value at a higher ballot with c2, c3 and itself.
    for (const acceptor of ["c2", "c3", "c4"]) invariants.synced(acceptor, vote(acceptor, { round: 2, controllerId: "c4" }, value(up("h2"))));
    return invariants.violations;
  };
  t.deepEqual(run(false), [], "c1 and c2 are no majority of four: nothing was chosen at 1.c1");
  t.is(run(true).length, 1);
  t.regex(run(true)[0]!, /agreement: slot 0 chose \[up-h1\] and then \[up-h2\] \(ballot 2\.c4\)/);
});

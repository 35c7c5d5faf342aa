import test from "ava";
import { createActor, initialTransition, transition } from "xstate";
import { createPaxosConfig } from "../../machines/paxos/config.ts";
import { createAcceptorMachine, createControllerMachine, createProposalClientMachine, type CoreOutputEvent } from "../../machines/paxos/paxosMachines.ts";
import type { ViewCommand } from "../../machines/view/viewCommands.ts";
import { viewStateMachine } from "../../machines/view/viewStateMachine.ts";
import type { View } from "../../machines/view/viewTypes.ts";

const config = createPaxosConfig(["c1", "c2", "c3"]);

test("the acceptor machine is one core step per event, pure under transition()", (t) => {
  const machine = createAcceptorMachine<ViewCommand>();
  const [start] = initialTransition(machine, { acceptorId: "c1", config, records: [], nowMs: 0, bootstrap: true });
  t.deepEqual(start.context.output.persist, [{ kind: "init", acceptors: ["c1", "c2", "c3"] }]);
  const prepare = { type: "message" as const, nowMs: 5, message: { type: "paxos.prepare" as const, from: "c2", to: "c1", ballot: { round: 3, controllerId: "c2" }, fromSlot: 0 } };
  const [next, actions] = transition(machine, start, prepare);
  t.deepEqual(next.context.output.persist, [{ kind: "promise", ballot: { round: 3, controllerId: "c2" } }]);
  t.is(next.context.output.sendAfterSync[0]?.type, "paxos.promise");
  t.is(next.context.steps, 1);
  t.deepEqual(actions.map((action) => action.type), ["xstate.emit"], "the only effect left to the actor is the emitted output");
  // The same snapshot and event give the same result: nothing outside the state is consulted.
  const [again] = transition(machine, start, prepare);
  t.deepEqual(again.context, next.context);
});

test("the controller machine emits each step's effects to the actor", (t) => {
  const machine = createControllerMachine<ViewCommand, View>();
  const actor = createActor(machine, { input: { nodeId: "c1", config, machine: viewStateMachine, records: [], nowMs: 0, randomSeed: 3, bootstrap: true } });
  const outputs: CoreOutputEvent<unknown>[] = [];
  actor.on("paxos.output", (event) => outputs.push(event));
  actor.start();
  t.deepEqual(actor.getSnapshot().context.output.persist, [{ kind: "init", acceptors: ["c1", "c2", "c3"] }]);
  actor.send({ type: "tick", nowMs: 10_000 });
  t.is(outputs.length, 1);
  const output = actor.getSnapshot().context.output;
  t.is(output.leadership?.role, "candidate");
  t.deepEqual(output.persist, [{ kind: "round", round: 1 }]);
  t.deepEqual(
    output.sendAfterSync.map((message) => `${message.type}>${message.to}`),
    ["paxos.prepare>c1", "paxos.prepare>c2", "paxos.prepare>c3"],
  );
  actor.stop();
});

test("the proposal client machine carries the client API as events and outputs", (t) => {
  const machine = createProposalClientMachine<ViewCommand>();
  const [start] = initialTransition(machine, { clientId: "h1", config: { controllerIds: ["c1"], maxOutstandingProposals: 4, maxProposeAttempts: 2, retryAfterMs: 100, maxRetryDelayMs: 100 } });
  const command: ViewCommand = { id: "x", type: "controllers.set", controllerIds: ["c1"] };
  const [sent] = transition(machine, start, { type: "submit", command, nowMs: 0 });
  t.deepEqual(sent.context.output.send, [{ type: "paxos.propose", from: "h1", to: "c1", command }]);
  const [done] = transition(machine, sent, { type: "applied", applied: [{ slot: 4, commandId: "x", outcome: { kind: "committed" } }], nowMs: 1 });
  t.deepEqual(done.context.output.outcomes, [{ commandId: "x", kind: "committed", slot: 4 }]);
});

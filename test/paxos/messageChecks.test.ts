import test from "ava";
import { createPaxosConfig } from "../../machines/paxos/config.ts";
import { createControllerNode, stepControllerNode } from "../../machines/paxos/controllerNode.ts";
import { paxosMessageProblem } from "../../machines/paxos/messageChecks.ts";
import type { PaxosMessage } from "../../machines/paxos/messages.ts";
import type { ViewCommand } from "../../machines/view/viewCommands.ts";
import { viewStateMachine } from "../../machines/view/viewStateMachine.ts";

type Message = PaxosMessage<ViewCommand>;
const ballot = { round: 2, controllerId: "c2" };

test("well-formed messages pass", (t) => {
  const good: Message[] = [
    { type: "paxos.prepare", from: "c2", to: "c1", ballot, fromSlot: 0 },
    { type: "paxos.accept", from: "c2", to: "c1", ballot, slot: 3, value: { kind: "noop" }, commitIndex: 3 },
    { type: "paxos.reject", from: "c1", to: "c2", ballot, reason: "lease-held", promised: ballot, leaseHolderId: "c3", leaseRemainingMs: 12.5, floorSlot: 0, slot: -1 },
    { type: "paxos.fetch", from: "h1", to: "c1", fromSlot: 9, maxSlots: 100 },
  ];
  for (const message of good) t.is(paxosMessageProblem(message), null, message.type);
});

test("fractional or negative slots, impersonated ballots and commands without ids are dropped", (t) => {
  const cases: Array<[Message, string]> = [
    [{ type: "paxos.prepare", from: "c3", to: "c1", ballot, fromSlot: 0 }, "prepare ballot names another controller"],
    [{ type: "paxos.accept", from: "c2", to: "c1", ballot, slot: 1.5, value: { kind: "noop" }, commitIndex: 0 }, "slot and commitIndex must be non-negative integers"],
    [{ type: "paxos.fetch", from: "h1", to: "c1", fromSlot: -4, maxSlots: 1 }, "fromSlot and maxSlots must be non-negative integers"],
    [{ type: "paxos.commit", from: "c2", to: "*", entries: [{ slot: 0, value: { kind: "commands", commands: [{} as ViewCommand] } }], commitIndex: 1 }, "every command needs a string id"],
    [{ type: "paxos.promise", from: "c1", to: "c2", ballot, floorSlot: 0, votes: [{ slot: Number.NaN, ballot, value: { kind: "noop" } }] }, "vote slot must be a non-negative integer"],
  ];
  for (const [message, problem] of cases) t.is(paxosMessageProblem(message), problem);
  // The controller drops such a message unread and says why.
  const node = createControllerNode<ViewCommand, unknown>({
    nodeId: "c1",
    config: createPaxosConfig(["c1", "c2", "c3"]),
    machine: viewStateMachine as never,
    records: [],
    nowMs: 0,
    randomSeed: 1,
    bootstrap: true,
  }).state;
  const step = stepControllerNode(node, { type: "message", message: cases[1]![0], nowMs: 1 });
  t.is(step.state, node);
  t.is(step.droppedMessage, "slot and commitIndex must be non-negative integers");
  t.deepEqual(step.sendAfterSync, []);
});

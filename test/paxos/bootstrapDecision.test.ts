import test from "ava";
import { bootstrapAnswerOf, decideBootstrap, type BootstrapAnswer } from "../../machines/paxos/bootstrapDecision.ts";
import { createPaxosConfig } from "../../machines/paxos/config.ts";
import { createControllerNode, stepControllerNode } from "../../machines/paxos/controllerNode.ts";
import type { ViewCommand } from "../../machines/view/viewCommands.ts";
import { viewStateMachine } from "../../machines/view/viewStateMachine.ts";
import type { View } from "../../machines/view/viewTypes.ts";

const answers = (entries: Record<string, BootstrapAnswer>) => new Map(Object.entries(entries));

test("bootstrap only when fresh answers from the others meet every majority; one existing controller means rejoin", (t) => {
  const three = ["c1", "c2", "c3"];
  t.deepEqual(decideBootstrap("c1", three, answers({ c2: "fresh" })), { kind: "wait", freshOthers: 1, neededFreshOthers: 2, unanswered: ["c3"] });
  t.deepEqual(decideBootstrap("c1", three, answers({ c2: "fresh", c3: "fresh" })), { kind: "bootstrap" });
  t.deepEqual(decideBootstrap("c1", three, answers({ c2: "fresh", c3: "exists" })), { kind: "rejoin", existsAt: "c3" });
  t.deepEqual(decideBootstrap("c1", three, answers({ c3: "exists" })), { kind: "rejoin", existsAt: "c3" });
  // An answer in this controller's own name (or from a stranger) counts for nothing.
  t.is(decideBootstrap("c1", three, answers({ c1: "fresh", c2: "fresh", x: "fresh" })).kind, "wait");
  const five = ["c1", "c2", "c3", "c4", "c5"];
  // {c1, c4, c5} would be a majority avoiding c2 and c3: two fresh others are not enough.
  t.is(decideBootstrap("c1", five, answers({ c2: "fresh", c3: "fresh" })).kind, "wait");
  t.is(decideBootstrap("c1", five, answers({ c2: "fresh", c3: "fresh", c4: "fresh" })).kind, "bootstrap");
  t.is(decideBootstrap("c1", ["c1", "c2"], answers({ c2: "fresh" })).kind, "bootstrap");
  t.is(decideBootstrap("c1", ["c1"], answers({})).kind, "bootstrap");
});

test("a controller that bootstrapped answers fresh until it voted, promised another controller's ballot or led", (t) => {
  const config = createPaxosConfig(["c1", "c2", "c3"]);
  const start = createControllerNode<ViewCommand, View>({ nodeId: "c1", config, machine: viewStateMachine, records: [], nowMs: 0, randomSeed: 1, bootstrap: true });
  t.is(bootstrapAnswerOf(start.state, false), "fresh");
  t.is(bootstrapAnswerOf(start.state, true), "exists", "it led at some time");
  // Campaigning alone (its own promise) changes nothing: no majority counted it.
  const campaign = stepControllerNode(start.state, { type: "tick", nowMs: 10_000 });
  t.is(campaign.state.proposer.role, "candidate");
  const ownPrepare = campaign.sendAfterSync.find((message) => message.type === "paxos.prepare" && message.to === "c1")!;
  const selfPromised = stepControllerNode(campaign.state, { type: "message", message: ownPrepare, nowMs: 10_001 }).state;
  t.is(selfPromised.acceptor.promised.controllerId, "c1");
  t.is(bootstrapAnswerOf(selfPromised, false), "fresh");
  const promisedOther = stepControllerNode(start.state, { type: "message", message: { type: "paxos.prepare", from: "c2", to: "c1", ballot: { round: 1, controllerId: "c2" }, fromSlot: 0 }, nowMs: 1 }).state;
  t.is(bootstrapAnswerOf(promisedOther, false), "exists");
  const voted = stepControllerNode(start.state, {
    type: "message",
    message: { type: "paxos.accept", from: "c1", to: "c1", ballot: { round: 1, controllerId: "c1" }, slot: 0, value: { kind: "noop" }, commitIndex: 0 },
    nowMs: 1,
  }).state;
  t.is(bootstrapAnswerOf(voted, false), "exists");
  // Not bootstrapped: an empty disk without bootstrap is rejoining.
  const rejoining = createControllerNode<ViewCommand, View>({ nodeId: "c1", config, machine: viewStateMachine, records: [], nowMs: 0, randomSeed: 1, bootstrap: false }).state;
  t.is(bootstrapAnswerOf(rejoining, false), "exists");
});

/**
 * Fuzz seed 40's shape with the real controller actors in the simulator: after
 * the leader is elected, every link from the two followers to the leader is
 * cut (the leader can still send to them). The followers can talk to each
 * other, so a proposal must commit within the scenario library's bound (3 s,
 * `paxos.commits`). Default timings, as the scenarios run them.
 */
import test from "ava";
import { createRejectionCounter } from "../../actors/codec/rejectionCounter.ts";
import { startControllerActor, type ControllerActor } from "../../actors/paxos/controllerActor.ts";
import { createPaxosConfig } from "../../machines/paxos/config.ts";
import type { ProposalOutcome } from "../../machines/paxos/proposalClient.ts";
import type { ViewCommand } from "../../machines/view/viewCommands.ts";
import { SimWorld } from "../../sim/world.ts";

const controllerIds = ["c1", "c2", "c3"];
const config = createPaxosConfig(controllerIds);
const commitBoundMs = 3_000;

test("a leader whose followers cannot reach it steps down; the followers elect and commit within the bound", (t) => {
  const world = new SimWorld({ seed: 40, clusterId: "t" });
  const controllers = new Map<string, ControllerActor>();
  const fatal: string[] = [];
  for (const id of controllerIds) {
    world.addNode(id, (ports) => {
      const actor = startControllerActor(ports, { config, bootstrap: true, rejections: createRejectionCounter(ports), kvMirror: false, onFatal: (error) => fatal.push(`${id}: ${error}`) });
      controllers.set(id, actor);
      return { stop: () => actor.stop() };
    });
  }
  const leaseHolders = () => controllerIds.filter((id) => controllers.get(id)!.holdsLease());
  world.runFor(1_500);
  t.is(leaseHolders().length, 1);
  const oldLeader = leaseHolders()[0]!;
  const followers = controllerIds.filter((id) => id !== oldLeader);

  for (const follower of followers) world.blockLink(follower, oldLeader);
  const cutAtMs = world.now();
  const outcomes: ProposalOutcome[] = [];
  const command: ViewCommand = { id: "after-cut", type: "host.register", hostId: "h-after-cut", capacity: { cpu: 4, memoryMiB: 1_024 } };
  const proposed = controllers.get(followers[0]!)!.propose(command, (outcome) => outcomes.push(outcome));
  t.true(proposed.ok);

  const overlaps: number[] = [];
  let committedAtMs: number | undefined;
  while (world.now() - cutAtMs < commitBoundMs && committedAtMs === undefined) {
    world.runFor(10);
    if (leaseHolders().length > 1) overlaps.push(world.now());
    if (followers.every((id) => controllers.get(id)!.view().hosts.has("h-after-cut"))) committedAtMs = world.now();
  }
  t.not(committedAtMs, undefined, `nothing committed within ${commitBoundMs} ms of the cut`);
  t.log(`old leader ${oldLeader}; committed ${committedAtMs! - cutAtMs} ms after the cut`);
  world.runFor(500);
  t.deepEqual(outcomes.map((outcome) => outcome.kind), ["committed"]);
  const old = controllers.get(oldLeader)!;
  t.not(old.leadership().role, "leader", "the old leader heard no majority and stepped down");
  t.false(old.holdsLease());
  const newLeader = leaseHolders()[0];
  t.true(followers.includes(newLeader ?? ""));

  // The old leader keeps campaigning unheard; the new leader's lease keeps its prepares out.
  for (let elapsed = 0; elapsed < 3_000; elapsed += 10) {
    world.runFor(10);
    if (leaseHolders().length > 1) overlaps.push(world.now());
  }
  t.deepEqual(leaseHolders(), [newLeader]);
  t.deepEqual(overlaps, []);
  t.deepEqual(fatal, []);
});

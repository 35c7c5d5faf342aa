import test from "ava";
import { createRejectionCounter } from "../../actors/codec/rejectionCounter.ts";
import { startLearnerActor, type LearnerActor } from "../../actors/paxos/learnerActor.ts";
import { createPaxosConfig } from "../../machines/paxos/config.ts";
import type { ViewCommand } from "../../machines/view/viewCommands.ts";
import { simClientLimits, simPaxosTimings } from "../../sim/paxos/paxosClusterRun.ts";
import { SimWorld } from "../../sim/world.ts";
import { addSimControllers } from "./simControllers.ts";

const controllerIds = ["c1", "c2", "c3"];
const config = createPaxosConfig(controllerIds, simPaxosTimings);

/** Three controllers; host h1 learns with idle ticks (the default), h2 ticks only while behind. */
function cluster() {
  const world = new SimWorld({ seed: 7, clusterId: "t" });
  const controllers = addSimControllers(world, config);
  const learners = new Map<string, LearnerActor>();
  const steps = new Map<string, number>([
    ["h1", 0],
    ["h2", 0],
  ]);
  for (const [hostId, idleTicks] of [
    ["h1", true],
    ["h2", false],
  ] as const) {
    world.addNode(hostId, (ports) => {
      const learner = startLearnerActor(ports, {
        config,
        rejections: createRejectionCounter(ports),
        client: simClientLimits,
        idleTicks,
        observer: { stepped: () => steps.set(hostId, steps.get(hostId)! + 1) },
      });
      learners.set(hostId, learner);
      return { stop: () => learner.stop() };
    });
  }
  const leader = () => [...controllers.values()].find((actor) => actor.status === "running" && actor.leadership().role === "leader");
  return { world, learners, steps, leader };
}

const addVm = (vmId: string): ViewCommand => ({ id: `add-${vmId}`, type: "vm.add", vmId, resources: { cpu: 1, memoryMiB: 512 }, priority: "low", rules: { affinity: [], antiAffinity: [] }, desiredState: "running" });

test("an idle learner without idle ticks keeps no tick timer, and an idle tick never steps the learner", (t) => {
  const { world, learners, steps, leader } = cluster();
  world.runFor(1_000);
  t.truthy(leader()?.propose(addVm("vm1")).ok);
  world.runFor(1_000);
  for (const learner of learners.values()) t.truthy(learner.view().vms.get("vm1"));
  const before = new Map(steps);
  const timersH1 = world.nodeClock("h1").activeTimers;
  const timersH2 = world.nodeClock("h2").activeTimers;
  // a quiet spell between commit beacons: no new slots, and every tick of h1 finds it caught up
  world.runFor(5);
  t.is(steps.get("h1"), before.get("h1"), "h1's idle ticks do not reach the learner's core");
  t.is(timersH1 - timersH2, 1, "h1 keeps its tick timer, h2 has none while caught up");
});

test("a learner without idle ticks still catches up after losing commits", (t) => {
  const { world, learners, leader } = cluster();
  world.runFor(1_000);
  const first = leader()!;
  for (const controllerId of controllerIds) world.blockLink(controllerId, "h2");
  for (let index = 1; index <= 5; index++) t.truthy(first.propose(addVm(`vm${index}`)).ok);
  world.runFor(300);
  t.is(learners.get("h2")!.view().vms.size, 0, "h2 heard none of the commits");
  t.is(learners.get("h1")!.view().vms.size, 5);
  for (const controllerId of controllerIds) world.unblockLink(controllerId, "h2");
  // the next commit beacon tells h2 it is behind; it ticks again and fetches what it missed
  world.runFor(2_000);
  t.is(learners.get("h2")!.view().vms.size, 5);
  t.is(learners.get("h2")!.appliedSlots(), learners.get("h1")!.appliedSlots());
});

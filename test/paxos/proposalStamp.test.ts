/**
 * The proposal client stamps each new command with a slot below which everything was chosen
 * (`proposedAfterSlot`, see machines/view/applyViewCommands.ts): a host learner's and a controller's
 * client, on the real actors in the simulator.
 */
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
const addVm = (vmId: string): ViewCommand => ({ id: `add-${vmId}`, type: "vm.add", vmId, resources: { cpu: 1, memoryMiB: 512 }, priority: "low", rules: { affinity: [], antiAffinity: [] }, desiredState: "running" });

test("new commands from a host and from a controller carry the slot their proposer knew chosen, and are applied once", (t) => {
  const world = new SimWorld({ seed: 3, clusterId: "t" });
  const controllers = addSimControllers(world, config);
  let host: LearnerActor | undefined;
  world.addNode("h1", (ports) => {
    host = startLearnerActor(ports, { config, rejections: createRejectionCounter(ports), client: simClientLimits });
    return { stop: () => host!.stop() };
  });
  const leader = () => [...controllers.values()].find((actor) => actor.status === "running" && actor.leadership().role === "leader");
  world.runFor(1_000);
  t.truthy(leader()?.propose(addVm("vm1")).ok);
  world.runFor(1_000);
  const hostKnewBelow = host!.appliedSlots();
  t.true(hostKnewBelow > 0);
  const outcomes: string[] = [];
  t.true(host!.propose(addVm("vm2"), (outcome) => outcomes.push(outcome.kind)).ok);
  world.runFor(1_000);
  t.deepEqual(outcomes, ["committed"]);
  const core = leader()!.core()!;
  const stamped = new Map<string, number | undefined>();
  for (let slot = core.learner.retainedFrom; slot < core.learner.nextSlot; slot++) {
    const value = core.learner.retained.get(slot);
    if (value?.kind === "commands") for (const command of value.commands) stamped.set(command.id, command.proposedAfterSlot);
  }
  t.true(stamped.has("add-vm1") && stamped.has("add-vm2"));
  t.true((stamped.get("add-vm1") ?? 0) >= 1, `the controller's command carries ${stamped.get("add-vm1")}`);
  t.true((stamped.get("add-vm2") ?? 0) >= hostKnewBelow, `the host's command carries ${stamped.get("add-vm2")}, it had applied ${hostKnewBelow} slots`);
  t.truthy(host!.view().vms.get("vm2"));
});

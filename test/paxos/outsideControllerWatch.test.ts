/**
 * Controllers outside the acceptor set that still send controller messages (actors/paxos/outsideControllerWatch.ts):
 * the watch alone, then in the simulator a controller configured with a set that adds it (as a removed controller
 * still running, or an added one before its peers were stepped) next to a running three.
 */
import test from "ava";
import { createRejectionCounter } from "../../actors/codec/rejectionCounter.ts";
import { paxosOutsideControllersGauge, startControllerActor, type ControllerActor } from "../../actors/paxos/controllerActor.ts";
import { maxOutsideControllersTracked, OutsideControllerWatch, outsideControllerQuietMs } from "../../actors/paxos/outsideControllerWatch.ts";
import { createPaxosConfig } from "../../machines/paxos/config.ts";
import type { ProposalOutcome } from "../../machines/paxos/proposalClient.ts";
import { simClientLimits, simPaxosTimings } from "../../sim/paxos/paxosClusterRun.ts";
import { SimWorld } from "../../sim/world.ts";

test("the watch lists a sender outside the set once, keeps it while it sends, forgets it after the quiet time, and tracks a bounded number", (t) => {
  const watch = new OutsideControllerWatch(["c1", "c2", "c3"], "c1");
  t.false(watch.heard("c2", 0), "a member of the set is not outside it");
  t.false(watch.heard("c1", 0), "nor is this controller");
  t.true(watch.heard("c4", 0), "new to the list");
  t.false(watch.heard("c4", 5_000), "already listed");
  t.deepEqual(watch.forgetQuiet(5_000 + outsideControllerQuietMs - 1), [], "heard within the quiet time");
  t.deepEqual(watch.running(), ["c4"]);
  t.deepEqual(watch.forgetQuiet(5_000 + outsideControllerQuietMs), ["c4"]);
  t.deepEqual(watch.running(), []);
  t.true(watch.heard("c4", 20_000), "listed again when it sends again");
  for (let index = 0; index < maxOutsideControllersTracked + 5; index++) watch.heard(`x${index}`, 20_000);
  t.is(watch.running().length, maxOutsideControllersTracked, "made-up senders cannot grow the list");
  t.true(watch.running().includes("c4"));
  t.false(watch.heard(`x${maxOutsideControllersTracked + 10}`, 20_000), "beyond the bound nobody new is listed");
});

test("in the simulator: three controllers name a fourth that runs with a set adding it, keep committing, and drop it from the list once it stopped", (t) => {
  const world = new SimWorld({ seed: 7, clusterId: "t", transcriptLevel: "info" });
  const three = createPaxosConfig(["c1", "c2", "c3"], simPaxosTimings);
  const four = createPaxosConfig(["c1", "c2", "c3", "c4"], simPaxosTimings);
  const controllers = new Map<string, ControllerActor>();
  for (const id of ["c1", "c2", "c3", "c4"]) {
    world.addNode(id, (ports) => {
      // c4 believes in a set of four (it starts on an empty disk, so it rejoins and sends fences to the others).
      const actor = startControllerActor(ports, { config: id === "c4" ? four : three, bootstrap: id !== "c4", rejections: createRejectionCounter(ports), client: simClientLimits });
      controllers.set(id, actor);
      return { stop: () => actor.stop() };
    });
  }
  world.runFor(2_000);
  for (const id of ["c1", "c2", "c3"]) t.deepEqual(controllers.get(id)!.outsideControllers(), ["c4"], id);
  t.is(world.metrics("c1").gauge(paxosOutsideControllersGauge), 1);
  const running = world.transcript().split("\n").filter((line) => line.includes("paxos.outside-controller-running"));
  t.is(running.length, 3, running.join("\n"));
  t.true(running.every((line) => line.includes("controller=c4") && line.includes("acceptors=c1,c2,c3")), running.join("\n"));
  const outcomes: ProposalOutcome[] = [];
  controllers.get("c1")!.propose({ id: "add-1", type: "vm.add", vmId: "vm-1", resources: { cpu: 1, memoryMiB: 512 }, priority: "low", rules: { affinity: [], antiAffinity: [] }, desiredState: "running" }, (outcome) => outcomes.push(outcome));
  world.runFor(1_000);
  t.is(outcomes[0]?.kind, "committed", "the three commit beside it");
  world.crash("c4");
  world.runFor(outsideControllerQuietMs - 500);
  t.deepEqual(controllers.get("c1")!.outsideControllers(), ["c4"], "not yet quiet long enough");
  world.runFor(1_000);
  for (const id of ["c1", "c2", "c3"]) t.deepEqual(controllers.get(id)!.outsideControllers(), [], id);
  t.is(world.metrics("c1").gauge(paxosOutsideControllersGauge), 0);
  const quiet = world.transcript().split("\n").filter((line) => line.includes("paxos.outside-controller-quiet"));
  t.is(quiet.length, 3, quiet.join("\n"));
  t.true(quiet.every((line) => line.includes("controller=c4")));
});

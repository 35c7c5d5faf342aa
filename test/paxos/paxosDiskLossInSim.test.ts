/**
 * Empty-disk rejoin with the real actors in the simulator: a controller whose
 * disk is lost while it is down restarts empty, stays silent through its
 * quarantine, fences, and votes again; agreement holds throughout (checked
 * by PaxosInvariants on every durable record and every learner step).
 */
import test from "ava";
import { createRejectionCounter } from "../../actors/codec/rejectionCounter.ts";
import { startControllerActor, type ControllerActor } from "../../actors/paxos/controllerActor.ts";
import { createPaxosConfig } from "../../machines/paxos/config.ts";
import type { ProposalOutcome } from "../../machines/paxos/proposalClient.ts";
import type { ViewCommand } from "../../machines/view/viewCommands.ts";
import { canonicalViewJson } from "../../machines/view/viewSnapshot.ts";
import { runPaxosCluster, simClientLimits, simPaxosTimings } from "../../sim/paxos/paxosClusterRun.ts";
import { PaxosInvariants } from "../../sim/paxos/paxosInvariants.ts";
import { SimWorld } from "../../sim/world.ts";

const controllerIds = ["c1", "c2", "c3"];
const config = createPaxosConfig(controllerIds, simPaxosTimings);

const addVm = (index: number): ViewCommand => ({ id: `add-${index}`, type: "vm.add", vmId: `vm-${index}`, resources: { cpu: 1, memoryMiB: 512 }, priority: "low", rules: { affinity: [], antiAffinity: [] }, desiredState: "running" });

function cluster(seed: number) {
  const world = new SimWorld({ seed, clusterId: "t", transcriptLevel: "warn" });
  const invariants = new PaxosInvariants(seed, controllerIds, () => world.now());
  const controllers = new Map<string, ControllerActor>();
  const modes = new Map<string, string[]>();
  for (const id of controllerIds) {
    world.addNode(id, (ports) => {
      const incarnation = world.incarnation(id);
      const actor = startControllerActor(ports, {
        config,
        bootstrap: incarnation === 1,
        rejections: createRejectionCounter(ports),
        client: simClientLimits,
        observer: {
          synced: (nodeId, records) => invariants.synced(nodeId, records),
          stepped: (report) => {
            invariants.learnerStepped(id, incarnation, report.beforeSlot, report.state.learner, report.applied);
            const seen = modes.get(`${id}#${incarnation}`) ?? [];
            if (seen[seen.length - 1] !== report.state.acceptor.mode) seen.push(report.state.acceptor.mode);
            modes.set(`${id}#${incarnation}`, seen);
          },
        },
        onFatal: (error) => invariants.fail(`${id}: ${error}`),
      });
      controllers.set(id, actor);
      return { stop: () => actor.stop() };
    });
  }
  const leader = () => [...controllers.values()].find((actor) => actor.status === "running" && actor.leadership().role === "leader" && world.nodeState(actor.nodeId) === "up");
  const commit = (from: number, count: number): ProposalOutcome[] => {
    const outcomes: ProposalOutcome[] = [];
    let next = from;
    const deadline = world.now() + 10_000;
    while (outcomes.length < count && world.now() < deadline) {
      const via = leader();
      if (via && next < from + count) {
        const command = addVm(next++);
        via.propose(command, (outcome) => outcomes.push(outcome));
      }
      world.runFor(5);
    }
    return outcomes;
  };
  return { world, invariants, controllers, modes, leader, commit };
}

for (const victimRole of ["follower", "leader"] as const) {
  test(`a ${victimRole} whose disk is lost rejoins empty, catches up and votes again; agreement holds`, (t) => {
    const c = cluster(victimRole === "leader" ? 31 : 32);
    c.world.runFor(1_000);
    const before = c.commit(0, 40);
    t.true(before.every((outcome) => outcome.kind === "committed"));
    const leader = c.leader()!;
    const victim = victimRole === "leader" ? leader.nodeId : controllerIds.find((id) => id !== leader.nodeId)!;
    c.world.crash(victim);
    t.true(c.world.disk(victim).wipe() > 0, "the lost disk held the log");
    c.invariants.diskLost(victim);
    c.world.runFor(300);
    const during = c.commit(40, 20);
    t.true(during.every((outcome) => outcome.kind === "committed"), "the other two commit meanwhile");
    c.world.restart(victim);
    c.world.runFor(2_000);
    t.deepEqual(c.modes.get(`${victim}#2`), ["rejoining", "voting"], "the restarted controller rejoined before voting");
    // Without the rejoined controller's vote no majority remains: it must take part now.
    const other = controllerIds.find((id) => id !== victim && c.world.nodeState(id) === "up" && c.controllers.get(id) !== c.leader())!;
    c.world.crash(other);
    c.world.runFor(1_000);
    const after = c.commit(60, 20);
    t.true(after.length === 20 && after.every((outcome) => outcome.kind === "committed"), `commits with the rejoined controller: ${after.map((o) => o.kind).join(",")}`);
    c.world.restart(other);
    c.world.runFor(2_000);
    const views = new Set([...c.controllers.values()].map((actor) => canonicalViewJson(actor.view())));
    t.is(views.size, 1, "every controller holds the same view");
    t.is([...c.controllers.values()][0]!.view().vms.size, 80);
    t.deepEqual(c.invariants.violations, []);
  });
}

test("randomized: crashes that lose a controller's disk (one at a time) among partitions, loss, pauses and restarts stay safe and live", (t) => {
  let disksLost = 0;
  for (let seed = 0; seed < 30; seed++) {
    const result = runPaxosCluster({ seed, controllers: seed % 4 === 3 ? 5 : 3, diskLossPercent: 70, healBoundMs: 4_000 });
    if (!result.ok) return t.fail(result.failures.join("\n"));
    disksLost += result.stats.disksLost;
  }
  t.true(disksLost >= 15, `${disksLost} disks lost over 30 seeds`);
});

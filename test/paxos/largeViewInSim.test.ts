/**
 * A view too large for one NATS message (over 5,000 VMs, more than 1 MiB even
 * as msgpack) and nodes more than 1,024 slots behind it: they can only catch
 * up through a snapshot moved in chunks. The real actors, codec, simulated
 * network and disks.
 */
import test, { type ExecutionContext } from "ava";
import { createRejectionCounter } from "../../actors/codec/rejectionCounter.ts";
import { paxosChunksRejectedMetric, paxosTransfersMetric } from "../../actors/paxos/chunkedTransfer.ts";
import { startControllerActor, type ControllerActor } from "../../actors/paxos/controllerActor.ts";
import { startLearnerActor, type LearnerActor } from "../../actors/paxos/learnerActor.ts";
import { encodePaxosMessage, encodeTransferMessage } from "../../actors/paxos/paxosMessages.ts";
import type { NodePorts } from "../../actors/ports/nodePorts.ts";
import { clusterSubjects } from "../../actors/subjects.ts";
import { createPaxosConfig } from "../../machines/paxos/config.ts";
import { viewStateMachine } from "../../machines/view/viewStateMachine.ts";
import { largeViewVm, largeViewVmCount } from "./largeViewFixture.ts";
import { canonicalViewJson } from "../../machines/view/viewSnapshot.ts";
import { simClientLimits, simPaxosTimings } from "../../sim/paxos/paxosClusterRun.ts";
import { SimWorld } from "../../sim/world.ts";

const controllerIds = ["c1", "c2", "c3"];
/**
 * The sim timings, with the default log retention: a node must be more than 1,024 slots behind to need a
 * snapshot. Peers serve their newest snapshot, so snapshots are frequent here: the one served then holds
 * nearly all 6,000 VMs, more than one message carries.
 */
const config = createPaxosConfig(controllerIds, {
  ...simPaxosTimings,
  maxCommandsPerBatch: 4,
  maxInFlightSlots: 32,
  maxRetainedSlots: 1_024,
  snapshotEverySlots: 128,
  maxBufferedChosenSlots: 2_048,
  maxFetchSlots: 256,
});
const vmCount = largeViewVmCount;


function cluster(seed: number) {
  const world = new SimWorld({ seed, clusterId: "big", transcriptLevel: "info" });
  const controllers = new Map<string, ControllerActor>();
  const fatal: string[] = [];
  let bootstrap = true;
  for (const id of controllerIds) {
    world.addNode(id, (ports) => {
      const actor = startControllerActor(ports, { config, bootstrap, rejections: createRejectionCounter(ports), client: simClientLimits, onFatal: (error) => fatal.push(`${id}: ${error}`) });
      controllers.set(id, actor);
      return { stop: () => actor.stop() };
    });
  }
  bootstrap = false;
  let host: LearnerActor | undefined;
  let hostPorts: NodePorts | undefined;
  world.addNode("h1", (ports) => {
    hostPorts = ports;
    host = startLearnerActor(ports, { config, rejections: createRejectionCounter(ports), client: simClientLimits });
    return { stop: () => host!.stop() };
  });
  const leader = () => [...controllers.values()].find((actor) => actor.status === "running" && actor.leadership().role === "leader");
  return { world, controllers, host: () => host!, hostPorts: () => hostPorts!, leader, fatal };
}

type Cluster = ReturnType<typeof cluster>;

/** Commits `vmCount` vm.add commands through the leader, at most 256 outstanding (1,500 slots of 4). */
function commitManyVms(t: { fail(message: string): void }, c: Cluster): void {
  let next = 0;
  let committed = 0;
  let outstanding = 0;
  while (committed < vmCount) {
    const leader = c.leader();
    while (leader && outstanding < 200 && next < vmCount) {
      outstanding++;
      const result = leader.propose(largeViewVm(next++), (outcome) => {
        outstanding--;
        if (outcome.kind === "committed") committed++;
        else t.fail(`vm.add ${outcome.commandId}: ${outcome.kind}`);
      });
      if (!result.ok) t.fail(result.error);
    }
    c.world.runFor(20);
    if (c.world.now() > 120_000) {
      t.fail(`only ${committed} of ${vmCount} committed`);
      return;
    }
  }
}

function runUntilConverged(c: Cluster, boundMs: number): boolean {
  const deadline = c.world.now() + boundMs;
  while (c.world.now() < deadline) {
    c.world.runFor(20);
    const slots = [...c.controllers.values()].map((actor) => actor.appliedSlots());
    if (slots.every((slot) => slot === slots[0]) && c.host().appliedSlots() === slots[0]) return true;
  }
  return false;
}

function lagAndCatchUp(t: ExecutionContext, seed: number, faults: (c: Cluster, laggard: string) => void) {
  const c = cluster(seed);
  c.world.runFor(1_000);
  t.truthy(c.leader(), "a leader is elected");
  const laggard = controllerIds.find((id) => c.controllers.get(id) !== c.leader())!;
  c.world.crash(laggard);
  c.world.crash("h1");
  commitManyVms(t, c);
  const leader = c.leader()!;
  t.true(leader.appliedSlots() > 1_024 + 100, `over 1,024 slots went by (${leader.appliedSlots()})`);
  t.is(leader.view().vms.size, vmCount);
  const snapshot = { type: "paxos.snapshot", from: leader.nodeId, to: laggard, throughSlot: 1, snapshot: viewStateMachine.toSnapshot(leader.view()), commitIndex: 1 } as const;
  t.throws(() => encodePaxosMessage(snapshot), { message: /exceeds maxMessageBytes/ }, "the view's snapshot does not fit one message");
  t.true(canonicalViewJson(leader.view()).length > 1_048_576);

  faults(c, laggard);
  c.world.restart(laggard);
  c.world.restart("h1");
  t.true(runUntilConverged(c, 20_000), `caught up: ${[...c.controllers.values()].map((actor) => `${actor.nodeId}:${actor.appliedSlots()}`).join(" ")} h1:${c.host().appliedSlots()}`);
  const views = new Set([...[...c.controllers.values()].map((actor) => actor.view()), c.host().view()].map(canonicalViewJson));
  t.is(views.size, 1, "every learner holds the same view");
  t.deepEqual(c.fatal, []);
  for (const id of [laggard, "h1"]) {
    t.true(c.world.metrics(id).counter(paxosTransfersMetric, { event: "completed", carries: "paxos.snapshot" }) >= 1, `${id} installed a chunked snapshot`);
  }
  // The operator sees both ends of the controller's catch-up by snapshot in the logs.
  const transcript = c.world.transcript();
  t.regex(transcript, new RegExp(`\\b${laggard} info paxos\\.snapshot-received from=c\\d throughSlot=\\d+`));
  t.regex(transcript, new RegExp(`\\bc\\d info paxos\\.snapshot-served to=${laggard} throughSlot=\\d+`));
  return { c, laggard };
}

test("a controller and a host more than 1,024 slots behind a view over 1 MiB catch up by a chunked snapshot", (t) => {
  lagAndCatchUp(t, 11, () => undefined);
});

test("the same with chunks lost, duplicated and reordered, and hostile chunks rejected and counted", (t) => {
  const { c, laggard } = lagAndCatchUp(t, 12, (c, laggard) => {
    c.world.setLoss(0.1);
    c.world.setDuplication(0.2);
    c.world.setReorder({ fraction: 0.3, maxExtraDelayMs: 15 });
    // A forged chunk claiming a huge whole, and one with garbage where the payload should be.
    const subjects = clusterSubjects("big");
    const forged = { type: "paxos.chunk", from: "c9", to: laggard, transferId: "abc-1", carries: "paxos.snapshot", slot: 99_999, totalBytes: 8_192, chunkBytes: 4_096, chunkCount: 3, checksum: 1, index: 0, data: new Uint8Array(4_096) } as const;
    c.world.schedule(1, () => {
      const ports = c.hostPorts();
      ports.network.publish(subjects.paxos(laggard), encodeTransferMessage(forged));
      ports.network.publish(subjects.paxos(laggard), encodeTransferMessage({ ...forged, chunkCount: 2, index: 1, data: new Uint8Array(4_095) }));
    });
  });
  t.true(c.world.metrics(laggard).counterTotal(paxosChunksRejectedMetric) >= 1, "forged chunks are counted");
});

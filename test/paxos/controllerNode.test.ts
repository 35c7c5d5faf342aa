import test from "ava";
import type { Ballot } from "../../machines/paxos/ballot.ts";
import { createPaxosConfig, type PaxosConfig } from "../../machines/paxos/config.ts";
import {
  controllerHoldsLease,
  createControllerNode,
  stepControllerNode,
  type ControllerNodeState,
  type ControllerStep,
} from "../../machines/paxos/controllerNode.ts";
import type { PaxosMessage } from "../../machines/paxos/messages.ts";
import type { DurableRecord } from "../../machines/paxos/records.ts";
import type { AppliedCommand } from "../../machines/paxos/replicatedStateMachine.ts";
import type { ViewCommand } from "../../machines/view/viewCommands.ts";
import { canonicalViewJson } from "../../machines/view/viewSnapshot.ts";
import { leaderElectedCommand, viewStateMachine } from "../../machines/view/viewStateMachine.ts";
import type { View } from "../../machines/view/viewTypes.ts";

type Node = ControllerNodeState<ViewCommand, View>;
type Message = PaxosMessage<ViewCommand>;

const ids = ["c1", "c2", "c3"];
const config = createPaxosConfig(ids, {
  heartbeatIntervalMs: 20,
  leaseDurationMs: 100,
  clockDriftMarginMs: 10,
  electionTimeoutMs: 120,
  electionJitterMs: 60,
  prepareTimeoutMs: 60,
  acceptRetryMs: 40,
  maxInFlightSlots: 4,
  maxCommandsPerBatch: 2,
  maxRetainedSlots: 6,
  snapshotEverySlots: 5,
  catchUpAfterMs: 30,
  fetchTimeoutMs: 60,
  rejoinQuarantineMs: 150,
  rejoinRetryMs: 60,
  commitBeaconIntervalMs: 100,
});
const ballot = (round: number, controllerId: string): Ballot => ({ round, controllerId });
const register = (id: string, hostId: string): ViewCommand => ({ id, type: "host.register", hostId, capacity: { cpu: 4, memoryMiB: 1_024 } });

function node(nodeId: string, records: DurableRecord<ViewCommand>[] = [], bootstrap = true, nodeConfig: PaxosConfig = config): Node {
  return createControllerNode<ViewCommand, View>({ nodeId, config: nodeConfig, machine: viewStateMachine, records, nowMs: 0, randomSeed: 1, bootstrap }).state;
}

test("the commit index piggy-backed on an accept or heartbeat applies the slots this node voted for at the sender's ballot", (t) => {
  let state = node("c2");
  const b = ballot(1, "c1");
  const accept = (slot: number, command: ViewCommand, commitIndex: number, at: Ballot = b): Message => ({
    type: "paxos.accept",
    from: at.controllerId,
    to: "c2",
    ballot: at,
    slot,
    value: { kind: "commands", commands: [command] },
    commitIndex,
  });
  state = stepControllerNode(state, { type: "message", message: accept(0, register("r0", "h0"), 0), nowMs: 1 }).state;
  const second = stepControllerNode(state, { type: "message", message: accept(1, register("r1", "h1"), 1), nowMs: 2 });
  t.deepEqual(second.applied, [{ slot: 0, commandId: "r0", outcome: { kind: "committed" } }]);
  state = second.state;
  const heartbeat = stepControllerNode(state, { type: "message", message: { type: "paxos.heartbeat", from: "c1", to: "c2", ballot: b, commitIndex: 2, sequence: 1 }, nowMs: 3 });
  t.deepEqual(heartbeat.applied, [{ slot: 1, commandId: "r1", outcome: { kind: "committed" } }]);
  // ChunkedMap iterates in hash order, not insertion order: compare the set of hosts.
  t.deepEqual([...heartbeat.state.learner.app.hosts.keys()].sort(), ["h0", "h1"]);

  // A vote at another ballot may not be the chosen value: it is not applied, the learner fetches instead.
  let other = node("c3");
  other = stepControllerNode(other, { type: "message", message: accept(0, register("old", "hx"), 0, ballot(1, "c2")), nowMs: 1 }).state;
  const newer = stepControllerNode(other, { type: "message", message: { type: "paxos.heartbeat", from: "c1", to: "c3", ballot: ballot(2, "c1"), commitIndex: 1, sequence: 1 }, nowMs: 2 });
  t.deepEqual(newer.applied, []);
  t.is(newer.state.learner.commitHint, 1);
  const fetch = stepControllerNode(newer.state, { type: "tick", nowMs: 40 }).sendAfterSync.find((message) => message.type === "paxos.fetch");
  t.deepEqual(fetch, { type: "paxos.fetch", from: "c3", to: "c1", fromSlot: 0, maxSlots: config.maxFetchSlots });
});

test("a snapshot compacts the acceptor and rewrites the log; a restart from the rewrite resumes there", (t) => {
  // c1 snapshots at multiples of snapshotEverySlots (the other controllers at staggered slots).
  let state = node("c1");
  const b = ballot(1, "c2");
  let rewrite: readonly DurableRecord<ViewCommand>[] | null = null;
  for (let slot = 0; slot < 6; slot++) {
    const step = stepControllerNode(state, {
      type: "message",
      message: { type: "paxos.accept", from: "c2", to: "c1", ballot: b, slot, value: { kind: "commands", commands: [register(`r${slot}`, `h${slot}`)] }, commitIndex: slot },
      nowMs: slot,
    });
    if (step.rewrite) rewrite = step.rewrite;
    else t.true(step.persist.length > 0);
    state = step.state;
  }
  t.is(state.learner.nextSlot, 5);
  t.is(state.acceptor.floorSlot, 5);
  t.deepEqual([...state.acceptor.votes.keys()], [5]);
  t.truthy(rewrite);
  t.deepEqual(
    rewrite!.map((record) => record.kind),
    ["init", "promise", "floor", "accept", "snapshot"],
  );
  const restarted = node("c1", [...rewrite!], false);
  t.is(restarted.learner.nextSlot, 5);
  t.is(restarted.acceptor.floorSlot, 5);
  t.is(restarted.acceptor.mode, "voting");
  t.is(canonicalViewJson(restarted.learner.app), canonicalViewJson(state.learner.app));
});

/** A perfect network: every message arrives 1 ms later, in order; every sync completes at once. */
class Cluster {
  readonly nodes = new Map<string, Node>();
  readonly disks = new Map<string, DurableRecord<ViewCommand>[]>();
  readonly applied = new Map<string, AppliedCommand[]>();
  private queue: Array<{ atMs: number; message: Message }> = [];
  nowMs = 0;
  down = new Set<string>();

  constructor() {
    for (const id of ids) this.start(id, true);
  }

  start(id: string, bootstrap: boolean): void {
    const created = createControllerNode<ViewCommand, View>({
      nodeId: id,
      config,
      machine: viewStateMachine,
      records: this.disks.get(id) ?? [],
      nowMs: this.nowMs,
      randomSeed: ids.indexOf(id) * 7919,
      bootstrap,
      leaderAnnouncement: (b) => leaderElectedCommand(b.controllerId, b.round),
    });
    this.nodes.set(id, created.state);
    this.disks.set(id, [...(this.disks.get(id) ?? []), ...created.persist]);
    this.down.delete(id);
  }

  private apply(id: string, step: ControllerStep<ViewCommand, View>): void {
    this.nodes.set(id, step.state);
    const disk = this.disks.get(id)!;
    if (step.rewrite) this.disks.set(id, [...step.rewrite]);
    else disk.push(...step.persist);
    this.applied.set(id, [...(this.applied.get(id) ?? []), ...step.applied]);
    for (const message of step.sendAfterSync) if (message.to !== "*") this.queue.push({ atMs: this.nowMs + 1, message });
  }

  send(message: Message): void {
    this.queue.push({ atMs: this.nowMs + 1, message });
  }

  runFor(durationMs: number): void {
    const endMs = this.nowMs + durationMs;
    while (this.nowMs < endMs) {
      this.nowMs++;
      const due = this.queue.filter((item) => item.atMs <= this.nowMs);
      this.queue = this.queue.filter((item) => item.atMs > this.nowMs);
      for (const { message } of due) {
        if (this.down.has(message.to) || !this.nodes.has(message.to)) continue;
        this.apply(message.to, stepControllerNode(this.nodes.get(message.to)!, { type: "message", message, nowMs: this.nowMs }));
      }
      if (this.nowMs % 10 === 0) {
        for (const [id, state] of this.nodes) if (!this.down.has(id)) this.apply(id, stepControllerNode(state, { type: "tick", nowMs: this.nowMs }));
      }
    }
  }

  leader(): string | undefined {
    return [...this.nodes.entries()].find(([id, state]) => !this.down.has(id) && controllerHoldsLease(state, this.nowMs))?.[0];
  }
}

test("three controllers elect one leader, announce it in the view, and apply the same commands in the same order", (t) => {
  const cluster = new Cluster();
  cluster.runFor(400);
  const leader = cluster.leader();
  t.truthy(leader);
  for (let index = 0; index < 12; index++) cluster.send({ type: "paxos.propose", from: "c2", to: leader!, command: register(`r${index}`, `h${index}`) });
  cluster.send({ type: "paxos.propose", from: "c2", to: leader!, command: register("dup", "h0") });
  cluster.runFor(300);
  const views = ids.map((id) => canonicalViewJson(cluster.nodes.get(id)!.learner.app));
  t.is(new Set(views).size, 1);
  const view = cluster.nodes.get("c1")!.learner.app;
  t.is(view.leader?.controllerId, leader);
  t.is(view.hosts.size, 12);
  const sequences = ids.map((id) => JSON.stringify(cluster.applied.get(id)));
  t.is(new Set(sequences).size, 1);
  t.deepEqual(
    cluster.applied.get("c1")!.find((item) => item.commandId === "dup")?.outcome,
    { kind: "rejected", reason: "host h0 already registered" },
  );
});

test("a controller restarted from an empty disk rejoins: it fences, catches up by snapshot and votes again", (t) => {
  const cluster = new Cluster();
  cluster.runFor(400);
  const leader = cluster.leader()!;
  const victim = ids.find((id) => id !== leader)!;
  for (let index = 0; index < 20; index++) cluster.send({ type: "paxos.propose", from: leader, to: leader, command: register(`r${index}`, `h${index}`) });
  cluster.runFor(300);
  cluster.down.add(victim);
  cluster.disks.set(victim, []);
  cluster.runFor(50);
  cluster.start(victim, false);
  t.is(cluster.nodes.get(victim)!.acceptor.mode, "rejoining");
  cluster.runFor(100);
  t.is(cluster.nodes.get(victim)!.acceptor.mode, "rejoining", "quarantine first");
  for (let index = 20; index < 30; index++) cluster.send({ type: "paxos.propose", from: leader, to: leader, command: register(`r${index}`, `h${index}`) });
  cluster.runFor(600);
  const rejoined = cluster.nodes.get(victim)!;
  t.is(rejoined.acceptor.mode, "voting");
  t.is(rejoined.learner.app.hosts.size, 30);
  t.true(cluster.disks.get(victim)!.some((record) => record.kind === "snapshot"), "the fetched snapshot was persisted");
  t.is(canonicalViewJson(rejoined.learner.app), canonicalViewJson(cluster.nodes.get(leader)!.learner.app));
  // With the third controller down, the rejoined one is needed for every majority: commits still happen.
  const third = ids.find((id) => id !== leader && id !== victim)!;
  cluster.down.add(third);
  const current = cluster.leader() ?? leader;
  cluster.send({ type: "paxos.propose", from: current, to: current, command: register("after", "h-after") });
  cluster.runFor(800);
  t.true(cluster.nodes.get(victim)!.learner.app.hosts.has("h-after"));
});

test("a floor adopted from rejoin fences gets the node's own snapshot as soon as its view reaches it, and only then", (t) => {
  const commit = (slot: number): Message => ({ type: "paxos.commit", from: "c1", to: "c3", entries: [{ slot, value: { kind: "commands", commands: [register(`r${slot}`, `h${slot}`)] } }], commitIndex: slot + 1 });
  // What a rejoin leaves: votes below slot 2 compacted on its fences, and no snapshot of its own.
  const rejoined = node("c3", [{ kind: "init", fencedBy: ["c1", "c2"], acceptors: ids }, { kind: "promise", ballot: ballot(3, "c1") }, { kind: "floor", slot: 2 }], false);
  t.is(rejoined.acceptor.floorSlot, 2);
  t.is(rejoined.lastSnapshot, null);
  const snapshotsTaken = (start: Node): (number | null)[] => {
    let state = start;
    const taken: (number | null)[] = [];
    for (let slot = 0; slot < 5; slot++) {
      const step = stepControllerNode(state, { type: "message", message: commit(slot), nowMs: 1 + slot });
      state = step.state;
      const snapshot = step.rewrite?.find((record) => record.kind === "snapshot");
      taken.push(snapshot?.kind === "snapshot" ? snapshot.throughSlot : null);
    }
    return taken;
  };
  // Through slot 2 at once, when the view reached the floor; then c3's periodic one (at slot 3 with these timings) as on any node.
  t.deepEqual(snapshotsTaken(rejoined), [null, 2, 3, null, null]);
  t.deepEqual(snapshotsTaken(node("c3")), [null, null, 3, null, null]);
});

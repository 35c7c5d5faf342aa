/**
 * Fuzz seed 40's shape at the level of the pure controller cores: the leader's
 * messages still reach the two followers, but nothing the followers send
 * reaches the leader. The followers can talk to each other (a majority), so a
 * proposal must commit within the scenario library's bound (3 s); before
 * check quorum nothing ever did, because the followers kept hearing the leader.
 */
import test from "ava";
import { createPaxosConfig } from "../../machines/paxos/config.ts";
import { controllerHoldsLease, createControllerNode, stepControllerNode, type ControllerInput, type ControllerNodeState } from "../../machines/paxos/controllerNode.ts";
import { learnerBroadcast, type PaxosMessage } from "../../machines/paxos/messages.ts";
import type { ViewCommand } from "../../machines/view/viewCommands.ts";
import { leaderElectedCommand, viewStateMachine } from "../../machines/view/viewStateMachine.ts";
import type { View } from "../../machines/view/viewTypes.ts";

type Message = PaxosMessage<ViewCommand>;
type Node = ControllerNodeState<ViewCommand, View>;

const ids = ["c1", "c2", "c3"];
const config = createPaxosConfig(ids);
const tickMs = 10;
const latencyMs = 1;
const commitBoundMs = 3_000;

interface Flight {
  readonly atMs: number;
  readonly message: Message;
}

class PureCluster {
  readonly nodes = new Map<string, Node>();
  flights: Flight[] = [];
  nowMs = 0;
  blocked: (from: string, to: string) => boolean = () => false;
  leaseOverlaps: string[] = [];

  constructor(seeds: Record<string, number>) {
    for (const id of ids) {
      const start = createControllerNode<ViewCommand, View>({
        nodeId: id,
        config,
        machine: viewStateMachine,
        records: [],
        nowMs: 0,
        randomSeed: seeds[id]!,
        bootstrap: true,
        leaderAnnouncement: (ballot) => leaderElectedCommand(id, ballot.round),
      });
      this.nodes.set(id, start.state);
    }
  }

  private step(id: string, input: ControllerInput<ViewCommand>): void {
    // Durability is instant here: the actor-level test covers the writer.
    const result = stepControllerNode(this.nodes.get(id)!, input);
    this.nodes.set(id, result.state);
    for (const message of result.sendAfterSync) {
      if (message.to === learnerBroadcast || this.blocked(message.from, message.to)) continue;
      this.flights.push({ atMs: this.nowMs + latencyMs, message });
    }
  }

  deliver(message: Message): void {
    this.step(message.to, { type: "message", message, nowMs: this.nowMs });
  }

  runUntil(endMs: number, stop: () => boolean = () => false): void {
    while (this.nowMs < endMs && !stop()) {
      this.nowMs++;
      const due = this.flights.filter((flight) => flight.atMs <= this.nowMs);
      this.flights = this.flights.filter((flight) => flight.atMs > this.nowMs);
      for (const flight of due) this.deliver(flight.message);
      if (this.nowMs % tickMs === 0) for (const id of ids) this.step(id, { type: "tick", nowMs: this.nowMs });
      const holders = ids.filter((id) => controllerHoldsLease(this.nodes.get(id)!, this.nowMs));
      if (holders.length > 1) this.leaseOverlaps.push(`${this.nowMs}: ${holders.join(", ")}`);
    }
  }

  leader(): string | undefined {
    return ids.find((id) => this.nodes.get(id)!.proposer.role === "leader");
  }

  applied(id: string, hostId: string): boolean {
    return this.nodes.get(id)!.learner.app.hosts.has(hostId);
  }
}

test("a leader that can send but not receive steps down, and the two followers that can talk commit within the bound", (t) => {
  // Seeds chosen so that c2 wins the first election, as in fuzz seed 40.
  const cluster = new PureCluster({ c1: 4, c2: 7, c3: 2 });
  cluster.runUntil(5_000, () => cluster.leader() !== undefined && controllerHoldsLease(cluster.nodes.get(cluster.leader()!)!, cluster.nowMs));
  t.is(cluster.leader(), "c2");
  cluster.runUntil(cluster.nowMs + 500);

  const cutAtMs = cluster.nowMs;
  cluster.blocked = (from, to) => to === "c2" && from !== "c2";
  const register: ViewCommand = { id: "after-cut", type: "host.register", hostId: "h-after-cut", capacity: { cpu: 4, memoryMiB: 1_024 } };
  // A client on c1 proposes to whoever c1 believes leads (c2 at first, then the new leader), every 200 ms.
  const committed = () => cluster.applied("c1", "h-after-cut") && cluster.applied("c3", "h-after-cut");
  while (!committed() && cluster.nowMs < cutAtMs + commitBoundMs) {
    const believed = cluster.nodes.get("c1")!.proposer.leaderId || "c1";
    if (!cluster.blocked("c1", believed)) cluster.deliver({ type: "paxos.propose", from: "c1", to: believed, command: register });
    cluster.runUntil(cluster.nowMs + 200, committed);
  }
  t.true(committed(), `nothing committed within ${commitBoundMs} ms of the cut`);
  t.log(`committed ${cluster.nowMs - cutAtMs} ms after the cut; leader ${cluster.leader()}`);
  t.true(cluster.nowMs - cutAtMs < config.electionTimeoutMs * 2 + config.electionJitterMs * 2 + config.prepareTimeoutMs);

  const deposed = cluster.nodes.get("c2")!.proposer;
  t.not(deposed.role, "leader", "c2 stepped down: it heard no majority");
  t.true(["c1", "c3"].includes(cluster.leader() ?? ""));
  t.false(controllerHoldsLease(cluster.nodes.get("c2")!, cluster.nowMs));

  // c2 keeps campaigning (it hears nothing), but the new leader's lease keeps its prepares out: no more leader changes.
  const leaderNow = cluster.leader();
  cluster.runUntil(cluster.nowMs + 5_000);
  t.is(cluster.leader(), leaderNow);
  t.true(controllerHoldsLease(cluster.nodes.get(leaderNow!)!, cluster.nowMs));
  t.deepEqual(cluster.leaseOverlaps, []);
});

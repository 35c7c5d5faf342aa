/**
 * Three pure controller cores on a simulated millisecond clock, for tests of
 * whole-cluster behaviour without the actors: messages take `latencyMs`, a
 * tick every `tickMs`, durability is instant (the actor-level tests cover the
 * writer), `blocked` cuts links one way, `lost` drops single messages (it sees
 * every message sent, before `blocked`), and every step checks that at most
 * one controller holds the lease.
 */
import { createPaxosConfig } from "../../machines/paxos/config.ts";
import { controllerHoldsLease, createControllerNode, stepControllerNode, type ControllerInput, type ControllerNodeState } from "../../machines/paxos/controllerNode.ts";
import { learnerBroadcast, type PaxosMessage } from "../../machines/paxos/messages.ts";
import type { ViewCommand } from "../../machines/view/viewCommands.ts";
import { leaderElectedCommand, viewStateMachine } from "../../machines/view/viewStateMachine.ts";
import type { View } from "../../machines/view/viewTypes.ts";

export type Message = PaxosMessage<ViewCommand>;
export type Node = ControllerNodeState<ViewCommand, View>;

export const ids = ["c1", "c2", "c3"];
export const config = createPaxosConfig(ids);
const tickMs = 10;
const latencyMs = 1;

interface Flight {
  readonly atMs: number;
  readonly message: Message;
}

export class PureCluster {
  readonly nodes = new Map<string, Node>();
  flights: Flight[] = [];
  nowMs = 0;
  blocked: (from: string, to: string) => boolean = () => false;
  lost: (message: Message) => boolean = () => false;
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
      if (message.to === learnerBroadcast || this.lost(message) || this.blocked(message.from, message.to)) continue;
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

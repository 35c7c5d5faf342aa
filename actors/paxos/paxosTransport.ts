/**
 * Where a Paxos message goes, by its `to`:
 *
 * - this node itself: handed back through `deliverLocal` (the node's own
 *   mailbox, so never inside the call that sent it), without encoding;
 * - `*` (the commit broadcast to learners that are not acceptors): published
 *   on `view.commit`;
 * - a node that asked through a `view.fetch` request: its catch-up answer
 *   goes to the request's reply inbox;
 * - any other node: published on `paxos.<to>`.
 *
 * Chosen entries (commits, catch-up answers) too many for one NATS message
 * are split. Any other message the codec refuses to encode (too large, or a
 * recipient that is not a valid id) is dropped and counted: the cores
 * tolerate loss, and an oversized promise or snapshot is a known limit
 * (docs/paxos.md), not a reason to stop the node.
 */
import type { NodePorts } from "../ports/nodePorts.ts";
import { clusterSubjects, isValidId } from "../subjects.ts";
import { learnerBroadcast } from "../../machines/paxos/messages.ts";
import { encodePaxosMessage, type ViewPaxosMessage } from "./paxosMessages.ts";

export const paxosUnsendableMetric = "haring_paxos_unsendable_total";
/** Fetch requests whose reply inbox is remembered at most; the oldest is forgotten (its requester retries). */
export const maxRememberedFetchInboxes = 1_024;

export type TransportPorts = Pick<NodePorts, "nodeId" | "clusterId" | "network" | "log" | "metrics">;

export class PaxosTransport {
  private readonly subjects;
  private readonly fetchInboxes = new Map<string, string>();
  private readonly loggedProblems = new Set<string>();

  constructor(
    private readonly ports: TransportPorts,
    private readonly deliverLocal: (message: ViewPaxosMessage) => void,
  ) {
    this.subjects = clusterSubjects(ports.clusterId);
  }

  /** The next catch-up answer to `requester` goes to `inbox` (the reply subject of its view.fetch request). */
  rememberFetchInbox(requester: string, inbox: string): void {
    this.fetchInboxes.delete(requester);
    if (this.fetchInboxes.size >= maxRememberedFetchInboxes) {
      const oldest = this.fetchInboxes.keys().next().value;
      if (oldest !== undefined) this.fetchInboxes.delete(oldest);
    }
    this.fetchInboxes.set(requester, inbox);
  }

  send(message: ViewPaxosMessage): void {
    if (message.to === this.ports.nodeId) {
      this.deliverLocal(message);
      return;
    }
    let subject: string;
    if (message.to === learnerBroadcast) {
      subject = this.subjects.viewCommit;
    } else if ((message.type === "paxos.fetch-reply" || message.type === "paxos.snapshot") && this.fetchInboxes.has(message.to)) {
      subject = this.fetchInboxes.get(message.to)!;
      this.fetchInboxes.delete(message.to);
    } else if (isValidId(message.to)) {
      subject = this.subjects.paxos(message.to);
    } else {
      this.unsendable(message, "invalid-recipient", `recipient ${JSON.stringify(message.to.slice(0, 70))} is not a node id`);
      return;
    }
    this.publish(subject, message);
  }

  private publish(subject: string, message: ViewPaxosMessage): void {
    let data: Uint8Array;
    try {
      data = encodePaxosMessage(message);
    } catch (error) {
      if ((message.type === "paxos.commit" || message.type === "paxos.fetch-reply") && message.entries.length > 1) {
        // Too large for one message: chosen entries can travel in parts. A catch-up answer goes out with
        // its first half only (a request takes one reply); the learner asks again for the rest at once.
        const half = Math.ceil(message.entries.length / 2);
        this.publish(subject, { ...message, entries: message.entries.slice(0, half) });
        if (message.type === "paxos.commit") this.publish(subject, { ...message, entries: message.entries.slice(half) });
        return;
      }
      this.unsendable(message, "unencodable", error instanceof Error ? error.message : String(error));
      return;
    }
    this.ports.network.publish(subject, data);
  }

  private unsendable(message: ViewPaxosMessage, reason: string, detail: string): void {
    this.ports.metrics.increment(paxosUnsendableMetric, { type: message.type, reason });
    const kind = `${message.type}|${reason}`;
    if (this.loggedProblems.has(kind)) return;
    this.loggedProblems.add(kind);
    this.ports.log.write("warn", "paxos.unsendable", {
      type: message.type,
      reason,
      detail: detail.slice(0, 300),
      note: `further ${reason} ${message.type} messages are only counted in ${paxosUnsendableMetric}`,
    });
  }
}

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
 * are split. A snapshot, promise or rejoin-state too large for one message
 * (or a single chosen entry that is) travels in chunks to the recipient's
 * `paxos.<id>` subject (chunkedTransfer.ts). Any other message the codec
 * refuses to encode (larger than even a chunked transfer takes, or a
 * recipient that is not a valid id) is dropped and counted: the cores
 * tolerate loss, so that costs liveness, not safety.
 */
import { decodeCounted, type RejectionCounter } from "../codec/rejectionCounter.ts";
import type { NetMessage } from "../ports/network.ts";
import type { NodePorts } from "../ports/nodePorts.ts";
import type { PaxosMessageType } from "../../machines/paxos/messages.ts";
import { clusterSubjects, isValidId } from "../subjects.ts";
import { learnerBroadcast } from "../../machines/paxos/messages.ts";
import type { ChunkedTransfer } from "./chunkedTransfer.ts";
import { encodeLargePaxosMessage } from "./largePaxosMessage.ts";
import { paxosDroppedMetric } from "./controllerActor.ts";
import {
  chunkableMessageTypes,
  encodePaxosMessage,
  isTransferMessageType,
  paxosInboundRegistry,
  paxosMessageFromEnvelope,
  paxosWireRegistry,
  transferMessageTypes,
  type TransferMessageType,
  type ViewPaxosMessage,
} from "./paxosMessages.ts";
import type { ChunkRequest, TransferChunk } from "../../machines/paxos/chunkTransfer.ts";

/** What `chunkAboveBytes` moves in chunks: the messages chunking exists for (chosen entries are split instead). */
const forcedChunkTypes: readonly PaxosMessageType[] = ["paxos.snapshot", "paxos.promise", "paxos.rejoin-state"];

export const paxosUnsendableMetric = "haring_paxos_unsendable_total";
/** Fetch requests whose reply inbox is remembered at most; the oldest is forgotten (its requester retries). */
export const maxRememberedFetchInboxes = 1_024;
/** Own commit broadcasts remembered to recognise their echo; the oldest is forgotten (its echo is then decoded and dropped). */
export const maxRememberedOwnBroadcasts = 64;
/** Larger own broadcasts are not remembered (rare: a commit of many slots): their echo is decoded and dropped. */
export const maxRememberedOwnBroadcastBytes = 16 * 1024;

export type TransportPorts = Pick<NodePorts, "nodeId" | "clusterId" | "network" | "log" | "metrics">;

export class PaxosTransport {
  private readonly subjects;
  private readonly fetchInboxes = new Map<string, string>();
  private readonly loggedProblems = new Set<string>();
  /** Bytes this node published on `view.commit` whose echo has not come back yet, oldest first. */
  private ownBroadcasts: Uint8Array[] = [];

  constructor(
    private readonly ports: TransportPorts,
    private readonly deliverLocal: (message: ViewPaxosMessage) => void,
    /** Carries what does not fit one message; without it such messages are dropped and counted. */
    private readonly chunked?: ChunkedTransfer,
    /**
     * Snapshots, promises and rejoin-states larger than this go in chunks even when they would fit one
     * message: the simulator's fuzzing sets it low so that its small views exercise the chunked path.
     */
    private readonly chunkAboveBytes = Number.POSITIVE_INFINITY,
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

  /**
   * Decodes a message that arrived on this node's own `paxos.<id>` subject. Chunk traffic is taken
   * care of here (a message completed from chunks reaches the chunked transfer's `deliver`); any
   * other allowed message is returned for the caller to check and dispatch.
   */
  receiveOwn(netMessage: NetMessage, allowed: readonly PaxosMessageType[], rejections: RejectionCounter): ViewPaxosMessage | undefined {
    const types: readonly (PaxosMessageType | TransferMessageType)[] = this.chunked ? [...allowed, ...transferMessageTypes] : allowed;
    const envelope = decodeCounted(paxosInboundRegistry, rejections, netMessage.subject, netMessage.data, types);
    if (envelope === undefined) return undefined;
    if (!isTransferMessageType(envelope.t)) return paxosMessageFromEnvelope(envelope as never);
    const body = envelope.body as { readonly to: string };
    if (body.to !== this.ports.nodeId) {
      this.ports.metrics.increment(paxosDroppedMetric, { reason: "misaddressed" });
      return undefined;
    }
    if (envelope.t === "paxos.chunk") this.chunked!.receiveChunk({ from: envelope.from, ...(envelope.body as Omit<TransferChunk, "from">) }, netMessage.subject);
    else this.chunked!.receiveRequest({ from: envelope.from, ...(envelope.body as Omit<ChunkRequest, "from">) });
    return undefined;
  }

  /**
   * True when `data` is the echo of a commit this node broadcast itself: NATS hands a connection its
   * own messages back, and a leader has nothing to learn from them. Recognised by their bytes, so a
   * leader spends no decode and no schema check on them. Anything that is not byte for byte one of our
   * own broadcasts is decoded and checked as before (and a copy of ours from elsewhere names this node
   * as its sender, which the receiver drops anyway).
   */
  isOwnBroadcastEcho(data: Uint8Array): boolean {
    const remembered = this.ownBroadcasts;
    for (let index = 0; index < remembered.length; index++) {
      if (!sameBytes(remembered[index]!, data)) continue;
      // Echoes come back in the order they were sent: older ones still waiting were lost (a reconnect).
      this.ownBroadcasts = remembered.slice(index + 1);
      return true;
    }
    return false;
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
    if (message.type === "paxos.snapshot") {
      this.publishSnapshot(subject, message);
      return;
    }
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
      if (this.chunked && chunkableMessageTypes.includes(message.type) && message.to !== learnerBroadcast) {
        const sent = this.chunked.send(message);
        if (sent.ok) return;
        this.unsendable(message, "too-large-for-chunks", sent.error);
        return;
      }
      this.unsendable(message, "unencodable", error instanceof Error ? error.message : String(error));
      return;
    }
    if (data.length > this.chunkAboveBytes && this.chunked && forcedChunkTypes.includes(message.type) && message.to !== learnerBroadcast && this.chunked.send(message).ok) return;
    if (subject === this.subjects.viewCommit) this.rememberOwnBroadcast(data);
    this.ports.network.publish(subject, data);
  }

  /**
   * A snapshot is encoded once, up to the size moved in chunks, and its snapshot object's bytes are
   * reused (largePaxosMessage.ts): encoding a large one for one message only to learn it does not fit
   * cost as much again as the chunks' encoding, on the event loop the serving controller answers with.
   */
  private publishSnapshot(subject: string, message: ViewPaxosMessage & { readonly type: "paxos.snapshot" }): void {
    let data: Uint8Array;
    try {
      data = encodeLargePaxosMessage(message);
    } catch (error) {
      const detail = error instanceof Error ? error.message : String(error);
      this.unsendable(message, this.chunked && detail.includes("exceeds maxMessageBytes") ? "too-large-for-chunks" : "unencodable", detail);
      return;
    }
    const fitsOneMessage = data.length <= paxosWireRegistry.maxMessageBytes;
    if (this.chunked && message.to !== learnerBroadcast && (!fitsOneMessage || data.length > this.chunkAboveBytes)) {
      const sent = this.chunked.send(message, data);
      if (sent.ok) return;
      if (!fitsOneMessage) {
        this.unsendable(message, "too-large-for-chunks", sent.error);
        return;
      }
    }
    if (!fitsOneMessage) {
      this.unsendable(message, "unencodable", `encode paxos.snapshot: ${data.length} bytes exceeds maxMessageBytes ${paxosWireRegistry.maxMessageBytes}`);
      return;
    }
    if (subject === this.subjects.viewCommit) this.rememberOwnBroadcast(data);
    this.ports.network.publish(subject, data);
  }

  private rememberOwnBroadcast(data: Uint8Array): void {
    if (data.length > maxRememberedOwnBroadcastBytes) return;
    if (this.ownBroadcasts.length >= maxRememberedOwnBroadcasts) this.ownBroadcasts.shift();
    this.ownBroadcasts.push(data);
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

function sameBytes(left: Uint8Array, right: Uint8Array): boolean {
  if (left.length !== right.length) return false;
  for (let index = 0; index < left.length; index++) if (left[index] !== right[index]) return false;
  return true;
}

/**
 * Moves Paxos messages too large for one network message (a snapshot of a
 * big view, a promise or rejoin-state reporting many votes) in chunks: the
 * I/O around the pure protocol of machines/paxos/chunkTransfer.ts.
 *
 * Sending: the message is encoded whole (validated, up to
 * `maxTransferBytes`), and its bytes leave as `paxos.chunk` messages on the
 * recipient's `paxos.<id>` subject, the first window unasked, the rest as the
 * recipient asks for them (`paxos.chunk-request` on the sender's subject).
 * Receiving: chunks are checked and assembled; a complete whole that passes
 * its size and checksum is decoded with the wire schema of the type it
 * carries, and must name the chunks' sender as its own; only then is it
 * delivered, exactly as if it had arrived in one piece. Hostile or corrupt
 * chunks are counted in `haring_paxos_chunks_rejected_total{reason}`;
 * transfers started, completed and abandoned in
 * `haring_paxos_transfers_total{event}`.
 *
 * Chunks carry no promise of their own: they only repeat bytes of a message
 * whose records were durable before it was first handed to the transport.
 */
import { crc32 } from "../recordFraming.ts";
import type { TimerId } from "../ports/clock.ts";
import type { NodePorts } from "../ports/nodePorts.ts";
import type { RejectionCounter } from "../codec/rejectionCounter.ts";
import { clusterSubjects, isValidId } from "../subjects.ts";
import {
  createReceiver,
  createSender,
  defaultTransferLimits,
  dropSupersededBy,
  expireOutgoing,
  isRejectedVerdict,
  receiveChunk,
  serveChunkRequest,
  startTransfer,
  tickReceiver,
  transferId,
  type ChunkRequest,
  type ReceiverState,
  type ReceiverStep,
  type SenderState,
  type TransferChunk,
  type TransferLimits,
} from "../../machines/paxos/chunkTransfer.ts";
import type { PaxosMessageType } from "../../machines/paxos/messages.ts";
import { encodeTransferMessage, paxosLargeWireRegistry, paxosMessageFromEnvelope, type TransferMessage, type ViewPaxosMessage } from "./paxosMessages.ts";
import { encodeLargePaxosMessage } from "./largePaxosMessage.ts";

export const paxosTransfersMetric = "haring_paxos_transfers_total";
export const paxosChunksRejectedMetric = "haring_paxos_chunks_rejected_total";

export type ChunkedTransferPorts = Pick<NodePorts, "nodeId" | "clusterId" | "network" | "clock" | "random" | "log" | "metrics" | "checksum">;

export interface ChunkedTransferOptions {
  /** Message types this node takes in chunks. */
  readonly accepts: readonly PaxosMessageType[];
  /** A complete, validated message (its `to` is checked by the caller, as for any message). */
  readonly deliver: (message: ViewPaxosMessage) => void;
  /** A chunk from `from` arrived and moved its transfer on (the learner keeps its fetch from that peer alive). */
  readonly progress?: (from: string) => void;
  readonly rejections: RejectionCounter;
  readonly limits?: TransferLimits;
}

/** What a node may tune about its chunked transfers (tests and the simulator do). */
export interface ChunkedTransferSettings {
  readonly limits?: TransferLimits;
  /** Move snapshots, promises and rejoin-states above this size in chunks even when they fit one message. */
  readonly chunkAboveBytes?: number;
}

export class ChunkedTransfer {
  private sender: SenderState;
  private receiver: ReceiverState;
  private readonly subjects;
  private readonly nonce: number;
  private counter = 0;
  private timer: TimerId | undefined;
  private stopped = false;
  private readonly loggedReasons = new Set<string>();
  private readonly limits: TransferLimits;

  constructor(
    private readonly ports: ChunkedTransferPorts,
    private readonly options: ChunkedTransferOptions,
  ) {
    this.limits = options.limits ?? defaultTransferLimits;
    this.sender = createSender(ports.nodeId, this.limits);
    this.receiver = createReceiver(ports.nodeId, options.accepts, this.limits);
    this.subjects = clusterSubjects(ports.clusterId);
    // Tells this incarnation's transfers apart from an earlier one's whose chunks may still be in flight.
    this.nonce = ports.random.int(0x1_0000_0000);
  }

  /**
   * Sends `message` in chunks; false (nothing sent) when it cannot be encoded even so. `encoded`: the
   * message as `encodeLargePaxosMessage` makes it, when the caller has it already.
   */
  send(message: ViewPaxosMessage, encoded?: Uint8Array): { readonly ok: true } | { readonly ok: false; readonly error: string } {
    if (this.stopped) return { ok: true };
    if (!isValidId(message.to)) return { ok: false, error: `recipient ${JSON.stringify(message.to.slice(0, 70))} cannot receive chunks` };
    let bytes: Uint8Array;
    try {
      bytes = encoded ?? encodeLargePaxosMessage(message);
    } catch (error) {
      return { ok: false, error: error instanceof Error ? error.message : String(error) };
    }
    const slot = message.type === "paxos.snapshot" ? message.throughSlot : 0;
    const step = startTransfer(
      this.sender,
      { to: message.to, transferId: transferId(this.nonce, this.counter++), carries: message.type, slot, bytes, nowMs: this.ports.clock.now() },
      this.ports.checksum ?? crc32,
    );
    if (step.ignored !== null) return { ok: false, error: step.ignored };
    this.sender = step.state;
    this.ports.metrics.increment(paxosTransfersMetric, { event: "started", carries: message.type });
    for (const chunk of step.chunks) this.publishChunk(chunk);
    this.armTimer();
    return { ok: true };
  }

  /** A decoded `paxos.chunk` addressed to this node. */
  receiveChunk(chunk: TransferChunk, subject: string): void {
    if (this.stopped) return;
    const step = receiveChunk(this.receiver, chunk, this.ports.clock.now(), this.ports.checksum ?? crc32);
    if (isRejectedVerdict(step.verdict)) this.reject(subject, step.verdict!, `chunk ${chunk.index} of ${chunk.transferId} from ${chunk.from}`);
    this.afterReceiverStep(step, subject);
    if (step.verdict === "progress" && step.completed === null) this.options.progress?.(chunk.from);
  }

  /** A decoded `paxos.chunk-request` addressed to this node. */
  receiveRequest(request: ChunkRequest): void {
    if (this.stopped) return;
    const step = serveChunkRequest(this.sender, request, this.ports.clock.now());
    this.sender = step.state;
    for (const chunk of step.chunks) this.publishChunk(chunk);
  }

  /** Snapshots through `throughSlot` are installed: transfers of older ones are pointless. */
  installedThrough(throughSlot: number): void {
    this.receiver = dropSupersededBy(this.receiver, "paxos.snapshot", throughSlot);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) this.ports.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private afterReceiverStep(step: ReceiverStep, subject: string): void {
    this.receiver = step.state;
    for (const abandoned of step.abandoned) this.ports.metrics.increment(paxosTransfersMetric, { event: abandoned.reason, carries: "" });
    for (const request of step.requests) this.publish(this.subjects.paxos(request.to), { type: "paxos.chunk-request", ...request });
    if (step.completed) {
      const completed = step.completed;
      const decoded = paxosLargeWireRegistry.decode(completed.bytes, [completed.carries as PaxosMessageType]);
      if (!decoded.ok) {
        this.options.rejections.count(subject, decoded);
        this.reject(subject, "undecodable", decoded.detail);
      } else if (decoded.message.from !== completed.from) {
        this.reject(subject, "wrong-sender", `chunks from ${completed.from} carried a message from ${decoded.message.from}`);
      } else {
        this.ports.metrics.increment(paxosTransfersMetric, { event: "completed", carries: completed.carries });
        this.options.deliver(paxosMessageFromEnvelope(decoded.message));
      }
    }
    this.armTimer();
  }

  private reject(subject: string, reason: string, detail: string): void {
    this.ports.metrics.increment(paxosChunksRejectedMetric, { reason });
    if (this.loggedReasons.has(reason)) return;
    this.loggedReasons.add(reason);
    this.ports.log.write("warn", "paxos.chunk-rejected", {
      reason,
      subject: subject.slice(0, 128),
      detail: detail.slice(0, 200),
      note: `further ${reason} chunks are only counted in ${paxosChunksRejectedMetric}`,
    });
  }

  private publishChunk(chunk: TransferChunk): void {
    this.publish(this.subjects.paxos(chunk.to), { type: "paxos.chunk", ...chunk });
  }

  private publish(subject: string, message: TransferMessage): void {
    this.ports.network.publish(subject, encodeTransferMessage(message));
  }

  private armTimer(): void {
    if (this.stopped || this.timer !== undefined) return;
    if (this.receiver.incoming.size === 0 && this.sender.outgoing.size === 0) return;
    this.timer = this.ports.clock.setTimeout(() => {
      this.timer = undefined;
      this.tick();
    }, Math.max(1, Math.floor(this.limits.retryAfterMs / 2)));
  }

  private tick(): void {
    if (this.stopped) return;
    const nowMs = this.ports.clock.now();
    this.sender = expireOutgoing(this.sender, nowMs);
    this.afterReceiverStep(tickReceiver(this.receiver, nowMs), "");
  }
}

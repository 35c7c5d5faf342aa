/**
 * The Paxos protocol on the wire: one MessageRegistry entry per PaxosMessage
 * type, with the view's commands inside slot values and the view's snapshot
 * inside `paxos.snapshot`.
 *
 * A message travels as the codec's envelope `{ v, t, from, cid, body }`: `t`
 * is the message's `type` (already in the envelope's type pattern), `from`
 * its sender, and the body every other field. Every field is bounded (see the
 * wire limits below and actors/view/viewSchemas.ts); semantic checks (slots
 * that are indices, a ballot naming its sender) stay in
 * machines/paxos/messageChecks.ts, which the cores run on every message.
 */
import { arr, bool, bytes, discriminated, int, literal, num, obj, oneOf, optional, str, type Infer } from "../codec/schema.ts";
import { createMessageRegistry, type DecodeResult, type MessageOf } from "../codec/messageCodec.ts";
import { maxVotesHeld } from "../../machines/paxos/acceptor.ts";
import { defaultTransferLimits, minTransferChunkBytes, transferIdPattern, type ChunkRequest, type TransferChunk } from "../../machines/paxos/chunkTransfer.ts";
import type { PaxosConfig } from "../../machines/paxos/config.ts";
import type { PaxosMessage, PaxosMessageType } from "../../machines/paxos/messages.ts";
import { maxCommandIdLength, type ViewCommand } from "../../machines/view/viewCommands.ts";
import { viewCommandSchema, viewSnapshotSchema } from "../view/viewSchemas.ts";

/** Commands one slot value may carry on the wire; `maxCommandsPerBatch` must stay within it. */
export const maxWireCommandsPerSlot = 1_024;
/**
 * The largest view command on the wire (a vm.add with the longest ids and 64 + 64 rule targets
 * encodes to about 8.8 KB; a test keeps this bound honest). An accept carries a whole batch, so
 * `maxCommandsPerBatch` of these must fit one network message.
 */
export const maxWireCommandBytes = 9 * 1024;
/** What an accept adds around its commands (ballot, slots, ids, envelope), generously. */
export const acceptOverheadBytes = 1_024;
/** Votes one promise or rejoin-state may report; `maxVotesHeld(config)` must stay within it. */
export const maxWireVotesPerMessage = 16_384;
/** Chosen entries one commit or fetch-reply may carry; `maxFetchSlots` and `maxInFlightSlots` must stay within it. */
export const maxWireEntriesPerMessage = 16_384;
/** A lease is a few seconds at most; anything far beyond is garbage. */
export const maxWireLeaseRemainingMs = 3_600_000;

export type ViewPaxosMessage = PaxosMessage<ViewCommand>;

const slotSchema = int({ min: 0, max: Number.MAX_SAFE_INTEGER });
const countSchema = int({ min: 0, max: Number.MAX_SAFE_INTEGER });
/** A controller id, or "" in the zero ballot and in "nobody" fields. */
const optionalIdSchema = str({ maxLength: 64, pattern: /^[A-Za-z0-9_-]*$/ });
export const ballotSchema = obj({ round: countSchema, controllerId: optionalIdSchema });
const recipientSchema = str({ minLength: 1, maxLength: 64, pattern: /^(?:\*|[A-Za-z0-9_-]+)$/ });

const slotValueSchema = discriminated("kind", [
  obj({ kind: literal("noop") }),
  obj({ kind: literal("commands"), commands: arr(viewCommandSchema, { maxLength: maxWireCommandsPerSlot }) }),
]);
const reportedVotesSchema = arr(obj({ slot: slotSchema, ballot: ballotSchema, value: slotValueSchema }), { maxLength: maxWireVotesPerMessage });
const chosenEntriesSchema = arr(obj({ slot: slotSchema, value: slotValueSchema }), { maxLength: maxWireEntriesPerMessage });

export const paxosWireSchemas = {
  "paxos.pre-vote": obj({ to: recipientSchema, ballot: ballotSchema }),
  "paxos.pre-vote-reply": obj({
    to: recipientSchema,
    ballot: ballotSchema,
    granted: bool(),
    promised: ballotSchema,
    leaseHolderId: optionalIdSchema,
    leaseRemainingMs: num({ min: 0, max: maxWireLeaseRemainingMs }),
  }),
  "paxos.prepare": obj({ to: recipientSchema, ballot: ballotSchema, fromSlot: slotSchema }),
  "paxos.promise": obj({ to: recipientSchema, ballot: ballotSchema, floorSlot: slotSchema, votes: reportedVotesSchema }),
  "paxos.accept": obj({ to: recipientSchema, ballot: ballotSchema, slot: slotSchema, value: slotValueSchema, commitIndex: slotSchema }),
  "paxos.accepted": obj({ to: recipientSchema, ballot: ballotSchema, slot: slotSchema }),
  "paxos.heartbeat": obj({ to: recipientSchema, ballot: ballotSchema, commitIndex: slotSchema, sequence: countSchema }),
  "paxos.heartbeat-ack": obj({ to: recipientSchema, ballot: ballotSchema, sequence: countSchema }),
  "paxos.reject": obj({
    to: recipientSchema,
    ballot: ballotSchema,
    reason: oneOf(["stale-ballot", "lease-held", "rejoining", "compacted", "vote-log-full"]),
    promised: ballotSchema,
    leaseHolderId: optionalIdSchema,
    leaseRemainingMs: num({ min: 0, max: maxWireLeaseRemainingMs }),
    floorSlot: slotSchema,
    slot: int({ min: -1, max: Number.MAX_SAFE_INTEGER }),
  }),
  "paxos.rejoin-fence": obj({ to: recipientSchema, attempt: countSchema }),
  "paxos.rejoin-state": obj({ to: recipientSchema, attempt: countSchema, fence: ballotSchema, floorSlot: slotSchema, votes: reportedVotesSchema }),
  "paxos.commit": obj({ to: recipientSchema, entries: chosenEntriesSchema, commitIndex: slotSchema }),
  "paxos.fetch": obj({ to: recipientSchema, fromSlot: slotSchema, maxSlots: int({ min: 0, max: maxWireEntriesPerMessage }) }),
  "paxos.fetch-reply": obj({ to: recipientSchema, entries: chosenEntriesSchema, commitIndex: slotSchema }),
  "paxos.snapshot": obj({ to: recipientSchema, throughSlot: slotSchema, snapshot: viewSnapshotSchema, commitIndex: slotSchema }),
  "paxos.propose": obj({ to: recipientSchema, command: viewCommandSchema, relay: optional(bool()) }),
  "paxos.propose-reply": obj({
    to: recipientSchema,
    commandId: str({ minLength: 1, maxLength: maxCommandIdLength }),
    refusal: oneOf(["not-leader", "overloaded"]),
    leaderHint: optionalIdSchema,
  }),
} satisfies Record<PaxosMessageType, unknown>;

export type PaxosWireSchemas = typeof paxosWireSchemas;

/** The body of each type: the message without `type` and `from`, which travel in the envelope. */
export type PaxosWireBody<T extends PaxosMessageType> = Infer<PaxosWireSchemas[T]>;

export const paxosWireRegistry = createMessageRegistry(paxosWireSchemas);

/**
 * The same messages, up to the size moved in chunks (machines/paxos/chunkTransfer.ts): what a sender
 * encodes when a message does not fit one network message, and what a receiver decodes once every
 * chunk arrived and the whole passed its size and checksum checks.
 */
export const paxosLargeWireRegistry = createMessageRegistry(paxosWireSchemas, { maxMessageBytes: defaultTransferLimits.maxTransferBytes });

/** Message types that may travel in chunks: the ones that can outgrow one network message and cannot be split by entries. */
export const chunkableMessageTypes: readonly PaxosMessageType[] = ["paxos.snapshot", "paxos.promise", "paxos.rejoin-state", "paxos.commit", "paxos.fetch-reply"];

const transferIdSchema = str({ minLength: 3, maxLength: 25, pattern: transferIdPattern });

/** Chunks and chunk requests: the transport's, not the cores' (they never see them). */
export const transferWireSchemas = {
  "paxos.chunk": obj({
    to: recipientSchema,
    transferId: transferIdSchema,
    carries: oneOf(chunkableMessageTypes),
    slot: slotSchema,
    totalBytes: int({ min: 1, max: defaultTransferLimits.maxTransferBytes }),
    chunkBytes: int({ min: minTransferChunkBytes, max: defaultTransferLimits.chunkBytes }),
    chunkCount: int({ min: 1, max: Math.ceil(defaultTransferLimits.maxTransferBytes / minTransferChunkBytes) }),
    checksum: int({ min: 0, max: 0xffffffff }),
    index: countSchema,
    data: bytes({ maxLength: defaultTransferLimits.chunkBytes }),
  }),
  "paxos.chunk-request": obj({
    to: recipientSchema,
    transferId: transferIdSchema,
    indices: arr(countSchema, { maxLength: defaultTransferLimits.chunksInFlight }),
  }),
};

export const transferWireRegistry = createMessageRegistry(transferWireSchemas);
export type TransferMessageType = keyof typeof transferWireSchemas;
export const transferMessageTypes: readonly TransferMessageType[] = ["paxos.chunk", "paxos.chunk-request"];

/** Everything a node may receive on its own paxos subject: protocol messages and the transport's chunks. */
export const paxosInboundRegistry = createMessageRegistry({ ...paxosWireSchemas, ...transferWireSchemas });

export type TransferMessage = ({ readonly type: "paxos.chunk" } & TransferChunk) | ({ readonly type: "paxos.chunk-request" } & ChunkRequest);

export function encodeTransferMessage(message: TransferMessage): Uint8Array {
  const { type, from, ...body } = message;
  return transferWireRegistry.encode(type, from, "", body as never);
}

export function isTransferMessageType(type: string): type is TransferMessageType {
  return type === "paxos.chunk" || type === "paxos.chunk-request";
}

/** Every problem that would make this config produce messages the wire refuses; empty when it fits. */
export function paxosWireConfigProblems(config: PaxosConfig): string[] {
  const problems: string[] = [];
  if (config.maxCommandsPerBatch > maxWireCommandsPerSlot) problems.push(`maxCommandsPerBatch must be at most ${maxWireCommandsPerSlot} (the wire limit)`);
  else if (config.maxCommandsPerBatch * maxWireCommandBytes + acceptOverheadBytes > paxosWireRegistry.maxMessageBytes) {
    // Accepts and single chosen entries are not moved in chunks: a batch must fit one message.
    const fitting = Math.floor((paxosWireRegistry.maxMessageBytes - acceptOverheadBytes) / maxWireCommandBytes);
    problems.push(`maxCommandsPerBatch must be at most ${fitting}: a batch of the largest commands must fit one ${paxosWireRegistry.maxMessageBytes}-byte message`);
  }
  if (maxVotesHeld(config) > maxWireVotesPerMessage) {
    problems.push(`an acceptor may hold ${maxVotesHeld(config)} votes (4 × (maxRetainedSlots + maxInFlightSlots)); the wire carries at most ${maxWireVotesPerMessage}`);
  }
  if (config.maxFetchSlots > maxWireEntriesPerMessage) problems.push(`maxFetchSlots must be at most ${maxWireEntriesPerMessage} (the wire limit)`);
  if (config.maxInFlightSlots > maxWireEntriesPerMessage) problems.push(`maxInFlightSlots must be at most ${maxWireEntriesPerMessage} (the wire limit)`);
  if (config.leaseDurationMs > maxWireLeaseRemainingMs) problems.push(`leaseDurationMs must be at most ${maxWireLeaseRemainingMs}`);
  return problems;
}

/** The correlation id: ties a message to the step and the node that sent it, for logs and `nats sub`. */
function correlationOf(message: ViewPaxosMessage): string {
  switch (message.type) {
    case "paxos.accept":
    case "paxos.accepted":
      return `s${message.slot}`;
    case "paxos.propose":
      return message.command.id.replace(/[^A-Za-z0-9_.:-]/g, "_");
    case "paxos.propose-reply":
      return message.commandId.replace(/[^A-Za-z0-9_.:-]/g, "_");
    default:
      return "";
  }
}

/** Encodes a message for the wire; throws RangeError when it would not pass decode (too large, or a bug). */
export function encodePaxosMessage(message: ViewPaxosMessage): Uint8Array {
  const { type, from, ...body } = message;
  return paxosWireRegistry.encode(type, from, correlationOf(message), body as never);
}

/** The decoded message as the cores take it, rebuilt from the envelope. */
export function paxosMessageFromEnvelope(envelope: MessageOf<PaxosWireSchemas>): ViewPaxosMessage {
  return { type: envelope.t, from: envelope.from, ...envelope.body } as ViewPaxosMessage;
}

/** Never throws. */
export function decodePaxosMessage(bytes: Uint8Array, allowedTypes?: readonly PaxosMessageType[]): DecodeResult<ViewPaxosMessage> {
  const result = paxosWireRegistry.decode(bytes, allowedTypes);
  return result.ok ? { ok: true, message: paxosMessageFromEnvelope(result.message) } : result;
}

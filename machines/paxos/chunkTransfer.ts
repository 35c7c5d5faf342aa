/**
 * Moving one encoded message that is too large for the network (a snapshot of
 * a big view, a promise reporting many votes) in bounded chunks. Pure: the
 * actor (actors/paxos/chunkedTransfer.ts) encodes the message, publishes the
 * chunks and requests this module returns, feeds it what arrives and its clock
 * readings, and decodes what it completes.
 *
 * The receiver pulls. The sender pushes the first `chunksInFlight` chunks of a
 * new transfer unasked and keeps the bytes for `senderIdleMs` after the last
 * request; the receiver asks for the next missing chunks as earlier ones
 * arrive, at most `chunksInFlight` outstanding, and asks again for the
 * outstanding ones when nothing arrived for `retryAfterMs`, at most
 * `maxRetries` times in a row and for at most `transferTimeoutMs` in all.
 *
 * Every chunk repeats the transfer's header (id, carried message type, slot,
 * total bytes, chunk size and count, checksum of the whole), so the receiver
 * assembles only a complete and consistent message: a chunk whose header
 * differs from its transfer's, whose index or length does not fit the header,
 * or a whole whose size or checksum does not match is rejected (and the
 * reason returned for the actor to count). Duplicates are ignored; order does
 * not matter. A sender has one transfer per recipient, and a receiver one per
 * sender: a new transfer from the same sender supersedes the one in progress,
 * unless it carries an older slot (a stale duplicate of an earlier one).
 */
/** Payload bytes per chunk: a chunk with its header stays far below NATS's 1 MiB default. */
export const transferChunkBytes = 256 * 1024;
/** Smaller chunks are refused: a hostile header could otherwise make a receiver allocate a huge chunk table. */
export const minTransferChunkBytes = 4 * 1024;
/** Chunks sent but not yet received, per transfer. */
export const transferChunksInFlight = 8;
/** Nothing arrived for this long: ask again for the outstanding chunks. */
export const transferRetryAfterMs = 100;
/** Consecutive fruitless retries before the receiver gives up (the learner then fetches again). */
export const maxTransferRetries = 8;
/** A transfer not complete after this long is abandoned. */
export const transferTimeoutMs = 30_000;
/** A sender forgets a transfer nobody asked about for this long. */
export const transferSenderIdleMs = 5_000;
/** The largest message moved in chunks (a snapshot record is at most 16 MiB on disk; promises may be larger). */
export const maxTransferBytes = 64 * 1024 * 1024;
/** Transfers a node receives at once (one per sender); a new sender beyond it replaces the stalest. */
export const maxIncomingTransfers = 8;
/** Transfers a node sends at once (one per recipient); the stalest is forgotten beyond it. */
export const maxOutgoingTransfers = 64;
/** Bytes a node holds for the transfers it sends (each recipient has its own copy); the stalest are forgotten beyond it. */
export const maxOutgoingTransferBytes = 256 * 1024 * 1024;
/** `<sender incarnation nonce>-<counter>`, both base 36: later transfers of one incarnation have higher counters. */
export const transferIdPattern = /^[a-z0-9]{1,13}-[a-z0-9]{1,11}$/;

export function transferId(nonce: number, counter: number): string {
  return `${nonce.toString(36)}-${counter.toString(36)}`;
}

/** True when `candidate` was started before `current` by the same sender incarnation. */
export function isEarlierTransfer(candidate: string, current: string): boolean {
  const [candidateNonce, candidateCounter] = candidate.split("-");
  const [currentNonce, currentCounter] = current.split("-");
  return candidateNonce === currentNonce && parseInt(candidateCounter!, 36) < parseInt(currentCounter!, 36);
}

export interface TransferLimits {
  readonly chunkBytes: number;
  readonly chunksInFlight: number;
  readonly retryAfterMs: number;
  readonly maxRetries: number;
  readonly transferTimeoutMs: number;
  readonly senderIdleMs: number;
  readonly maxTransferBytes: number;
  readonly maxIncoming: number;
  readonly maxOutgoing: number;
  readonly maxOutgoingBytes: number;
}

export const defaultTransferLimits: TransferLimits = {
  chunkBytes: transferChunkBytes,
  chunksInFlight: transferChunksInFlight,
  retryAfterMs: transferRetryAfterMs,
  maxRetries: maxTransferRetries,
  transferTimeoutMs,
  senderIdleMs: transferSenderIdleMs,
  maxTransferBytes,
  maxIncoming: maxIncomingTransfers,
  maxOutgoing: maxOutgoingTransfers,
  maxOutgoingBytes: maxOutgoingTransferBytes,
};

export interface TransferHeader {
  readonly transferId: string;
  /** The type of the message carried (the receiver decodes the whole as it). */
  readonly carries: string;
  /** The snapshot's `throughSlot`, or 0: a newer slot supersedes, an older one is stale. */
  readonly slot: number;
  readonly totalBytes: number;
  readonly chunkBytes: number;
  readonly chunkCount: number;
  /** Of the whole message; the checksum function is the caller's (crc32). */
  readonly checksum: number;
}

export interface TransferChunk extends TransferHeader {
  readonly from: string;
  readonly to: string;
  readonly index: number;
  readonly data: Uint8Array;
}

export interface ChunkRequest {
  readonly from: string;
  readonly to: string;
  readonly transferId: string;
  readonly indices: readonly number[];
}

export type Checksum = (bytes: Uint8Array) => number;

// ---- sender ----

interface OutgoingTransfer {
  readonly header: TransferHeader;
  readonly to: string;
  readonly bytes: Uint8Array;
  readonly lastAskedAtMs: number;
}

export interface SenderState {
  readonly nodeId: string;
  readonly limits: TransferLimits;
  /** recipient → its one transfer, oldest first. */
  readonly outgoing: ReadonlyMap<string, OutgoingTransfer>;
}

export interface SenderStep {
  readonly state: SenderState;
  readonly chunks: readonly TransferChunk[];
  /** Why a request was ignored, or null. */
  readonly ignored: string | null;
}

export function createSender(nodeId: string, limits: TransferLimits = defaultTransferLimits): SenderState {
  return { nodeId, limits, outgoing: new Map() };
}

function chunkOf(state: SenderState, transfer: OutgoingTransfer, index: number): TransferChunk {
  const { chunkBytes } = transfer.header;
  const start = index * chunkBytes;
  return { ...transfer.header, from: state.nodeId, to: transfer.to, index, data: transfer.bytes.subarray(start, Math.min(transfer.bytes.length, start + chunkBytes)) };
}

/** Starts moving `bytes` to `to`, replacing any transfer to it; returns the first chunks. Refuses what exceeds `maxTransferBytes`. */
export function startTransfer(
  state: SenderState,
  start: { readonly to: string; readonly transferId: string; readonly carries: string; readonly slot: number; readonly bytes: Uint8Array; readonly nowMs: number },
  checksum: Checksum,
): SenderStep {
  const { limits } = state;
  const largest = Math.min(limits.maxTransferBytes, limits.maxOutgoingBytes);
  if (start.bytes.length === 0 || start.bytes.length > largest) {
    return { state, chunks: [], ignored: `${start.bytes.length} bytes is outside (0, ${largest}]` };
  }
  const header: TransferHeader = {
    transferId: start.transferId,
    carries: start.carries,
    slot: start.slot,
    totalBytes: start.bytes.length,
    chunkBytes: limits.chunkBytes,
    chunkCount: Math.ceil(start.bytes.length / limits.chunkBytes),
    checksum: checksum(start.bytes),
  };
  const transfer: OutgoingTransfer = { header, to: start.to, bytes: start.bytes, lastAskedAtMs: start.nowMs };
  const outgoing = new Map(state.outgoing);
  outgoing.delete(start.to);
  let heldBytes = 0;
  for (const held of outgoing.values()) heldBytes += held.bytes.length;
  while (outgoing.size > 0 && (outgoing.size >= limits.maxOutgoing || heldBytes + start.bytes.length > limits.maxOutgoingBytes)) {
    const stalest = outgoing.keys().next().value!;
    heldBytes -= outgoing.get(stalest)!.bytes.length;
    outgoing.delete(stalest);
  }
  outgoing.set(start.to, transfer);
  const next = { ...state, outgoing };
  const chunks: TransferChunk[] = [];
  for (let index = 0; index < Math.min(header.chunkCount, limits.chunksInFlight); index++) chunks.push(chunkOf(next, transfer, index));
  return { state: next, chunks, ignored: null };
}

/** A receiver asks for chunks: send those that exist (at most `chunksInFlight`), and keep the transfer alive. */
export function serveChunkRequest(state: SenderState, request: ChunkRequest, nowMs: number): SenderStep {
  const transfer = state.outgoing.get(request.from);
  if (!transfer || transfer.header.transferId !== request.transferId) return { state, chunks: [], ignored: "unknown-transfer" };
  const refreshed: OutgoingTransfer = { ...transfer, lastAskedAtMs: nowMs };
  const outgoing = new Map(state.outgoing);
  outgoing.delete(request.from);
  outgoing.set(request.from, refreshed);
  const next = { ...state, outgoing };
  const chunks: TransferChunk[] = [];
  const seen = new Set<number>();
  for (const index of request.indices) {
    if (chunks.length >= state.limits.chunksInFlight) break;
    if (!Number.isSafeInteger(index) || index < 0 || index >= transfer.header.chunkCount || seen.has(index)) continue;
    seen.add(index);
    chunks.push(chunkOf(next, refreshed, index));
  }
  return { state: next, chunks, ignored: null };
}

/** Forgets transfers nobody asked about for `senderIdleMs`. */
export function expireOutgoing(state: SenderState, nowMs: number): SenderState {
  let outgoing: Map<string, OutgoingTransfer> | null = null;
  for (const [to, transfer] of state.outgoing) {
    if (nowMs - transfer.lastAskedAtMs < state.limits.senderIdleMs) continue;
    outgoing ??= new Map(state.outgoing);
    outgoing.delete(to);
  }
  return outgoing ? { ...state, outgoing } : state;
}

// ---- receiver ----

interface IncomingTransfer {
  readonly from: string;
  readonly header: TransferHeader;
  readonly chunks: readonly (Uint8Array | undefined)[];
  readonly received: number;
  /** Indices asked for (or pushed unasked) and not yet received. */
  readonly outstanding: readonly number[];
  /** Lowest index never asked for yet. */
  readonly nextToAsk: number;
  readonly startedAtMs: number;
  readonly lastProgressAtMs: number;
  readonly retries: number;
}

export interface ReceiverState {
  readonly nodeId: string;
  readonly limits: TransferLimits;
  /** Message types this node accepts in chunks. */
  readonly accepts: readonly string[];
  /** sender → its one transfer in progress. */
  readonly incoming: ReadonlyMap<string, IncomingTransfer>;
}

export interface CompletedTransfer {
  readonly from: string;
  readonly carries: string;
  readonly slot: number;
  readonly bytes: Uint8Array;
}

export type ChunkVerdict =
  /** Stored; the transfer moved on. */
  | "progress"
  /** Already had it, or a stale or finished transfer: harmless. */
  | "duplicate"
  | "stale"
  /** Hostile or corrupt: counted as rejected. */
  | "bad-header"
  | "mismatched-header"
  | "bad-index"
  | "bad-length"
  | "bad-checksum"
  | "not-accepted";

export interface ReceiverStep {
  readonly state: ReceiverState;
  readonly requests: readonly ChunkRequest[];
  readonly completed: CompletedTransfer | null;
  readonly verdict: ChunkVerdict | null;
  /** Transfers given up in this step (timed out, superseded, evicted), by sender, with the reason. */
  readonly abandoned: readonly { readonly from: string; readonly reason: "timeout" | "superseded" | "evicted" }[];
}

export function createReceiver(nodeId: string, accepts: readonly string[], limits: TransferLimits = defaultTransferLimits): ReceiverState {
  return { nodeId, limits, accepts: [...accepts], incoming: new Map() };
}

const rejectedVerdicts: ReadonlySet<ChunkVerdict> = new Set(["bad-header", "mismatched-header", "bad-index", "bad-length", "bad-checksum", "not-accepted"]);

/** True for verdicts that mean a hostile or corrupt chunk (to be counted as rejected). */
export function isRejectedVerdict(verdict: ChunkVerdict | null): boolean {
  return verdict !== null && rejectedVerdicts.has(verdict);
}

function headerProblem(receiver: ReceiverState, chunk: TransferChunk): ChunkVerdict | null {
  const { limits } = receiver;
  const wholeNumber = (value: number, min: number, max: number) => Number.isSafeInteger(value) && value >= min && value <= max;
  if (!receiver.accepts.includes(chunk.carries)) return "not-accepted";
  if (!transferIdPattern.test(chunk.transferId)) return "bad-header";
  if (!wholeNumber(chunk.totalBytes, 1, limits.maxTransferBytes) || !wholeNumber(chunk.chunkBytes, minTransferChunkBytes, Math.max(minTransferChunkBytes, limits.chunkBytes))) return "bad-header";
  if (!wholeNumber(chunk.slot, 0, Number.MAX_SAFE_INTEGER) || !wholeNumber(chunk.checksum, 0, 0xffffffff)) return "bad-header";
  if (chunk.chunkCount !== Math.ceil(chunk.totalBytes / chunk.chunkBytes)) return "bad-header";
  if (!wholeNumber(chunk.index, 0, chunk.chunkCount - 1)) return "bad-index";
  const expectedLength = chunk.index === chunk.chunkCount - 1 ? chunk.totalBytes - chunk.index * chunk.chunkBytes : chunk.chunkBytes;
  if (chunk.data.length !== expectedLength) return "bad-length";
  return null;
}

function sameHeader(a: TransferHeader, b: TransferHeader): boolean {
  return (
    a.transferId === b.transferId &&
    a.carries === b.carries &&
    a.slot === b.slot &&
    a.totalBytes === b.totalBytes &&
    a.chunkBytes === b.chunkBytes &&
    a.chunkCount === b.chunkCount &&
    a.checksum === b.checksum
  );
}

function headerOf(chunk: TransferChunk): TransferHeader {
  const { transferId, carries, slot, totalBytes, chunkBytes, chunkCount, checksum } = chunk;
  return { transferId, carries, slot, totalBytes, chunkBytes, chunkCount, checksum };
}

function withIncoming(state: ReceiverState, from: string, transfer: IncomingTransfer | null): ReceiverState {
  const incoming = new Map(state.incoming);
  incoming.delete(from);
  if (transfer) incoming.set(from, transfer);
  return { ...state, incoming };
}

/** Asks for more chunks when half the window has arrived; returns the updated transfer and the request, if any. */
function topUp(state: ReceiverState, transfer: IncomingTransfer, force: boolean): { transfer: IncomingTransfer; request: ChunkRequest | null } {
  const window = state.limits.chunksInFlight;
  const outstanding = [...transfer.outstanding];
  let nextToAsk = transfer.nextToAsk;
  if (!force && outstanding.length > Math.floor(window / 2)) return { transfer, request: null };
  const asked: number[] = force ? [...outstanding] : [];
  while (outstanding.length < window && nextToAsk < transfer.header.chunkCount) {
    if (transfer.chunks[nextToAsk] === undefined) {
      outstanding.push(nextToAsk);
      asked.push(nextToAsk);
    }
    nextToAsk++;
  }
  if (asked.length === 0) return { transfer, request: null };
  return {
    transfer: { ...transfer, outstanding, nextToAsk },
    request: { from: state.nodeId, to: transfer.from, transferId: transfer.header.transferId, indices: asked },
  };
}

/** One chunk from the network (already decoded by the wire codec; everything else is checked here). */
export function receiveChunk(state: ReceiverState, chunk: TransferChunk, nowMs: number, checksum: Checksum): ReceiverStep {
  const none = (verdict: ChunkVerdict, next: ReceiverState = state, abandoned: ReceiverStep["abandoned"] = []): ReceiverStep => ({
    state: next,
    requests: [],
    completed: null,
    verdict,
    abandoned,
  });
  if (chunk.to !== state.nodeId) return none("bad-header");
  const problem = headerProblem(state, chunk);
  if (problem) return none(problem);
  const abandoned: { from: string; reason: "timeout" | "superseded" | "evicted" }[] = [];
  let current = state.incoming.get(chunk.from);
  if (current && current.header.transferId !== chunk.transferId) {
    // A late chunk of an earlier transfer (or one carrying an older snapshot) never displaces a newer one.
    if (chunk.slot < current.header.slot || isEarlierTransfer(chunk.transferId, current.header.transferId)) return none("stale");
    abandoned.push({ from: chunk.from, reason: "superseded" });
    current = undefined;
  }
  let next = state;
  if (!current) {
    // A new transfer starts with its first chunk; a later one alone is a leftover of a forgotten transfer.
    if (chunk.index >= state.limits.chunksInFlight) return none("stale");
    if (!state.incoming.has(chunk.from) && state.incoming.size >= state.limits.maxIncoming) {
      const stalest = [...state.incoming.values()].reduce((a, b) => (b.lastProgressAtMs < a.lastProgressAtMs ? b : a));
      abandoned.push({ from: stalest.from, reason: "evicted" });
      next = withIncoming(next, stalest.from, null);
    }
    current = {
      from: chunk.from,
      header: headerOf(chunk),
      chunks: new Array<Uint8Array | undefined>(chunk.chunkCount).fill(undefined),
      received: 0,
      outstanding: Array.from({ length: Math.min(chunk.chunkCount, state.limits.chunksInFlight) }, (_, index) => index),
      nextToAsk: Math.min(chunk.chunkCount, state.limits.chunksInFlight),
      startedAtMs: nowMs,
      lastProgressAtMs: nowMs,
      retries: 0,
    };
  } else if (!sameHeader(current.header, headerOf(chunk))) {
    return none("mismatched-header", next, abandoned);
  }
  if (current.chunks[chunk.index] !== undefined) return none("duplicate", withIncoming(next, chunk.from, current), abandoned);
  const chunks = [...current.chunks];
  chunks[chunk.index] = chunk.data;
  const updated: IncomingTransfer = {
    ...current,
    chunks,
    received: current.received + 1,
    outstanding: current.outstanding.filter((index) => index !== chunk.index),
    lastProgressAtMs: nowMs,
    retries: 0,
  };
  if (updated.received === updated.header.chunkCount) {
    const bytes = new Uint8Array(updated.header.totalBytes);
    let offset = 0;
    for (const part of chunks) {
      bytes.set(part!, offset);
      offset += part!.length;
    }
    const finished = withIncoming(next, chunk.from, null);
    if (offset !== updated.header.totalBytes || checksum(bytes) !== updated.header.checksum) return none("bad-checksum", finished, abandoned);
    return { state: finished, requests: [], completed: { from: chunk.from, carries: chunk.carries, slot: chunk.slot, bytes }, verdict: "progress", abandoned };
  }
  const { transfer, request } = topUp(next, updated, false);
  return { state: withIncoming(next, chunk.from, transfer), requests: request ? [request] : [], completed: null, verdict: "progress", abandoned };
}

/** Re-asks for chunks that did not come, and gives up on transfers that stalled too often or ran too long. */
export function tickReceiver(state: ReceiverState, nowMs: number): ReceiverStep {
  const requests: ChunkRequest[] = [];
  const abandoned: { from: string; reason: "timeout" }[] = [];
  let next = state;
  for (const transfer of state.incoming.values()) {
    if (nowMs - transfer.lastProgressAtMs < state.limits.retryAfterMs) continue;
    if (transfer.retries >= state.limits.maxRetries || nowMs - transfer.startedAtMs >= state.limits.transferTimeoutMs) {
      abandoned.push({ from: transfer.from, reason: "timeout" });
      next = withIncoming(next, transfer.from, null);
      continue;
    }
    const retried = { ...transfer, retries: transfer.retries + 1, lastProgressAtMs: nowMs };
    const { transfer: updated, request } = topUp(next, retried, true);
    if (request) requests.push(request);
    next = withIncoming(next, transfer.from, updated);
  }
  return { state: next, requests, completed: null, verdict: null, abandoned };
}

/** Drops transfers of messages carrying a slot at or below `throughSlot` (already installed by other means). */
export function dropSupersededBy(state: ReceiverState, carries: string, throughSlot: number): ReceiverState {
  let next = state;
  for (const transfer of state.incoming.values()) {
    if (transfer.header.carries === carries && transfer.header.slot <= throughSlot) next = withIncoming(next, transfer.from, null);
  }
  return next;
}

import test from "ava";
import { crc32 } from "../../actors/recordFraming.ts";
import {
  createReceiver,
  createSender,
  defaultTransferLimits,
  expireOutgoing,
  receiveChunk,
  serveChunkRequest,
  startTransfer,
  tickReceiver,
  transferId,
  type ReceiverState,
  type SenderState,
  type TransferChunk,
  type TransferLimits,
} from "../../machines/paxos/chunkTransfer.ts";

const limits: TransferLimits = { ...defaultTransferLimits, chunkBytes: 4_096, chunksInFlight: 4, retryAfterMs: 100, maxRetries: 3 };

function payload(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let index = 0; index < length; index++) bytes[index] = (index * 31 + seed * 7) & 0xff;
  return bytes;
}

function start(sender: SenderState, bytes: Uint8Array, counter: number, slot = 10, nonce = 7) {
  return startTransfer(sender, { to: "h1", transferId: transferId(nonce, counter), carries: "paxos.snapshot", slot, bytes, nowMs: 0 }, crc32);
}

/** Runs sender and receiver against each other through `network`, which may drop, duplicate or reorder; returns the completed bytes. */
function exchange(bytes: Uint8Array, network: (chunks: TransferChunk[], round: number) => TransferChunk[]) {
  let sender = createSender("c1", limits);
  let receiver: ReceiverState = createReceiver("h1", ["paxos.snapshot"], limits);
  const first = start(sender, bytes, 1);
  sender = first.state;
  let inFlight = network([...first.chunks], 0);
  let nowMs = 0;
  for (let round = 1; round < 500; round++) {
    const requests = [];
    for (const chunk of inFlight) {
      const step = receiveChunk(receiver, chunk, nowMs, crc32);
      receiver = step.state;
      if (step.completed) return { bytes: step.completed.bytes, rounds: round };
      requests.push(...step.requests);
    }
    nowMs += 60;
    const tick = tickReceiver(receiver, nowMs);
    receiver = tick.state;
    requests.push(...tick.requests);
    const next: TransferChunk[] = [];
    for (const request of requests) {
      const served = serveChunkRequest(sender, request, nowMs);
      sender = served.state;
      next.push(...served.chunks);
    }
    inFlight = network(next, round);
    if (receiver.incoming.size === 0 && inFlight.length === 0) break;
  }
  return { bytes: undefined, rounds: -1 };
}

test("a message of many chunks arrives whole, in order or not, with losses and duplicates", (t) => {
  const bytes = payload(4_096 * 13 + 17, 1);
  t.deepEqual(exchange(bytes, (chunks) => chunks).bytes, bytes);
  t.deepEqual(exchange(bytes, (chunks) => [...chunks].reverse()).bytes, bytes);
  t.deepEqual(exchange(bytes, (chunks) => [...chunks, ...chunks]).bytes, bytes);
  // Every third chunk lost the first time it is sent; later re-sends get through.
  const sentBefore = new Set<number>();
  const lossy = exchange(bytes, (chunks) =>
    chunks.filter((chunk) => {
      const first = !sentBefore.has(chunk.index);
      sentBefore.add(chunk.index);
      return !(first && chunk.index % 3 === 0);
    }),
  );
  t.deepEqual(lossy.bytes, bytes);
});

test("a receiver gives up after its retries when the sender went silent", (t) => {
  const bytes = payload(4_096 * 10, 2);
  const result = exchange(bytes, (chunks, round) => (round === 0 ? chunks.slice(0, 2) : []));
  t.is(result.bytes, undefined);
});

test("hostile and inconsistent chunks are rejected, never assembled", (t) => {
  let sender = createSender("c1", limits);
  const bytes = payload(4_096 * 3, 3);
  const started = start(sender, bytes, 1);
  sender = started.state;
  const [c0, c1, c2] = started.chunks as [TransferChunk, TransferChunk, TransferChunk];
  let receiver = createReceiver("h1", ["paxos.snapshot"], limits);
  const verdict = (chunk: TransferChunk) => {
    const step = receiveChunk(receiver, chunk, 0, crc32);
    receiver = step.state;
    return step.verdict;
  };
  t.is(verdict({ ...c0, carries: "paxos.promise" }), "not-accepted");
  t.is(verdict({ ...c0, to: "h2" }), "bad-header");
  t.is(verdict({ ...c0, chunkCount: 5 }), "bad-header");
  t.is(verdict({ ...c0, totalBytes: limits.maxTransferBytes + 1 }), "bad-header");
  t.is(verdict({ ...c0, chunkBytes: 16 }), "bad-header");
  t.is(verdict({ ...c0, index: 3 }), "bad-index");
  t.is(verdict({ ...c0, data: c0.data.subarray(1) }), "bad-length");
  t.is(verdict(c0), "progress");
  t.is(verdict(c0), "duplicate");
  // Same transfer id, another size or checksum: a mixed chunk.
  t.is(verdict({ ...c1, checksum: (c1.checksum + 1) >>> 0 }), "mismatched-header");
  t.is(verdict({ ...c1, slot: 11 }), "mismatched-header");
  t.is(verdict(c1), "progress");
  // A corrupted payload that keeps the header: the checksum of the whole catches it.
  const corrupted = new Uint8Array(c2.data);
  corrupted[5] = corrupted[5]! ^ 1;
  const last = receiveChunk(receiver, { ...c2, data: corrupted }, 0, crc32);
  t.is(last.verdict, "bad-checksum");
  t.is(last.completed, null);
  t.is(last.state.incoming.size, 0);
});

test("a newer transfer from the same sender supersedes the one in progress; a late chunk of the old one does not", (t) => {
  let sender = createSender("c1", limits);
  const older = start(sender, payload(4_096 * 6, 4), 1, 10);
  sender = older.state;
  const newer = start(sender, payload(4_096 * 6, 5), 2, 12);
  sender = newer.state;
  t.is(sender.outgoing.size, 1);
  let receiver = createReceiver("h1", ["paxos.snapshot"], limits);
  receiver = receiveChunk(receiver, older.chunks[0]!, 0, crc32).state;
  receiver = receiveChunk(receiver, older.chunks[1]!, 0, crc32).state;
  const superseding = receiveChunk(receiver, newer.chunks[0]!, 1, crc32);
  t.deepEqual(superseding.abandoned, [{ from: "c1", reason: "superseded" }]);
  receiver = superseding.state;
  t.is(receiveChunk(receiver, older.chunks[2]!, 2, crc32).verdict, "stale");
  // An older snapshot slot never displaces a newer one, whatever its id.
  const olderSlot = start(createSender("c1", limits), payload(4_096 * 2, 6), 3, 9, 8);
  t.is(receiveChunk(receiver, olderSlot.chunks[0]!, 2, crc32).verdict, "stale");
  // The old transfer is gone at the sender: a request for it gets nothing.
  t.is(serveChunkRequest(sender, { from: "h1", to: "c1", transferId: transferId(7, 1), indices: [4] }, 3).chunks.length, 0);
});

test("a sender refuses what exceeds the limit, bounds its transfers and forgets idle ones", (t) => {
  let sender = createSender("c1", { ...limits, maxTransferBytes: 10_000, maxOutgoing: 2 });
  t.truthy(start(sender, payload(10_001, 1), 1).ignored);
  for (const to of ["a", "b", "c"]) sender = startTransfer(sender, { to, transferId: transferId(1, 1), carries: "paxos.snapshot", slot: 1, bytes: payload(100, 1), nowMs: 0 }, crc32).state;
  t.deepEqual([...sender.outgoing.keys()], ["b", "c"]);
  t.is(expireOutgoing(sender, limits.senderIdleMs - 1).outgoing.size, 2);
  // Held bytes are bounded too: a new transfer pushes out the stalest ones until it fits.
  let byBytes = createSender("c1", { ...limits, maxOutgoingBytes: 250 });
  for (const to of ["a", "b", "c"]) byBytes = startTransfer(byBytes, { to, transferId: transferId(1, 1), carries: "paxos.snapshot", slot: 1, bytes: payload(100, 1), nowMs: 0 }, crc32).state;
  t.deepEqual([...byBytes.outgoing.keys()], ["b", "c"]);
  t.truthy(startTransfer(byBytes, { to: "d", transferId: transferId(1, 2), carries: "paxos.snapshot", slot: 1, bytes: payload(251, 1), nowMs: 0 }, crc32).ignored);
  t.is(expireOutgoing(sender, limits.senderIdleMs).outgoing.size, 0);
});

test("a receiver holds at most maxIncoming transfers, evicting the stalest", (t) => {
  let receiver = createReceiver("h1", ["paxos.snapshot"], { ...limits, maxIncoming: 2 });
  const abandoned = [];
  for (const [index, from] of ["c1", "c2", "c3"].entries()) {
    const chunk = { ...start(createSender(from, limits), payload(4_096 * 3, index), 1).chunks[0]!, from };
    const step = receiveChunk(receiver, chunk, index, crc32);
    receiver = step.state;
    abandoned.push(...step.abandoned);
  }
  t.deepEqual([...receiver.incoming.keys()], ["c2", "c3"]);
  t.deepEqual(abandoned, [{ from: "c1", reason: "evicted" }]);
});

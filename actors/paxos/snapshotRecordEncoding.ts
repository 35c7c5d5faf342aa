/**
 * A controller's snapshot record, or a `paxos.snapshot` message to a peer, encoded from the bytes of
 * its parts: each host record, VM record and remembered command is packed and checked once, the
 * first time a snapshot holds it, and its bytes are reused by every later snapshot that holds the
 * same (immutable) record object. A whole snapshot object is packed once too: the one a controller
 * wrote at its compaction is the one it serves to peers that fall behind, as often as they ask.
 *
 * Why: a controller snapshots every `snapshotEverySlots` slots on its event loop, and the whole
 * view went through the schema check and msgpack each time: 25-45 ms for 10,000 VMs, a stall
 * of every commit waiting on that controller. Between two snapshots only the records that changed
 * are new objects (the view is persistent: an unchanged record keeps its identity), so a snapshot
 * costs their packing plus copying bytes.
 *
 * Serving a snapshot of 60,000 VMs (18 MB) through the registry took 300-480 ms of the serving
 * controller's event loop, twice (once to learn it is too large for one message, once for the
 * chunks): long enough for the leader to lose its majority of answers.
 *
 * The result is byte for byte what the registry's encode makes of the same message (msgpack
 * encodes a value the same wherever it sits; tested), so the log format and the wire do not change.
 */
import { pack } from "msgpackr";
import { envelopeVersion } from "../codec/envelope.ts";
import { concatBytes } from "../concatBytes.ts";
import type { Schema } from "../codec/schema.ts";
import { hostRecordSchema, maxRememberedSnapshotCommands, rememberedCommandSchema, vmRecordSchema } from "../view/viewSchemas.ts";
import { maxHosts, maxVms } from "../../machines/view/viewTypes.ts";
import type { ViewSnapshot } from "../../machines/view/viewSnapshot.ts";
import type { ViewRecordList } from "../../machines/view/viewRecords.ts";

/** A registry whose messages may carry a view snapshot in their body's `snapshot` field. */
export interface SnapshotCarrierRegistry {
  encode(type: never, from: string, cid: string, body: never): Uint8Array;
  readonly maxMessageBytes: number;
}

interface CachedArray {
  readonly schema: Schema<unknown>;
  readonly maxLength: number;
}

const cachedArrays: Readonly<Record<string, CachedArray>> & Readonly<Record<ViewRecordList, CachedArray>> = {
  hosts: { schema: hostRecordSchema, maxLength: maxHosts },
  vms: { schema: vmRecordSchema, maxLength: maxVms },
  recentCommands: { schema: rememberedCommandSchema, maxLength: maxRememberedSnapshotCommands },
};

/** Packed bytes of each record object seen in a snapshot; dropped with the object. */
const packedRecords = new WeakMap<object, Uint8Array>();

function packedRecord(record: unknown, field: string, index: number, schema: Schema<unknown>, label: string): Uint8Array {
  if (typeof record === "object" && record !== null) {
    const known = packedRecords.get(record);
    if (known !== undefined) return known;
  }
  const issue = schema.check(record);
  if (issue !== undefined) throw new RangeError(`encode ${label}: body.snapshot.${field}[${index}]: ${issue.message}`);
  const bytes = new Uint8Array(pack(record));
  if (typeof record === "object" && record !== null) packedRecords.set(record, bytes);
  return bytes;
}

function mapHeader(size: number): Uint8Array {
  // msgpackr writes every plain object's header as a map16, however few its keys.
  if (size > 0xffff) throw new RangeError(`a map of ${size} keys where a few were expected`);
  return Uint8Array.of(0xde, size >>> 8, size & 0xff);
}

function arrayHeader(length: number): Uint8Array {
  if (length < 16) return Uint8Array.of(0x90 | length);
  if (length < 0x10000) return Uint8Array.of(0xdc, length >>> 8, length & 0xff);
  return Uint8Array.of(0xdd, length >>> 24, (length >>> 16) & 0xff, (length >>> 8) & 0xff, length & 0xff);
}

/**
 * Packs `record` of `list` for later snapshots, unless it is packed already; false when it was. A record
 * that fails its schema is left alone: the snapshot that holds it reports it.
 */
export function prepackSnapshotRecord(list: ViewRecordList, record: object): boolean {
  if (packedRecords.has(record)) return false;
  if (cachedArrays[list].schema.check(record) !== undefined) return false;
  packedRecords.set(record, new Uint8Array(pack(record)));
  return true;
}

const snapshotRecordLists: readonly ViewRecordList[] = ["hosts", "vms", "recentCommands"];

/** Every host, VM and remembered-command record of a snapshot, with its list: for packing them a few at a time. */
export function* snapshotRecords(snapshot: ViewSnapshot): Generator<readonly [ViewRecordList, object]> {
  for (const list of snapshotRecordLists) {
    const records: readonly unknown[] = snapshot[list];
    for (const record of records) if (typeof record === "object" && record !== null) yield [list, record];
  }
}

/** How many of the snapshot's records are not packed yet, counted up to `limit` (it stops there). */
export function unpackedSnapshotRecords(snapshot: ViewSnapshot, limit: number): number {
  let unpacked = 0;
  for (const list of snapshotRecordLists) {
    const records: readonly unknown[] = snapshot[list];
    for (let index = 0; index < records.length && unpacked < limit; index++) {
      const record = records[index];
      if (typeof record === "object" && record !== null && !packedRecords.has(record)) unpacked++;
    }
  }
  return unpacked;
}

/** The packed bytes of each snapshot object encoded once: a snapshot served to peers again and again, or written and then served, is packed once. */
const packedSnapshots = new WeakMap<object, Uint8Array>();

/** Records looked up per slice of `packingSnapshot`: a few hundred µs each, where a whole 60,000-VM snapshot took 20-60 ms at once. */
export const snapshotRecordsPerPackingSlice = 5_000;

/** The msgpack bytes of a view snapshot, its host, VM and remembered-command records packed once across snapshots. */
function packedSnapshot(snapshot: ViewSnapshot, label: string): Uint8Array {
  const steps = packingSnapshot(snapshot, label);
  for (;;) {
    const next = steps.next();
    if (next.done === true) return next.value;
  }
}

/** `packedSnapshot` a slice at a time: it yields after every `snapshotRecordsPerPackingSlice` records. */
function* packingSnapshot(snapshot: ViewSnapshot, label: string): Generator<void, Uint8Array, void> {
  const known = packedSnapshots.get(snapshot);
  if (known !== undefined) return known;
  const parts: Uint8Array[] = [];
  // Every own key, as msgpackr packs an object (an undefined value too).
  const keys = Object.keys(snapshot);
  parts.push(mapHeader(keys.length));
  let looked = 0;
  for (const key of keys) {
    const value = (snapshot as unknown as Record<string, unknown>)[key];
    parts.push(pack(key));
    const cached = cachedArrays[key];
    if (cached === undefined) {
      parts.push(pack(value));
      continue;
    }
    if (!Array.isArray(value)) throw new RangeError(`encode ${label}: body.snapshot.${key}: expected an array`);
    const records: readonly unknown[] = value;
    if (records.length > cached.maxLength) throw new RangeError(`encode ${label}: body.snapshot.${key}: ${records.length} records exceed ${cached.maxLength}`);
    parts.push(arrayHeader(records.length));
    for (let index = 0; index < records.length; index++) {
      parts.push(packedRecord(records[index], key, index, cached.schema, label));
      if (++looked % snapshotRecordsPerPackingSlice === 0) yield;
    }
  }
  const bytes = concatBytes(parts);
  packedSnapshots.set(snapshot, bytes);
  return bytes;
}

/**
 * Packs a snapshot as a whole a slice per call to `next()`, so that writing or serving it later is a copy of
 * its bytes (the log rewrite of a compaction that waited for the prepacker). A record the schema refuses
 * ends it early: the write itself then refuses the snapshot as it would have.
 */
export function* prepackingSnapshot(snapshot: ViewSnapshot): Generator<void, void, void> {
  try {
    yield* packingSnapshot(snapshot, "record.snapshot");
  } catch (error) {
    if (!(error instanceof RangeError)) throw error;
  }
}

/** Whether the snapshot object is packed as a whole (for tests). */
export function isSnapshotPacked(snapshot: ViewSnapshot): boolean {
  return packedSnapshots.has(snapshot);
}

/**
 * `registry.encode(type, from, cid, body)` for a body with a view snapshot in its `snapshot` field, the
 * snapshot packed once per snapshot object and its records once across snapshots. Everything else is
 * checked by the registry itself on the body with the snapshot's three lists emptied; the lists' lengths
 * and each record new to the cache are checked here, so a bad snapshot throws as the registry's encode
 * would. The bytes are the registry's, byte for byte (tested).
 */
export function encodeWithSnapshot<Body extends { readonly snapshot: ViewSnapshot }>(registry: SnapshotCarrierRegistry, type: string, from: string, cid: string, body: Body): Uint8Array {
  const skeleton = { ...body, snapshot: { ...body.snapshot, hosts: [], vms: [], recentCommands: [] } };
  // Checks the envelope, the other fields of the body and every other field of the snapshot; its bytes are not used.
  registry.encode(type as never, from, cid, skeleton as never);
  const parts: Uint8Array[] = [];
  const plain = (value: unknown) => parts.push(pack(value));
  parts.push(mapHeader(5));
  plain("v");
  plain(envelopeVersion);
  plain("t");
  plain(type);
  plain("from");
  plain(from);
  plain("cid");
  plain(cid);
  plain("body");
  const keys = Object.keys(body);
  parts.push(mapHeader(keys.length));
  for (const key of keys) {
    plain(key);
    const value = (body as Record<string, unknown>)[key];
    if (key === "snapshot") parts.push(packedSnapshot(value as ViewSnapshot, type));
    else plain(value);
  }
  let length = 0;
  for (const part of parts) length += part.length;
  if (length > registry.maxMessageBytes) throw new RangeError(`encode ${type}: ${length} bytes exceeds maxMessageBytes ${registry.maxMessageBytes}`);
  return concatBytes(parts);
}

/** `registry.encode("record.snapshot", nodeId, "", { throughSlot, snapshot })`, through `encodeWithSnapshot`. */
export function encodeSnapshotRecord(registry: SnapshotCarrierRegistry, nodeId: string, throughSlot: number, snapshot: ViewSnapshot): Uint8Array {
  return encodeWithSnapshot(registry, "record.snapshot", nodeId, "", { throughSlot, snapshot });
}

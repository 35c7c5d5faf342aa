/**
 * A controller's snapshot record encoded from the bytes of its parts: each host record, VM record
 * and remembered command is packed and checked once, the first time a snapshot holds it, and its
 * bytes are reused by every later snapshot that holds the same (immutable) record object.
 *
 * Why: a controller snapshots every `snapshotEverySlots` slots on its event loop, and the whole
 * view went through the schema check and msgpack each time: 25-45 ms for 10,000 VMs, a stall
 * of every commit waiting on that controller. Between two snapshots only the records that changed
 * are new objects (the view is persistent: an unchanged record keeps its identity), so a snapshot
 * costs their packing plus copying bytes.
 *
 * The result is byte for byte what `paxosRecordRegistry.encode` makes of the same record (msgpack
 * encodes a value the same wherever it sits; tested), so the log format does not change and
 * recovery reads it as before.
 */
import { pack } from "msgpackr";
import { envelopeVersion } from "../codec/envelope.ts";
import { concatBytes } from "../concatBytes.ts";
import type { Schema } from "../codec/schema.ts";
import { maxRecordBytes } from "../recordFraming.ts";
import { hostRecordSchema, maxRememberedSnapshotCommands, rememberedCommandSchema, vmRecordSchema } from "../view/viewSchemas.ts";
import { maxHosts, maxVms } from "../../machines/view/viewTypes.ts";
import type { ViewSnapshot } from "../../machines/view/viewSnapshot.ts";

type RecordRegistry = { encode(type: "record.snapshot", from: string, cid: string, body: { throughSlot: number; snapshot: ViewSnapshot }): Uint8Array };

interface CachedArray {
  readonly schema: Schema<unknown>;
  readonly maxLength: number;
}

const cachedArrays: Readonly<Record<string, CachedArray>> = {
  hosts: { schema: hostRecordSchema, maxLength: maxHosts },
  vms: { schema: vmRecordSchema, maxLength: maxVms },
  recentCommands: { schema: rememberedCommandSchema, maxLength: maxRememberedSnapshotCommands },
};

/** Packed bytes of each record object seen in a snapshot; dropped with the object. */
const packedRecords = new WeakMap<object, Uint8Array>();

function packedRecord(record: unknown, field: string, index: number, schema: Schema<unknown>): Uint8Array {
  if (typeof record === "object" && record !== null) {
    const known = packedRecords.get(record);
    if (known !== undefined) return known;
  }
  const issue = schema.check(record);
  if (issue !== undefined) throw new RangeError(`encode record.snapshot: body.snapshot.${field}[${index}]: ${issue.message}`);
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
 * `registry.encode("record.snapshot", nodeId, "", { throughSlot, snapshot })`, with the host, VM
 * and remembered-command records packed once across snapshots. Everything else is checked by the
 * registry itself on the snapshot without those three lists; each list's length and each record
 * new to the cache is checked here, so a bad snapshot throws as the registry's encode would.
 */
export function encodeSnapshotRecord(registry: RecordRegistry, nodeId: string, throughSlot: number, snapshot: ViewSnapshot): Uint8Array {
  const skeleton: ViewSnapshot = { ...snapshot, hosts: [], vms: [], recentCommands: [] };
  // Checks the envelope, the slot and every other field of the snapshot; its bytes are not used.
  registry.encode("record.snapshot", nodeId, "", { throughSlot, snapshot: skeleton });
  const parts: Uint8Array[] = [];
  const plain = (value: unknown) => parts.push(pack(value));
  parts.push(mapHeader(5));
  plain("v");
  plain(envelopeVersion);
  plain("t");
  plain("record.snapshot");
  plain("from");
  plain(nodeId);
  plain("cid");
  plain("");
  plain("body");
  parts.push(mapHeader(2));
  plain("throughSlot");
  plain(throughSlot);
  plain("snapshot");
  // Every own key, as msgpackr packs an object (an undefined value too).
  const keys = Object.keys(snapshot);
  parts.push(mapHeader(keys.length));
  for (const key of keys) {
    const value = (snapshot as unknown as Record<string, unknown>)[key];
    plain(key);
    const cached = cachedArrays[key];
    if (cached === undefined) {
      plain(value);
      continue;
    }
    if (!Array.isArray(value)) throw new RangeError(`encode record.snapshot: body.snapshot.${key}: expected an array`);
    const records: readonly unknown[] = value;
    if (records.length > cached.maxLength) throw new RangeError(`encode record.snapshot: body.snapshot.${key}: ${records.length} records exceed ${cached.maxLength}`);
    parts.push(arrayHeader(records.length));
    for (let index = 0; index < records.length; index++) parts.push(packedRecord(records[index], key, index, cached.schema));
  }
  let length = 0;
  for (const part of parts) length += part.length;
  if (length > maxRecordBytes) throw new RangeError(`encode record.snapshot: ${length} bytes exceeds maxMessageBytes ${maxRecordBytes}`);
  return concatBytes(parts);
}

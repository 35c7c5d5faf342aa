/**
 * A controller's durable records (machines/paxos/records.ts) on disk: each
 * record is one codec envelope `{ v, t: "record.<kind>", from: <nodeId>, cid:
 * "", body }` inside the storage framing (length + crc32), so a record read
 * back is validated exactly like a message from the network.
 *
 * The storage layer already cut any torn or corrupt tail. A record that still
 * fails validation is not skipped: forgetting a promise or a vote could break
 * Paxos, so recovery refuses to start and says which record is wrong.
 */
import { arr, int, obj, optional, str, type Infer } from "../codec/schema.ts";
import { maxAcceptors } from "../../machines/paxos/config.ts";
import { createMessageRegistry } from "../codec/messageCodec.ts";
import { maxRecordBytes } from "../recordFraming.ts";
import type { DurableRecord, DurableRecordKind } from "../../machines/paxos/records.ts";
import type { ViewCommand } from "../../machines/view/viewCommands.ts";
import { paxosWireSchemas } from "./paxosMessages.ts";
import { viewSnapshotSchema } from "../view/viewSchemas.ts";
import type { ViewSnapshot } from "../../machines/view/viewSnapshot.ts";
import { encodeSnapshotRecord } from "./snapshotRecordEncoding.ts";

export type ViewDurableRecord = DurableRecord<ViewCommand>;

/** The name of the controller's record log in its Storage. */
export const paxosLogName = "paxos";

const slotSchema = int({ min: 0, max: Number.MAX_SAFE_INTEGER });
const controllerIdSchema = str({ minLength: 1, maxLength: 64, pattern: /^[A-Za-z0-9_-]+$/ });
const ballotSchema = paxosWireSchemas["paxos.prepare"].shape.ballot;
const slotValueSchema = paxosWireSchemas["paxos.accept"].shape.value;

const recordSchemas = {
  "record.init": obj({ fencedBy: optional(arr(controllerIdSchema, { maxLength: maxAcceptors })), acceptors: optional(arr(controllerIdSchema, { minLength: 1, maxLength: maxAcceptors })) }),
  "record.promise": obj({ ballot: ballotSchema }),
  "record.accept": obj({ slot: slotSchema, ballot: ballotSchema, value: slotValueSchema }),
  "record.inherit": obj({ slot: slotSchema, ballot: ballotSchema, value: slotValueSchema }),
  "record.floor": obj({ slot: slotSchema }),
  "record.peer-evidence": obj({
    peer: controllerIdSchema,
    promised: ballotSchema,
    votedSlot: int({ min: -1, max: Number.MAX_SAFE_INTEGER }),
    votedBallot: ballotSchema,
    roundUsed: int({ min: 0, max: Number.MAX_SAFE_INTEGER }),
  }),
  "record.round": obj({ round: int({ min: 1, max: Number.MAX_SAFE_INTEGER }) }),
  "record.snapshot": obj({ throughSlot: slotSchema, snapshot: viewSnapshotSchema }),
} satisfies Record<`record.${DurableRecordKind}`, unknown>;

export type RecordBody<K extends DurableRecordKind> = Infer<(typeof recordSchemas)[`record.${K}`]>;

/** A record is at most one storage frame. */
export const paxosRecordRegistry = createMessageRegistry(recordSchemas, { maxMessageBytes: maxRecordBytes });

export function encodeRecord(nodeId: string, record: ViewDurableRecord): Uint8Array {
  if (record.kind === "snapshot") return encodeSnapshotRecord(paxosRecordRegistry, nodeId, record.throughSlot, record.snapshot as ViewSnapshot);
  const { kind, ...body } = record;
  return paxosRecordRegistry.encode(`record.${kind}`, nodeId, "", body as never);
}

export type RecordsRead = { readonly ok: true; readonly records: ViewDurableRecord[] } | { readonly ok: false; readonly reason: "unreadable" | "foreign"; readonly error: string };

export type WrittenRecordsRead =
  | { readonly ok: true; readonly records: ViewDurableRecord[]; /** Per record, the controller that wrote it. */ readonly writers: string[] }
  | { readonly ok: false; readonly reason: "unreadable"; readonly error: string };

/** Decodes every record of the log with the id of the controller that wrote it, or says which one is unreadable. Never throws. */
export function decodeRecordsWithWriters(raw: readonly Uint8Array[]): WrittenRecordsRead {
  const records: ViewDurableRecord[] = [];
  const writers: string[] = [];
  for (let index = 0; index < raw.length; index++) {
    const result = paxosRecordRegistry.decode(raw[index]!);
    if (!result.ok) return { ok: false, reason: "unreadable", error: `record ${index} of ${raw.length} is unreadable (${result.reason}: ${result.detail})` };
    const kind = result.message.t.slice("record.".length) as DurableRecordKind;
    records.push({ kind, ...result.message.body } as ViewDurableRecord);
    writers.push(result.message.from);
  }
  return { ok: true, records, writers };
}

/**
 * Decodes every record of the log, or says which one is unreadable or was written by another controller
 * than `writerId`. Never throws. A controller's promises and votes are its own: the same acceptor state
 * under two controller ids would count twice toward a majority (docs/paxos.md, "Whose data directory").
 */
export function decodeRecords(raw: readonly Uint8Array[], writerId: string): RecordsRead {
  const read = decodeRecordsWithWriters(raw);
  if (!read.ok) return read;
  const foreign = read.writers.findIndex((writer) => writer !== writerId);
  if (foreign >= 0) {
    return { ok: false, reason: "foreign", error: `record ${foreign} of ${raw.length} was written by controller ${read.writers[foreign]}, not by ${writerId}: this is another controller's log` };
  }
  return { ok: true, records: read.records };
}

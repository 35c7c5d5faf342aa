/**
 * A Paxos message encoded up to the size moved in chunks (`paxosLargeWireRegistry`), with its cid
 * empty as chunked transfers carry it. A `paxos.snapshot` goes through the snapshot encoder, which
 * packs a snapshot object once however often it is served (snapshotRecordEncoding.ts); the bytes
 * are the registry's either way.
 */
import type { ViewSnapshot } from "../../machines/view/viewSnapshot.ts";
import { paxosLargeWireRegistry, type ViewPaxosMessage } from "./paxosMessages.ts";
import { encodeWithSnapshot } from "./snapshotRecordEncoding.ts";

/** Throws RangeError when the message is invalid or larger than `maxTransferBytes`. */
export function encodeLargePaxosMessage(message: ViewPaxosMessage): Uint8Array {
  const { type, from, ...body } = message;
  if (message.type === "paxos.snapshot") return encodeWithSnapshot(paxosLargeWireRegistry, type, from, "", body as typeof body & { snapshot: ViewSnapshot });
  return paxosLargeWireRegistry.encode(type, from, "", body as never);
}

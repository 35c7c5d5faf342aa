/**
 * The committed view as the leading controller mirrors it into the KV bucket
 * (`haring-view`, key `<cluster>`; actors/view/viewKvLayout.ts): read whole,
 * then checked field by field like a Paxos snapshot (viewFromSnapshot), since
 * what is in a bucket anyone may write is hostile input too. The mirror
 * follows the commits within a moment (docs/paxos.md, "The KV mirror").
 */
import { readMirroredValue, type MirrorReadResult } from "../../actors/view/viewKvLayout.ts";
import { defaultViewBucket } from "../../actors/view/viewKvMirror.ts";
import type { Stream } from "../../actors/ports/stream.ts";
import { viewFromSnapshot, viewSnapshotVersion } from "../../machines/view/viewSnapshot.ts";
import type { View } from "../../machines/view/viewTypes.ts";

export interface MirroredView {
  readonly view: View;
  readonly slot: number;
  readonly writer: string;
}

export type MirroredViewResult = { readonly ok: true; readonly mirrored: MirroredView | undefined } | { readonly ok: false; readonly error: string };

const decoder = new TextDecoder("utf-8", { fatal: true });

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The mirror's value (`{"slot","epoch","writer","view"}`, maps written as objects) as a view. Never throws. */
export function parseMirroredValue(bytes: Uint8Array): MirroredViewResult {
  let parsed: unknown;
  try {
    parsed = JSON.parse(decoder.decode(bytes));
  } catch (error) {
    return { ok: false, error: `the mirrored view is not JSON: ${error instanceof Error ? error.message : String(error)}` };
  }
  if (!isRecord(parsed) || !isRecord(parsed.view)) return { ok: false, error: "the mirrored value holds no view" };
  const { slot, writer, view } = parsed;
  if (!Number.isSafeInteger(slot) || typeof writer !== "string") return { ok: false, error: "the mirrored value has no slot or writer" };
  if (!isRecord(view.hosts) || !isRecord(view.vms)) return { ok: false, error: "the mirrored view has no hosts or vms" };
  // The mirror is the snapshot without its version, with hosts and VMs keyed by id (canonicalViewJson).
  const snapshot = { ...view, version: viewSnapshotVersion, hosts: Object.values(view.hosts), vms: Object.values(view.vms) };
  const checked = viewFromSnapshot(snapshot);
  if (!checked.ok) return { ok: false, error: `the mirrored view is not valid: ${checked.error}` };
  return { ok: true, mirrored: { view: checked.state, slot: slot as number, writer: writer.slice(0, 64) } };
}

/** `mirrored` is undefined when nothing is mirrored yet (or the controllers run with `"kvMirror": false`). */
export function readMirroredView(stream: Pick<Stream, "kvGet">, clusterId: string, bucket = defaultViewBucket): Promise<MirroredViewResult> {
  return new Promise((resolve) => {
    readMirroredValue(stream, bucket, clusterId, (result: MirrorReadResult) => {
      if (!result.ok) resolve({ ok: false, error: `cannot read the view from KV bucket ${bucket}: ${result.error}` });
      else if (result.value === undefined) resolve({ ok: true, mirrored: undefined });
      else resolve(parseMirroredValue(result.value));
    });
  });
}

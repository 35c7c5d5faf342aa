/**
 * How the mirrored view lies in the KV bucket (docs/paxos.md, "The KV
 * mirror"), and how to read it back whole.
 *
 * The mirrored value is `{"slot":S,"epoch":E,"writer":"<id>","view":<canonicalViewJson>}`.
 * When it fits one KV value it is stored as it is under key `<cluster>`.
 * When it does not, its bytes are cut into parts stored under
 * `<cluster>.<writer>.part.<N>` (N = 0, 1, …), and key `<cluster>` holds a
 * manifest, written last:
 * `{"slot":S,"epoch":E,"writer":"<id>","parts":P,"bytes":B,"crc32":C,"partKeys":[…]}`.
 * Concatenating the parts in order gives exactly the mirrored value (B bytes,
 * crc32 C). Parts are per writer, so two controllers never overwrite each
 * other's; a writer overwrites its own parts on its next write, which a
 * reader notices (wrong size or checksum) and answers by reading the
 * manifest again.
 */
import { concatBytes } from "../concatBytes.ts";
import { crc32 } from "../recordFraming.ts";
import type { KvResult, Stream } from "../ports/stream.ts";

/** Attempts a reader makes when parts change under it (a writer mid-write) before giving up. */
export const maxMirrorReadAttempts = 5;

export interface MirrorManifest {
  readonly slot: number;
  readonly epoch: number;
  readonly writer: string;
  readonly parts: number;
  readonly bytes: number;
  readonly crc32: number;
  readonly partKeys: readonly string[];
}

const storedSlotPattern = /^\{"slot":(\d{1,16}),/;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function mirrorPartKey(clusterId: string, writer: string, index: number): string {
  return `${clusterId}.${writer}.part.${index}`;
}

/** The slot stored in a mirror value or manifest, or -1 when the value is not one of ours. */
export function storedMirrorSlot(value: Uint8Array): number {
  const match = storedSlotPattern.exec(decoder.decode(value.subarray(0, 40)));
  return match ? Number(match[1]) : -1;
}

export function manifestFor(value: Uint8Array, slot: number, epoch: number, writer: string, partKeys: readonly string[]): Uint8Array {
  const manifest: MirrorManifest = { slot, epoch, writer, parts: partKeys.length, bytes: value.length, crc32: crc32(value), partKeys };
  return encoder.encode(JSON.stringify(manifest));
}

/** The manifest in a value under `<cluster>`, or null when the value is the whole mirrored view (or not ours). */
export function parseManifest(value: Uint8Array): MirrorManifest | null {
  if (storedMirrorSlot(value) < 0) return null;
  const text = decoder.decode(value);
  if (text.includes(`"view":`)) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return null;
  }
  const manifest = parsed as Partial<MirrorManifest>;
  const whole = (n: unknown): n is number => typeof n === "number" && Number.isSafeInteger(n) && n >= 0;
  if (!whole(manifest.slot) || !whole(manifest.epoch) || !whole(manifest.parts) || !whole(manifest.bytes) || !whole(manifest.crc32)) return null;
  if (typeof manifest.writer !== "string" || !Array.isArray(manifest.partKeys) || manifest.partKeys.length !== manifest.parts) return null;
  if (!manifest.partKeys.every((key) => typeof key === "string")) return null;
  return manifest as MirrorManifest;
}

export type MirrorReadResult = { readonly ok: true; readonly value: Uint8Array | undefined; readonly slot: number } | { readonly ok: false; readonly error: string };

/**
 * Reads the mirrored value of `clusterId` whole (assembling parts by the manifest); `value` is
 * undefined when nothing is mirrored yet. Parts that do not add up to the manifest are read again
 * from a fresh manifest, at most `maxMirrorReadAttempts` times.
 */
export function readMirroredValue(stream: Pick<Stream, "kvGet">, bucket: string, clusterId: string, done: (result: MirrorReadResult) => void): void {
  let attempt = 0;
  const readManifest = (): void => {
    attempt++;
    stream.kvGet(bucket, clusterId, (outcome: KvResult<{ readonly value: Uint8Array } | undefined>) => {
      if (!outcome.ok) return done({ ok: false, error: outcome.error });
      if (!outcome.value) return done({ ok: true, value: undefined, slot: -1 });
      const manifest = parseManifest(outcome.value.value);
      if (!manifest) {
        const slot = storedMirrorSlot(outcome.value.value);
        return slot < 0 ? done({ ok: false, error: `key ${clusterId} holds neither a mirrored view nor a manifest` }) : done({ ok: true, value: outcome.value.value, slot });
      }
      readParts(manifest);
    });
  };
  const readParts = (manifest: MirrorManifest): void => {
    const parts: Uint8Array[] = [];
    const next = (): void => {
      if (parts.length === manifest.parts) return assemble(manifest, parts);
      stream.kvGet(bucket, manifest.partKeys[parts.length]!, (outcome) => {
        if (!outcome.ok) return done({ ok: false, error: outcome.error });
        if (!outcome.value) return retry(`part ${manifest.partKeys[parts.length]} is missing`);
        parts.push(outcome.value.value);
        next();
      });
    };
    next();
  };
  const assemble = (manifest: MirrorManifest, parts: readonly Uint8Array[]): void => {
    const total = parts.reduce((sum, part) => sum + part.length, 0);
    if (total !== manifest.bytes) return retry(`parts hold ${total} bytes, the manifest says ${manifest.bytes}`);
    const value = concatBytes(parts);
    if (crc32(value) !== manifest.crc32 || storedMirrorSlot(value) !== manifest.slot) return retry("the parts changed while being read");
    done({ ok: true, value, slot: manifest.slot });
  };
  const retry = (why: string): void => {
    if (attempt >= maxMirrorReadAttempts) done({ ok: false, error: `${why} (after ${attempt} attempts)` });
    else readManifest();
  };
  readManifest();
}

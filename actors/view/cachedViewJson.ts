/**
 * canonicalViewJson (machines/view/viewSnapshot.ts), byte for byte, for the
 * leader that mirrors its view into the KV bucket again and again: each host,
 * VM and remembered-command record is rendered once and its JSON kept by the
 * record's identity. A view's records are immutable and a change replaces a
 * record with a new object, so between two mirror writes only the records
 * that changed are rendered again; the rest is sorting keys. At 20,000 VMs
 * this takes the leader's event loop for a fraction of the time a full
 * rendering took (docs/benchmarks-paxos.md). A warm build allocates little
 * beyond its sorted keys: the kept pieces are handed out as they are (the
 * mirror encodes them straight into bytes), since every object that lives
 * across a few of the leader's turns is copied by the garbage collector in
 * the middle of commits.
 *
 * Only the mirror uses it: the simulator's agreement checks compare learners
 * with the uncached canonicalViewJson, which would still see a record changed
 * in place (a bug this cache would hide).
 */
import { canonicalJson } from "../../machines/view/canonicalJson.ts";
import type { View } from "../../machines/view/viewTypes.ts";

/**
 * A record's JSON as it follows a comma in its list or map: `,<json>`, or `,"<key>":<json>` in a map. The
 * first piece of a list drops the comma (a substring, the one piece a build allocates anew); every other
 * piece is the kept string itself, so a warm build of 60,000 VMs allocates no text, only its sorted keys.
 * A map record remembers the key it was rendered under and is rendered again under another.
 */
const recordPieces = new WeakMap<object, { readonly key: string | null; readonly piece: string }>();

function recordPiece(key: string | null, record: unknown): string {
  if (record === null || typeof record !== "object" || Array.isArray(record)) return renderedPiece(key, record);
  const kept = recordPieces.get(record);
  if (kept !== undefined && kept.key === key) return kept.piece;
  const piece = renderedPiece(key, record);
  recordPieces.set(record, { key, piece });
  return piece;
}

function renderedPiece(key: string | null, record: unknown): string {
  return `,${key === null ? "" : `${JSON.stringify(key)}:`}${canonicalJson(record)}`;
}

/** Whether the record's JSON is rendered and kept (for tests). */
export function isRecordJsonRendered(record: object): boolean {
  return recordPieces.has(record);
}

function compareKeys(a: readonly [string, unknown], b: readonly [string, unknown]): number {
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
}

/** A map of records as canonicalJson writes a Map (keys sorted, undefined values left out), one entry a piece. */
function* recordMapSegments(records: ReadonlyMap<string, unknown>): Generator<string> {
  // Keys only, sorted by UTF-16 code units as canonicalJson sorts them: no [key, record] pair per entry.
  const keys: string[] = [];
  records.forEach((_record, key) => keys.push(key));
  keys.sort();
  let first = true;
  for (const key of keys) {
    const record = records.get(key);
    if (record === undefined) continue;
    const piece = recordPiece(key, record);
    yield first ? piece.slice(1) : piece;
    first = false;
  }
}

/** The records of consecutive chunks as one list, one record a piece (the chunks are not joined into a new array). */
function* listSegments(chunks: ReadonlyArray<readonly unknown[]>): Generator<string> {
  let first = true;
  for (const chunk of chunks) {
    for (const record of chunk) {
      const piece = recordPiece(null, record);
      yield first ? piece.slice(1) : piece;
      first = false;
    }
  }
}

/**
 * `cachedCanonicalViewJson(view)` in pieces, each host, VM and remembered command one piece (its JSON
 * rendered when reached), so a caller can build a large view's JSON a slice per turn: the KV mirror of
 * a leader, whose followers stop hearing it while it renders 60,000 VMs in one go.
 */
export function* viewJsonSegments(view: View): Generator<string> {
  // The fields viewToSnapshot gives besides its version and lists, without copying the lists.
  const small = { epoch: view.epoch, controllerIds: view.controllerIds, leader: view.leader, ...(view.hostFailuresToTolerate === null ? {} : { hostFailuresToTolerate: view.hostFailuresToTolerate }) };
  const fields: Array<[string, () => Iterable<string>]> = [];
  for (const [key, value] of Object.entries(small)) if (value !== undefined) fields.push([key, () => [canonicalJson(value)]]);
  fields.push(["hosts", () => recordMapSegments(view.hosts)]);
  fields.push(["vms", () => recordMapSegments(view.vms)]);
  fields.push(["recentCommands", () => listSegments(view.recentCommandChunks)]);
  fields.sort(compareKeys);
  for (let index = 0; index < fields.length; index++) {
    const [key, segments] = fields[index]!;
    const open = key === "hosts" || key === "vms" ? "{" : key === "recentCommands" ? "[" : "";
    yield `${index === 0 ? "{" : ","}${JSON.stringify(key)}:${open}`;
    yield* segments();
    if (open !== "") yield open === "{" ? "}" : "]";
  }
  yield "}";
}

export function cachedCanonicalViewJson(view: View): string {
  let json = "";
  for (const segment of viewJsonSegments(view)) json += segment;
  return json;
}

/**
 * canonicalViewJson (machines/view/viewSnapshot.ts), byte for byte, for the
 * leader that mirrors its view into the KV bucket again and again: each host,
 * VM and remembered-command record is rendered once and its JSON kept by the
 * record's identity. A view's records are immutable and a change replaces a
 * record with a new object, so between two mirror writes only the records
 * that changed are rendered again; the rest is sorting keys and joining
 * strings. At 20,000 VMs this takes the leader's event loop for a fraction
 * of the time a full rendering took (docs/benchmarks-paxos.md).
 *
 * Only the mirror uses it: the simulator's agreement checks compare learners
 * with the uncached canonicalViewJson, which would still see a record changed
 * in place (a bug this cache would hide).
 */
import { canonicalJson } from "../../machines/view/canonicalJson.ts";
import { recentCommandsOf, type View } from "../../machines/view/viewTypes.ts";

const recordJson = new WeakMap<object, string>();

function cachedRecordJson(record: unknown): string {
  if (record === null || typeof record !== "object" || Array.isArray(record)) return canonicalJson(record);
  let json = recordJson.get(record);
  if (json === undefined) {
    json = canonicalJson(record);
    recordJson.set(record, json);
  }
  return json;
}

/** Whether the record's JSON is rendered and kept (for tests). */
export function isRecordJsonRendered(record: object): boolean {
  return recordJson.has(record);
}

function compareKeys(a: readonly [string, unknown], b: readonly [string, unknown]): number {
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
}

/** A map of records as canonicalJson writes a Map (keys sorted, undefined values left out), one entry a piece. */
function* recordMapSegments(entries: Iterable<readonly [string, unknown]>): Generator<string> {
  const sorted = [...entries].sort(compareKeys);
  let first = true;
  for (const [key, record] of sorted) {
    if (record === undefined) continue;
    yield `${first ? "" : ","}${JSON.stringify(key)}:${cachedRecordJson(record)}`;
    first = false;
  }
}

function* listSegments(records: readonly unknown[]): Generator<string> {
  for (let index = 0; index < records.length; index++) yield `${index === 0 ? "" : ","}${cachedRecordJson(records[index])}`;
}

/**
 * `cachedCanonicalViewJson(view)` in pieces, each host, VM and remembered command one piece (its JSON
 * rendered when reached), so a caller can build a large view's JSON a slice per turn: the KV mirror of
 * a leader, whose followers stop hearing it while it renders 60,000 VMs in one go.
 */
export function* viewJsonSegments(view: View): Generator<string> {
  // The fields viewToSnapshot gives besides its version and lists, without copying the lists.
  const small = { epoch: view.epoch, controllerIds: view.controllerIds, leader: view.leader, ...(view.hostFailuresToTolerate === null ? {} : { hostFailuresToTolerate: view.hostFailuresToTolerate }) };
  const recentCommands = recentCommandsOf(view);
  const fields: Array<[string, () => Iterable<string>]> = [];
  for (const [key, value] of Object.entries(small)) if (value !== undefined) fields.push([key, () => [canonicalJson(value)]]);
  fields.push(["hosts", () => recordMapSegments(view.hosts.entries())]);
  fields.push(["vms", () => recordMapSegments(view.vms.entries())]);
  fields.push(["recentCommands", () => listSegments(recentCommands)]);
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

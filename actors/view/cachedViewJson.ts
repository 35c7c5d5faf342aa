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
import { viewToSnapshot } from "../../machines/view/viewSnapshot.ts";
import type { View } from "../../machines/view/viewTypes.ts";

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

/** Renders a record's JSON ahead of the build that needs it (the mirror of a new leader, a few at a time); false when it was rendered already. */
export function prerenderRecordJson(record: object): boolean {
  if (recordJson.has(record)) return false;
  recordJson.set(record, canonicalJson(record));
  return true;
}

/** Whether the record's JSON is rendered and kept (for tests). */
export function isRecordJsonRendered(record: object): boolean {
  return recordJson.has(record);
}

function compareKeys(a: readonly [string, unknown], b: readonly [string, unknown]): number {
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
}

/** A map of records as canonicalJson writes a Map: keys sorted, undefined values left out. */
function recordMapJson(entries: Iterable<readonly [string, unknown]>): string {
  const sorted = [...entries].sort(compareKeys);
  const parts: string[] = [];
  for (const [key, record] of sorted) if (record !== undefined) parts.push(`${JSON.stringify(key)}:${cachedRecordJson(record)}`);
  return `{${parts.join(",")}}`;
}

export function cachedCanonicalViewJson(view: View): string {
  const { version: _version, hosts: _hosts, vms: _vms, recentCommands, ...small } = viewToSnapshot(view);
  const fields: Array<[string, string]> = [];
  for (const [key, value] of Object.entries(small)) if (value !== undefined) fields.push([key, canonicalJson(value)]);
  fields.push(["hosts", recordMapJson(view.hosts.entries())]);
  fields.push(["vms", recordMapJson(view.vms.entries())]);
  fields.push(["recentCommands", `[${recentCommands.map(cachedRecordJson).join(",")}]`]);
  fields.sort(compareKeys);
  return `{${fields.map(([key, json]) => `${JSON.stringify(key)}:${json}`).join(",")}}`;
}

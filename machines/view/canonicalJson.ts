/**
 * JSON with a stable form: object keys sorted by UTF-16 code units, Maps
 * (and ChunkedMaps) written as objects with sorted keys, no whitespace. Equal
 * values give equal strings, which is how learners' views are compared and
 * what the KV mirror stores.
 *
 * Objects are assembled by hand: JSON.stringify always puts integer-like keys
 * ("10", "2") first in ascending numeric order, whatever order they were
 * inserted in, which is not the sorted order.
 */
import { ChunkedMap } from "../paxos/chunkedMap.ts";

export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") {
    if (typeof value === "number" && !Number.isFinite(value)) throw new RangeError(`canonical JSON cannot hold ${value}`);
    if (typeof value === "bigint" || typeof value === "function" || typeof value === "symbol") throw new TypeError(`canonical JSON cannot hold a ${typeof value}`);
    return value === undefined ? "null" : JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map((item) => canonicalJson(item)).join(",")}]`;
  const entries: Array<[string, unknown]> =
    value instanceof Map || value instanceof ChunkedMap ? [...value.entries()].map(([key, item]) => [String(key), item]) : Object.entries(value);
  entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const parts: string[] = [];
  for (const [key, item] of entries) if (item !== undefined) parts.push(`${JSON.stringify(key)}:${canonicalJson(item)}`);
  return `{${parts.join(",")}}`;
}

/**
 * Reading a node config file field by field: every wrong field becomes one
 * problem naming its path (`hypervisor.vms[2].vcpus must be ...`), and
 * reading goes on, so an operator sees every problem of a file at once.
 * A reader never throws; it returns a fallback and records the problem.
 */
import { isAbsolute } from "node:path";
import { isValidId } from "../../actors/subjects.ts";

export const maxConfigFileBytes = 64 * 1024;
export const maxNatsUrls = 16;
export const maxPathChars = 4_096;

export function describeValue(value: unknown): string {
  if (typeof value === "string") return value.length > 40 ? `a string of ${value.length} characters` : JSON.stringify(value);
  if (Array.isArray(value)) return `a list of ${value.length}`;
  if (value === null) return "null";
  return typeof value === "object" ? "an object" : String(value);
}

export function isNatsUrl(value: unknown): value is string {
  if (typeof value !== "string" || value.length > 512) return false;
  try {
    const url = new URL(value);
    return (url.protocol === "nats:" || url.protocol === "tls:") && url.hostname.length > 0;
  } catch {
    return false;
  }
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Reads the fields of one JSON object at `path` ("" for the top level), collecting problems into a shared list. */
export class ObjectReader {
  readonly raw: Record<string, unknown>;

  constructor(
    raw: Record<string, unknown>,
    readonly path: string,
    readonly problems: string[],
  ) {
    this.raw = raw;
  }

  /** `path.field`, or `field` at the top level. */
  at(field: string): string {
    return this.path === "" ? field : `${this.path}.${field}`;
  }

  has(field: string): boolean {
    return this.raw[field] !== undefined;
  }

  problem(field: string, message: string): void {
    this.problems.push(`${this.at(field)} ${message}`);
  }

  /** Reports every field not in `known`. */
  onlyKnown(known: readonly string[]): void {
    for (const key of Object.keys(this.raw)) {
      if (!known.includes(key)) this.problems.push(`unknown field ${JSON.stringify(this.at(key.slice(0, 64)))} (known here: ${known.join(", ")})`);
    }
  }

  id(field: string, fallback = ""): string {
    const value = this.raw[field];
    if (value === undefined && fallback !== "") return fallback;
    if (typeof value === "string" && isValidId(value)) return value;
    this.problem(field, `must be 1-64 of [A-Za-z0-9_-], got ${describeValue(value)}`);
    return "";
  }

  ids(field: string, min: number, max: number, what: string): string[] {
    const value = this.raw[field];
    if (!Array.isArray(value) || value.length < min || value.length > max) {
      this.problem(field, `must list ${min} to ${max} ${what}, got ${describeValue(value)}`);
      return [];
    }
    const bad = value.findIndex((entry) => typeof entry !== "string" || !isValidId(entry));
    if (bad >= 0) {
      this.problems.push(`${this.at(field)}[${bad}] must be 1-64 of [A-Za-z0-9_-], got ${describeValue(value[bad])}`);
      return [];
    }
    if (new Set(value).size !== value.length) {
      this.problem(field, "contains a duplicate");
      return [];
    }
    return value as string[];
  }

  natsUrls(field: string): string[] {
    const value = this.raw[field];
    if (!Array.isArray(value) || value.length < 1 || value.length > maxNatsUrls) {
      this.problem(field, `must list 1 to ${maxNatsUrls} URLs, got ${describeValue(value)}`);
      return [];
    }
    const bad = value.findIndex((url) => !isNatsUrl(url));
    if (bad >= 0) {
      this.problems.push(`${this.at(field)}[${bad}] must be a nats:// (or tls://) URL, got ${describeValue(value[bad])}`);
      return [];
    }
    return value as string[];
  }

  absolutePath(field: string, optional = false): string | undefined {
    const value = this.raw[field];
    if (value === undefined && optional) return undefined;
    if (typeof value === "string" && isAbsolute(value) && value.length <= maxPathChars && !value.includes("\0")) return value;
    this.problem(field, `must be an absolute path, got ${describeValue(value)}`);
    return undefined;
  }

  flag(field: string, fallback: boolean): boolean {
    const value = this.raw[field];
    if (value === undefined) return fallback;
    if (typeof value === "boolean") return value;
    this.problem(field, `must be true or false, got ${describeValue(value)}`);
    return fallback;
  }

  /** A whole number in [min, max]; `fallback` when absent (undefined fallback: the field is required). */
  integer(field: string, min: number, max: number, fallback?: number): number {
    const value = this.raw[field];
    if (value === undefined && fallback !== undefined) return fallback;
    if (typeof value === "number" && Number.isSafeInteger(value) && value >= min && value <= max) return value;
    this.problem(field, `must be a whole number in [${min}, ${max}], got ${describeValue(value)}`);
    return fallback ?? min;
  }

  optionalInteger(field: string, min: number, max: number): number | undefined {
    if (this.raw[field] === undefined) return undefined;
    return this.integer(field, min, max, min);
  }

  oneOf<T extends string>(field: string, choices: readonly T[], fallback?: T): T {
    const value = this.raw[field];
    if (value === undefined && fallback !== undefined) return fallback;
    if (typeof value === "string" && (choices as readonly string[]).includes(value)) return value as T;
    this.problem(field, `must be one of ${choices.map((choice) => JSON.stringify(choice)).join(", ")}, got ${describeValue(value)}`);
    return fallback ?? choices[0]!;
  }

  text(field: string, maxChars: number, fallback?: string): string {
    const value = this.raw[field];
    if (value === undefined && fallback !== undefined) return fallback;
    if (typeof value === "string" && value.length > 0 && value.length <= maxChars && !value.includes("\0")) return value;
    this.problem(field, `must be a non-empty string of at most ${maxChars} characters, got ${describeValue(value)}`);
    return fallback ?? "";
  }

  /** A nested object's reader; undefined (and a problem, unless optional) when absent or not an object. */
  object(field: string, optional: boolean): ObjectReader | undefined {
    const value = this.raw[field];
    if (value === undefined && optional) return undefined;
    if (isPlainObject(value)) return new ObjectReader(value, this.at(field), this.problems);
    this.problem(field, `must be an object, got ${describeValue(value)}`);
    return undefined;
  }

  /** Readers for each entry of a list of objects. */
  objects(field: string, max: number): ObjectReader[] {
    const value = this.raw[field];
    if (value === undefined) return [];
    if (!Array.isArray(value) || value.length > max) {
      this.problem(field, `must be a list of at most ${max} objects, got ${describeValue(value)}`);
      return [];
    }
    const readers: ObjectReader[] = [];
    value.forEach((entry, index) => {
      const path = `${this.at(field)}[${index}]`;
      if (isPlainObject(entry)) readers.push(new ObjectReader(entry, path, this.problems));
      else this.problems.push(`${path} must be an object, got ${describeValue(entry)}`);
    });
    return readers;
  }
}

/** Parses config file text into a JSON object, or the one problem that stops reading it. */
export function parseConfigObject(text: string): { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly problems: readonly string[] } {
  if (text.length > maxConfigFileBytes) return { ok: false, problems: [`the config file is larger than ${maxConfigFileBytes} bytes`] };
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (error) {
    return { ok: false, problems: [`the config file is not valid JSON: ${error instanceof Error ? error.message : String(error)}`] };
  }
}

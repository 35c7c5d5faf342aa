/**
 * Reads the fields of one JSON object from a scenario file and reports every
 * wrong one as `path: expected …, got …` with the line it sits on. Unknown
 * keys are reported too (a misspelt key would otherwise be silently ignored).
 * Components use it to read their `components.<name>` settings.
 */
import { describeJsonNode, type JsonNode } from "./jsonDocument.ts";
import { parseDurationMs, parsePercent } from "./scenarioValues.ts";

export type ReportProblem = (line: number | undefined, message: string) => void;

export function joinPath(path: string, key: string | number): string {
  if (typeof key === "number") return `${path}[${key}]`;
  return path === "" ? key : `${path}.${key}`;
}

export class JsonObjectReader {
  private readonly entries: ReadonlyMap<string, JsonNode>;
  private readonly used = new Set<string>();
  /** False when the node was not an object (already reported); every read then yields its default. */
  readonly isObject: boolean;

  constructor(
    readonly node: JsonNode | undefined,
    readonly path: string,
    private readonly report: ReportProblem,
  ) {
    if (node !== undefined && node.kind !== "object") {
      report(node.line, `${path || "the file"}: expected an object {…}, got ${describeJsonNode(node)}`);
    }
    this.isObject = node?.kind === "object";
    this.entries = node?.kind === "object" ? node.entries : new Map();
  }

  get line(): number | undefined {
    return this.node?.line;
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  /** Marks the key as known and returns its node, if present. */
  optional(key: string): JsonNode | undefined {
    this.used.add(key);
    return this.entries.get(key);
  }

  required(key: string, expected: string): JsonNode | undefined {
    const node = this.optional(key);
    if (node === undefined && this.isObject) this.report(this.line, `${this.path || "the file"}: missing "${key}" (${expected})`);
    return node;
  }

  problem(node: JsonNode | undefined, key: string | number, message: string): void {
    this.report(node?.line ?? this.line, `${joinPath(this.path, key)}: ${message}`);
  }

  string(key: string, options: { readonly maxLength: number; readonly fallback: string; readonly pattern?: RegExp; readonly expected?: string }): string {
    const node = this.optional(key);
    if (node === undefined) return options.fallback;
    const expected = options.expected ?? `a string of at most ${options.maxLength} characters`;
    if (node.kind !== "string" || node.value.length > options.maxLength || (options.pattern && !options.pattern.test(node.value))) {
      this.problem(node, key, `expected ${expected}, got ${describeJsonNode(node)}`);
      return options.fallback;
    }
    return node.value;
  }

  oneOf<T extends string>(key: string, choices: readonly T[], fallback: T): T {
    const node = this.optional(key);
    if (node === undefined) return fallback;
    if (node.kind !== "string" || !(choices as readonly string[]).includes(node.value)) {
      this.problem(node, key, `expected one of ${choices.map((choice) => JSON.stringify(choice)).join(", ")}, got ${describeJsonNode(node)}`);
      return fallback;
    }
    return node.value as T;
  }

  integer(key: string, options: { readonly min: number; readonly max: number; readonly fallback: number; readonly isRequired?: boolean }): number {
    const node = options.isRequired ? this.required(key, `a whole number from ${options.min} to ${options.max}`) : this.optional(key);
    if (node === undefined) return options.fallback;
    if (node.kind !== "number" || !Number.isSafeInteger(node.value) || node.value < options.min || node.value > options.max) {
      this.problem(node, key, `expected a whole number from ${options.min} to ${options.max}, got ${describeJsonNode(node)}`);
      return options.fallback;
    }
    return node.value;
  }

  /** A duration string like `"30s"` or `"200ms"`. */
  duration(key: string, options: { readonly min: number; readonly max: number; readonly fallback: number; readonly isRequired?: boolean }): number {
    const expected = `a duration like "30s" or "200ms" from ${options.min} ms to ${options.max} ms`;
    const node = options.isRequired ? this.required(key, expected) : this.optional(key);
    if (node === undefined) return options.fallback;
    const value = node.kind === "string" ? parseDurationMs(node.value) : undefined;
    if (value === undefined || value < options.min || value > options.max) {
      this.problem(node, key, `expected ${expected}, got ${describeJsonNode(node)}`);
      return options.fallback;
    }
    return value;
  }

  /** A percentage string like `"5%"`, returned as a probability. */
  percent(key: string, fallback: number): number {
    const node = this.optional(key);
    if (node === undefined) return fallback;
    const value = node.kind === "string" ? parsePercent(node.value) : undefined;
    if (value === undefined) {
      this.problem(node, key, `expected a percentage like "5%" (0% to 100%), got ${describeJsonNode(node)}`);
      return fallback;
    }
    return value;
  }

  /** Reports every key no read asked about. Call once all fields are read. */
  finish(): void {
    for (const [key, node] of this.entries) {
      if (!this.used.has(key)) {
        const known = [...this.used].map((name) => JSON.stringify(name)).join(", ");
        this.report(node.line, `${joinPath(this.path, key)}: unknown key${known ? ` (known here: ${known})` : ""}`);
      }
    }
  }
}

/**
 * Validator combinators for decoded network messages, with TypeScript type
 * inference (`Infer<typeof schema>`).
 *
 * Why not zod/valibot: this runs on every message of a 10k-actor simulation, so
 * a check allocates nothing on success and builds its error (with a path such as
 * `body.slots[3].ballot.round`) only on failure, while unwinding.
 *
 * Rules that hold for every schema here:
 * - Bounds everywhere: strings, byte strings, arrays and records have a
 *   mandatory maximum size, integers and numbers a mandatory range. Hostile
 *   input cannot make a valid value large.
 * - Objects are strict: a key the schema does not declare is an error, and only
 *   plain objects (prototype Object.prototype or null) are accepted, so Date,
 *   Error, Map, Set or RegExp values that msgpackr can produce never pass.
 *   Adding a field to a message is therefore a protocol change (new type or
 *   envelope version), never a silent one.
 * - Schemas are not recursive, so validation depth is bounded by the schema.
 * - Validation does not copy: on success the input itself is returned, typed.
 * - `int` accepts only JS numbers, never bigint: msgpackr decodes 64-bit
 *   integers to bigint, while its `pack` writes every integer beyond 32 bits as
 *   a float64, so a bigint only ever comes from a foreign or hostile sender.
 */

/** A failed check: the message and the path to the offending value, innermost segment first while unwinding. */
export interface Issue {
  readonly segments: Array<string | number>;
  readonly message: string;
}

export interface Schema<T> {
  /** What a conforming value looks like, for error messages ("integer in [0, 10]"). */
  readonly expected: string;
  /** Returns undefined when `value` conforms. Never throws for any input. */
  check(value: unknown): Issue | undefined;
  /** Type-level only: never set. */
  readonly _output?: T;
}

export type Infer<S> = S extends Schema<infer T> ? T : never;

export interface OptionalSchema<T> extends Schema<T | undefined> {
  readonly isOptional: true;
  readonly inner: Schema<T>;
}

export type Shape = { readonly [key: string]: Schema<unknown> };

type OptionalKeys<S extends Shape> = { [K in keyof S]: S[K] extends OptionalSchema<unknown> ? K : never }[keyof S];
type RequiredKeys<S extends Shape> = Exclude<keyof S, OptionalKeys<S>>;
type Simplify<T> = { [K in keyof T]: T[K] } & {};

export type InferShape<S extends Shape> = Simplify<
  { readonly [K in RequiredKeys<S>]: Infer<S[K]> } & { readonly [K in OptionalKeys<S>]?: Infer<S[K]> }
>;

export interface ObjectSchema<S extends Shape> extends Schema<InferShape<S>> {
  readonly shape: S;
}

export interface LiteralSchema<L extends LiteralValue> extends Schema<L> {
  readonly literal: L;
}

export type LiteralValue = string | number | boolean | null;

export type ValidationResult<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly path: string; readonly message: string; readonly error: string };

const maxDescribedStringChars = 32;

function issue(message: string): Issue {
  return { segments: [], message };
}

function mismatch(expected: string, value: unknown): Issue {
  return issue(`expected ${expected}, got ${describeValue(value)}`);
}

/** A short, bounded, printable description of any value, safe to put in a log line. */
export function describeValue(value: unknown): string {
  switch (typeof value) {
    case "string":
      return value.length > maxDescribedStringChars
        ? `string of length ${value.length}`
        : printable(JSON.stringify(value));
    case "number":
      return Number.isInteger(value) ? `integer ${value}` : `number ${value}`;
    case "bigint":
      return "bigint";
    case "boolean":
      return String(value);
    case "undefined":
      return "undefined";
    case "object":
      if (value === null) return "null";
      if (Array.isArray(value)) return `array of length ${value.length}`;
      if (value instanceof Uint8Array) return `bytes of length ${value.length}`;
      return isPlainObject(value) ? "object" : "non-plain object";
    default:
      return typeof value;
  }
}

function printable(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, "?");
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

const identifierPattern = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** `root.key[3]["odd key"]` from segments listed innermost first. */
export function formatPath(root: string, segments: ReadonlyArray<string | number>): string {
  let path = root;
  for (let index = segments.length - 1; index >= 0; index--) {
    const segment = segments[index]!;
    if (typeof segment === "number") path += `[${segment}]`;
    else if (identifierPattern.test(segment) && segment.length <= maxDescribedStringChars) path += path === "" ? segment : `.${segment}`;
    else path += `[${describeValue(segment)}]`;
  }
  return path;
}

/** Checks `value` and, on failure, reports where and why. `root` names the value in the path ("body"). */
export function validate<T>(schema: Schema<T>, value: unknown, root = "value"): ValidationResult<T> {
  const found = schema.check(value);
  if (found === undefined) return { ok: true, value: value as T };
  const path = formatPath(root, found.segments);
  return { ok: false, path, message: found.message, error: `${path}: ${found.message}` };
}

export function conforms<T>(schema: Schema<T>, value: unknown): value is T {
  return schema.check(value) === undefined;
}

function requireBound(name: string, bound: number, min: number): void {
  if (!Number.isSafeInteger(bound) || bound < min) throw new RangeError(`${name} must be a safe integer ≥ ${min}, got ${bound}`);
}

function rangeText(kind: string, min: number, max: number): string {
  if (max === Number.MAX_SAFE_INTEGER || max === Number.MAX_VALUE) return `${kind} ≥ ${min}`;
  if (min === Number.MIN_SAFE_INTEGER || min === -Number.MAX_VALUE) return `${kind} ≤ ${max}`;
  return `${kind} in [${min}, ${max}]`;
}

function lengthText(kind: string, minLength: number, maxLength: number): string {
  return minLength === 0 ? `${kind} of length ≤ ${maxLength}` : `${kind} of length in [${minLength}, ${maxLength}]`;
}

export interface StringOptions {
  /** In UTF-16 code units (JS string length). */
  readonly maxLength: number;
  readonly minLength?: number;
  /** Should be anchored (^…$); global and sticky flags are refused because they make `test` stateful. */
  readonly pattern?: RegExp;
}

export function str(options: StringOptions): Schema<string> {
  const { maxLength, minLength = 0, pattern } = options;
  requireBound("maxLength", maxLength, 0);
  requireBound("minLength", minLength, 0);
  if (minLength > maxLength) throw new RangeError(`minLength ${minLength} exceeds maxLength ${maxLength}`);
  if (pattern && (pattern.global || pattern.sticky)) throw new RangeError("string patterns must not use the g or y flag");
  const expected = lengthText("string", minLength, maxLength) + (pattern ? ` matching ${pattern}` : "");
  return {
    expected,
    check(value) {
      if (typeof value !== "string" || value.length > maxLength || value.length < minLength) return mismatch(expected, value);
      if (pattern !== undefined && !pattern.test(value)) return mismatch(expected, value);
      return undefined;
    },
  };
}

export interface RangeOptions {
  readonly min: number;
  readonly max: number;
}

/** A safe integer in [min, max]. Rejects bigint, NaN, fractions. */
export function int(options: RangeOptions): Schema<number> {
  const { min, max } = options;
  if (!Number.isSafeInteger(min) || !Number.isSafeInteger(max) || min > max) {
    throw new RangeError(`int bounds must be safe integers with min ≤ max, got [${min}, ${max}]`);
  }
  const expected = rangeText("integer", min, max);
  return {
    expected,
    check(value) {
      if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) return mismatch(expected, value);
      return undefined;
    },
  };
}

/** A finite number in [min, max]. Rejects NaN and infinities. */
export function num(options: RangeOptions): Schema<number> {
  const { min, max } = options;
  if (!Number.isFinite(min) || !Number.isFinite(max) || min > max) {
    throw new RangeError(`num bounds must be finite with min ≤ max, got [${min}, ${max}]`);
  }
  const expected = rangeText("number", min, max);
  return {
    expected,
    check(value) {
      // NaN fails both comparisons, so test for the positive case.
      if (typeof value !== "number" || !(value >= min && value <= max)) return mismatch(expected, value);
      return undefined;
    },
  };
}

const booleanSchema: Schema<boolean> = {
  expected: "boolean",
  check(value) {
    return typeof value === "boolean" ? undefined : mismatch("boolean", value);
  },
};

export function bool(): Schema<boolean> {
  return booleanSchema;
}

export function literal<const L extends LiteralValue>(value: L): LiteralSchema<L> {
  const expected = typeof value === "string" ? describeValue(value) : String(value);
  return {
    expected,
    literal: value,
    check(candidate) {
      return candidate === value ? undefined : mismatch(expected, candidate);
    },
  };
}

/** One of a fixed set of literals (an enum). */
export function oneOf<const L extends LiteralValue>(values: readonly L[]): Schema<L> {
  if (values.length === 0) throw new RangeError("oneOf needs at least one value");
  const allowed = new Set<unknown>(values);
  const expected = `one of ${values.map((value) => (typeof value === "string" ? describeValue(value) : String(value))).join(", ")}`;
  return {
    expected,
    check(value) {
      return allowed.has(value) ? undefined : mismatch(expected, value);
    },
  };
}

export interface SizeOptions {
  readonly maxLength: number;
  readonly minLength?: number;
}

/** Raw bytes: any Uint8Array (msgpackr decodes binary as a Node Buffer, which is one). */
export function bytes(options: SizeOptions): Schema<Uint8Array> {
  const { maxLength, minLength = 0 } = options;
  requireBound("maxLength", maxLength, 0);
  requireBound("minLength", minLength, 0);
  const expected = lengthText("bytes", minLength, maxLength);
  return {
    expected,
    check(value) {
      if (!(value instanceof Uint8Array) || value.length > maxLength || value.length < minLength) return mismatch(expected, value);
      return undefined;
    },
  };
}

export function arr<T>(item: Schema<T>, options: SizeOptions): Schema<readonly T[]> {
  const { maxLength, minLength = 0 } = options;
  requireBound("maxLength", maxLength, 0);
  requireBound("minLength", minLength, 0);
  const expected = `${lengthText("array", minLength, maxLength)} of ${item.expected}`;
  return {
    expected,
    check(value) {
      if (!Array.isArray(value) || value.length > maxLength || value.length < minLength) return mismatch(expected, value);
      for (let index = 0; index < value.length; index++) {
        const found = item.check(value[index]);
        if (found !== undefined) {
          found.segments.push(index);
          return found;
        }
      }
      return undefined;
    },
  };
}

/** Marks an object field as optional: it may be absent or undefined. */
export function optional<T>(inner: Schema<T>): OptionalSchema<T> {
  const expected = `${inner.expected} or undefined`;
  return {
    expected,
    isOptional: true,
    inner,
    check(value) {
      return value === undefined ? undefined : inner.check(value);
    },
  };
}

export function nullable<T>(inner: Schema<T>): Schema<T | null> {
  const expected = `${inner.expected} or null`;
  return {
    expected,
    check(value) {
      return value === null ? undefined : inner.check(value);
    },
  };
}

function isOptionalSchema(schema: Schema<unknown>): boolean {
  return (schema as Partial<OptionalSchema<unknown>>).isOptional === true;
}

/** A plain object with exactly the declared keys (optional ones may be missing); unknown keys are rejected. */
export function obj<const S extends Shape>(shape: S): ObjectSchema<S> {
  const fields: Record<string, Schema<unknown>> = Object.create(null) as Record<string, Schema<unknown>>;
  const required: Record<string, boolean> = Object.create(null) as Record<string, boolean>;
  const requiredKeys: string[] = [];
  for (const key of Object.keys(shape)) {
    const field = shape[key]!;
    fields[key] = field;
    required[key] = !isOptionalSchema(field);
    if (required[key]) requiredKeys.push(key);
  }
  const requiredCount = requiredKeys.length;
  const expected = `object with keys {${Object.keys(shape).join(", ")}}`;
  return {
    expected,
    shape,
    check(value) {
      if (!isPlainObject(value)) return mismatch("object", value);
      let requiredSeen = 0;
      for (const key in value) {
        const field = fields[key];
        if (field === undefined) {
          const found = issue("unexpected key");
          found.segments.push(key);
          return found;
        }
        const found = field.check(value[key]);
        if (found !== undefined) {
          found.segments.push(key);
          return found;
        }
        if (required[key]) requiredSeen++;
      }
      if (requiredSeen < requiredCount) {
        for (const key of requiredKeys) {
          if (!Object.prototype.hasOwnProperty.call(value, key)) {
            const found = issue(`missing, expected ${fields[key]!.expected}`);
            found.segments.push(key);
            return found;
          }
        }
      }
      return undefined;
    },
  };
}

export interface RecordOptions {
  readonly maxEntries: number;
}

/**
 * A plain object used as a dictionary. Keys are validated by `key` (give it a
 * pattern). JS orders integer-like keys numerically before the others: do not
 * rely on key order where it matters for determinism.
 */
export function record<K extends string, V>(key: Schema<K>, value: Schema<V>, options: RecordOptions): Schema<Readonly<Record<K, V>>> {
  const { maxEntries } = options;
  requireBound("maxEntries", maxEntries, 0);
  const expected = `object of ≤ ${maxEntries} entries (${key.expected} → ${value.expected})`;
  return {
    expected,
    check(candidate) {
      if (!isPlainObject(candidate)) return mismatch("object", candidate);
      let entries = 0;
      for (const entryKey in candidate) {
        if (++entries > maxEntries) return issue(`expected at most ${maxEntries} entries`);
        const keyIssue = key.check(entryKey);
        if (keyIssue !== undefined) {
          const found = issue(`invalid key: ${keyIssue.message}`);
          found.segments.push(entryKey);
          return found;
        }
        const found = value.check(candidate[entryKey]);
        if (found !== undefined) {
          found.segments.push(entryKey);
          return found;
        }
      }
      return undefined;
    },
  };
}

/**
 * A union of object schemas told apart by one literal field, e.g.
 * `discriminated("kind", [obj({ kind: literal("noop") }), obj({ kind: literal("put"), key: ... })])`.
 * The tag is looked up in a map, so a union of many variants costs one check.
 */
export function discriminated<const D extends string, const V extends readonly ObjectSchema<Shape>[]>(
  discriminator: D,
  variants: V,
): Schema<Infer<V[number]>> {
  const byTag = new Map<unknown, ObjectSchema<Shape>>();
  for (const variant of variants) {
    const tagSchema = variant.shape[discriminator] as Partial<LiteralSchema<LiteralValue>> | undefined;
    if (tagSchema === undefined || !("literal" in tagSchema)) {
      throw new RangeError(`every variant needs a literal "${discriminator}" field`);
    }
    if (byTag.has(tagSchema.literal)) throw new RangeError(`duplicate variant tag ${String(tagSchema.literal)}`);
    byTag.set(tagSchema.literal, variant);
  }
  const tags = [...byTag.keys()].map((tag) => (typeof tag === "string" ? describeValue(tag) : String(tag)));
  const expected = `object with ${discriminator} one of ${tags.join(", ")}`;
  const tagExpected = `one of ${tags.join(", ")}`;
  return {
    expected,
    check(value) {
      if (!isPlainObject(value)) return mismatch(expected, value);
      const tag = Object.prototype.hasOwnProperty.call(value, discriminator) ? value[discriminator] : undefined;
      const variant = byTag.get(tag);
      if (variant === undefined) {
        const found = mismatch(tagExpected, tag);
        found.segments.push(discriminator);
        return found;
      }
      return variant.check(value);
    },
  };
}


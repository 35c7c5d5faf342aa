import test from "ava";
import {
  arr,
  bool,
  bytes,
  conforms,
  discriminated,
  int,
  literal,
  nullable,
  num,
  obj,
  oneOf,
  optional,
  record,
  str,
  validate,
  type Infer,
} from "../../actors/codec/schema.ts";

const ballot = obj({ round: int({ min: 0, max: Number.MAX_SAFE_INTEGER }), controllerId: str({ minLength: 1, maxLength: 8 }) });
const slot = obj({ index: int({ min: 0, max: 1_000_000 }), ballot, value: optional(bytes({ maxLength: 16 })) });
const prepare = obj({ slots: arr(slot, { maxLength: 8 }), note: optional(str({ maxLength: 10 })) });

function errorOf(schema: Parameters<typeof validate>[0], value: unknown, root = "body"): string {
  const result = validate(schema, value, root);
  if (result.ok) throw new Error("expected a validation failure");
  return result.error;
}

test("inferred types follow the schema, with optional keys optional and everything readonly", (t) => {
  const value: Infer<typeof prepare> = { slots: [{ index: 1, ballot: { round: 2, controllerId: "c1" } }] };
  // @ts-expect-error a required key is missing
  const missing: Infer<typeof prepare> = { slots: [{ index: 1 }] };
  // @ts-expect-error readonly
  value.slots = [];
  t.true(conforms(prepare, { slots: [{ index: 1, ballot: { round: 2, controllerId: "c1" } }] }));
  t.false(conforms(prepare, missing));
});

test("errors carry the path to the offending value", (t) => {
  const slots = [0, 1, 2, 3].map((index) => ({ index, ballot: { round: index === 3 ? -1 : 0, controllerId: "c1" } }));
  t.is(errorOf(prepare, { slots }), "body.slots[3].ballot.round: expected integer ≥ 0, got integer -1");
  t.is(errorOf(prepare, { slots: [{ index: 0, ballot: { round: 0 } }] }), "body.slots[0].ballot.controllerId: missing, expected string of length in [1, 8]");
  t.is(errorOf(prepare, { slots: [], extra: 1 }), "body.extra: unexpected key");
  t.is(errorOf(prepare, { slots: [], "odd key": 1 }), 'body["odd key"]: unexpected key');
  t.is(errorOf(prepare, { slots: [], note: "x".repeat(11) }), "body.note: expected string of length ≤ 10, got \"xxxxxxxxxxx\"");
});

test("strings: length bounds, anchored pattern, nothing but strings", (t) => {
  const id = str({ minLength: 1, maxLength: 4, pattern: /^[a-z]+$/ });
  t.true(conforms(id, "abcd"));
  for (const bad of ["", "abcde", "AB", "a b", 5, null, undefined, ["a"], { a: 1 }]) t.false(conforms(id, bad), String(bad));
  t.throws(() => str({ maxLength: 3, pattern: /a/g }), { instanceOf: RangeError });
  t.throws(() => str({ maxLength: -1 }), { instanceOf: RangeError });
  t.throws(() => str({ maxLength: 2, minLength: 3 }), { instanceOf: RangeError });
});

test("integers: safe, in range, never bigint, NaN or fractions", (t) => {
  const small = int({ min: -2, max: 5 });
  for (const good of [-2, 0, 5, -0]) t.true(conforms(small, good), String(good));
  for (const bad of [-3, 6, 1.5, Number.NaN, Infinity, 1n, "1", true, null]) t.false(conforms(small, bad), String(bad));
  t.is(errorOf(small, 2n, "x"), "x: expected integer in [-2, 5], got bigint");
  t.throws(() => int({ min: 0, max: 2 ** 60 }), { instanceOf: RangeError });
  t.throws(() => int({ min: 3, max: 2 }), { instanceOf: RangeError });
});

test("numbers: finite and in range", (t) => {
  const ratio = num({ min: 0, max: 1 });
  for (const good of [0, 0.5, 1]) t.true(conforms(ratio, good));
  for (const bad of [-0.1, 1.1, Number.NaN, Infinity, -Infinity, "0.5", 1n]) t.false(conforms(ratio, bad), String(bad));
  t.throws(() => num({ min: 0, max: Infinity }), { instanceOf: RangeError });
});

test("booleans, literals and enums match exactly", (t) => {
  t.true(conforms(bool(), false));
  t.false(conforms(bool(), 0));
  t.true(conforms(literal("noop"), "noop"));
  t.false(conforms(literal("noop"), "Noop"));
  t.false(conforms(literal(1), "1"));
  t.true(conforms(literal(null), null));
  t.false(conforms(literal(null), undefined));
  const level = oneOf(["high", "medium", "low"]);
  t.true(conforms(level, "low"));
  t.false(conforms(level, "urgent"));
  t.is(errorOf(level, "urgent", "priority"), 'priority: expected one of "high", "medium", "low", got "urgent"');
});

test("bytes: any Uint8Array (Buffer included) within bounds, never arrays of numbers", (t) => {
  const blob = bytes({ maxLength: 3 });
  t.true(conforms(blob, new Uint8Array([1, 2, 3])));
  t.true(conforms(blob, Buffer.from([1])));
  t.false(conforms(blob, new Uint8Array(4)));
  t.false(conforms(blob, [1, 2]));
  t.false(conforms(blob, new Uint16Array(1)));
  t.false(conforms(blob, "abc"));
});

test("arrays: bounded length, every item checked", (t) => {
  const list = arr(int({ min: 0, max: 9 }), { minLength: 1, maxLength: 3 });
  t.true(conforms(list, [1, 2, 3]));
  t.false(conforms(list, []));
  t.false(conforms(list, [1, 2, 3, 4]));
  t.false(conforms(list, { length: 1, 0: 1 }));
  t.is(errorOf(list, [1, 2, 10], "xs"), "xs[2]: expected integer in [0, 9], got integer 10");
});

test("objects: plain only, strict keys, optional keys may be absent or undefined", (t) => {
  const point = obj({ x: int({ min: 0, max: 9 }), label: optional(str({ maxLength: 3 })) });
  t.true(conforms(point, { x: 1 }));
  t.true(conforms(point, { x: 1, label: undefined }));
  t.true(conforms(point, { x: 1, label: "a" }));
  const nullPrototype = Object.create(null) as Record<string, unknown>;
  nullPrototype.x = 3;
  t.true(conforms(point, nullPrototype));
  t.false(conforms(point, {}));
  t.false(conforms(point, { x: undefined }));
  t.false(conforms(point, { x: 1, y: 2 }));
  t.false(conforms(point, [1]));
  t.false(conforms(point, null));
  t.false(conforms(point, new Date(0)));
  t.false(conforms(point, new Map([["x", 1]])));
  t.false(conforms(point, Object.assign(new Error("x"), { x: 1 })));
  // an inherited property never counts as present
  const inherits = obj({ toString: str({ maxLength: 5 }) });
  t.false(conforms(inherits, {}));
  // msgpackr renames a `__proto__` key to `__proto_`: it is just an unknown key
  t.is(errorOf(point, { x: 1, __proto_: {} }, "p"), "p.__proto_: unexpected key");
});

test("records: bounded entries, keys and values checked", (t) => {
  const loads = record(str({ maxLength: 8, pattern: /^h[0-9]+$/ }), int({ min: 0, max: 100 }), { maxEntries: 2 });
  t.true(conforms(loads, {}));
  t.true(conforms(loads, { h1: 3, h2: 100 }));
  t.false(conforms(loads, { h1: 3, h2: 4, h3: 5 }));
  t.is(errorOf(loads, { h1: 3, x: 4 }, "loads"), 'loads.x: invalid key: expected string of length ≤ 8 matching /^h[0-9]+$/, got "x"');
  t.is(errorOf(loads, { h1: 101 }, "loads"), "loads.h1: expected integer in [0, 100], got integer 101");
  t.false(conforms(loads, [1]));
});

test("discriminated unions dispatch on the tag and report the variant's error", (t) => {
  const command = discriminated("kind", [
    obj({ kind: literal("noop") }),
    obj({ kind: literal("put"), key: str({ maxLength: 4 }), value: int({ min: 0, max: 9 }) }),
  ]);
  type Command = Infer<typeof command>;
  const put: Command = { kind: "put", key: "a", value: 1 };
  t.true(conforms(command, put));
  t.true(conforms(command, { kind: "noop" }));
  t.false(conforms(command, { kind: "noop", key: "a" }));
  t.is(errorOf(command, { kind: "put", key: "a", value: 10 }, "cmd"), "cmd.value: expected integer in [0, 9], got integer 10");
  t.is(errorOf(command, { kind: "delete" }, "cmd"), 'cmd.kind: expected one of "noop", "put", got "delete"');
  t.is(errorOf(command, {}, "cmd"), 'cmd.kind: expected one of "noop", "put", got undefined');
  t.false(conforms(command, "put"));
  t.throws(() => discriminated("kind", [obj({ kind: str({ maxLength: 3 }) })]), { instanceOf: RangeError });
  t.throws(() => discriminated("kind", [obj({ kind: literal("a") }), obj({ kind: literal("a") })]), { instanceOf: RangeError });
});

test("nullable admits null and nothing else extra", (t) => {
  const maybe = nullable(int({ min: 0, max: 1 }));
  t.true(conforms(maybe, null));
  t.true(conforms(maybe, 1));
  t.false(conforms(maybe, undefined));
});

test("error messages stay short and printable whatever the input", (t) => {
  const name = str({ maxLength: 4 });
  t.is(errorOf(name, "\u0000\u202e\u00ffab", "n"), 'n: expected string of length ≤ 4, got "\\u0000??ab"');
  t.is(errorOf(name, "y".repeat(10_000), "n"), "n: expected string of length ≤ 4, got string of length 10000");
  const long = obj({});
  t.true(errorOf(long, { ["k".repeat(5_000)]: 1 }, "o").length < 120);
});

import test from "ava";
import { pack } from "msgpackr";
import { createMessageRegistry, type RejectionReason } from "../../actors/codec/messageCodec.ts";
import { int, obj } from "../../actors/codec/schema.ts";
import { testRegistry } from "./testMessages.ts";

const ping = { sequence: 7, sentAtMs: 1_234.5 };
const validEnvelope = { v: 1, t: "hb.ping", from: "h1", cid: "h1-7", body: ping };

function reasonOf(bytes: Uint8Array, allowed?: Parameters<typeof testRegistry.decode>[1]): RejectionReason | "ok" {
  const result = testRegistry.decode(bytes, allowed);
  return result.ok ? "ok" : result.reason;
}

test("a message round-trips with its type, sender, correlation id and body", (t) => {
  const bytes = testRegistry.encode("hb.ping", "h1", "h1-7", ping);
  const result = testRegistry.decode(bytes);
  if (!result.ok) return t.fail(result.detail);
  t.deepEqual(result.message, validEnvelope);
  if (result.message.t === "hb.ping") t.is(result.message.body.sequence, 7);
  t.deepEqual(testRegistry.encode("hb.ping", "h1", "h1-7", ping), bytes, "the same message encodes to the same bytes");
  t.is(Object.getPrototypeOf(bytes), Uint8Array.prototype);
});

test("bytes and nested unions survive the trip", (t) => {
  const put = { key: "vm-12", value: new Uint8Array([0, 255, 7]), labels: { zone: "a" } };
  const result = testRegistry.decode(testRegistry.encode("data.put", "h2", "", put), ["data.put"]);
  if (!result.ok || result.message.t !== "data.put") return t.fail();
  t.deepEqual([...result.message.body.value], [0, 255, 7]);
  const prepare = {
    ballot: { round: 3, controllerId: "c1" },
    fromSlot: 10,
    accepted: [{ slot: 10, ballot: { round: 2, controllerId: "c2" }, command: { kind: "vm-priority" as const, vmId: "vm1", priority: "high" as const } }],
    leaderHint: null,
  };
  const decoded = testRegistry.decode(testRegistry.encode("paxos.prepare", "c1", "p-3", prepare));
  t.true(decoded.ok && decoded.message.t === "paxos.prepare" && decoded.message.body.accepted[0]?.command.kind === "vm-priority");
});

test("oversized input is refused before unpacking, and encode refuses to produce it", (t) => {
  const small = createMessageRegistry({ "hb.ping": obj({ sequence: int({ min: 0, max: 9 }) }) }, { maxMessageBytes: 64 });
  const result = small.decode(new Uint8Array(65));
  t.like(result, { ok: false, reason: "oversized" });
  t.is(reasonOf(new Uint8Array(4_097)), "oversized");
  t.notThrows(() => small.encode("hb.ping", "h1", "c", { sequence: 1 }));
  t.throws(() => small.encode("hb.ping", "h1", "c".repeat(60), { sequence: 1 }), { instanceOf: RangeError, message: /exceeds maxMessageBytes 64/ });
});

test("every proper prefix of a message is truncated", (t) => {
  const bytes = testRegistry.encode("hb.ping", "h1", "h1-7", ping);
  for (let length = 0; length < bytes.length; length++) t.is(reasonOf(bytes.subarray(0, length)), "truncated", `prefix of ${length}`);
});

test("trailing bytes, non-maps and msgpack oddities are malformed", (t) => {
  const bytes = testRegistry.encode("hb.ping", "h1", "h1-7", ping);
  t.is(reasonOf(Uint8Array.from([...bytes, 0])), "malformed");
  for (const value of [5, "x", null, [validEnvelope], new Date(0), new Set([1]), 2n ** 40n]) t.is(reasonOf(pack(value)), "malformed", String(value));
  t.is(reasonOf(new Uint8Array(100_000).fill(0x91).subarray(0, 4_000)), "truncated");
  t.is(reasonOf(Uint8Array.from([0xc1])), "malformed", "0xc1 is never used in msgpack");
  t.is(reasonOf("not bytes" as unknown as Uint8Array), "malformed");
});

test("another envelope version is wrong-version; a missing or odd v is an invalid envelope", (t) => {
  t.is(reasonOf(pack({ ...validEnvelope, v: 2 })), "wrong-version");
  t.is(reasonOf(pack({ ...validEnvelope, v: 1.5 })), "wrong-version");
  t.is(reasonOf(pack({ ...validEnvelope, v: "1" })), "invalid-envelope");
  const { v: _v, ...noVersion } = validEnvelope;
  t.is(reasonOf(pack(noVersion)), "invalid-envelope");
});

test("types: unknown to the registry, or not expected on this subject", (t) => {
  t.is(reasonOf(pack({ ...validEnvelope, t: "hb.nope" })), "unknown-type");
  t.is(reasonOf(pack({ ...validEnvelope, t: "constructor" })), "unknown-type");
  t.is(reasonOf(pack({ ...validEnvelope, t: 3 })), "invalid-envelope");
  t.is(reasonOf(pack(validEnvelope), ["hb.ack"]), "unexpected-type");
  t.is(reasonOf(pack(validEnvelope), ["hb.ack", "hb.ping"]), "ok");
});

test("envelope fields are checked: sender id, correlation id, exact keys", (t) => {
  for (const envelope of [
    { ...validEnvelope, from: "" },
    { ...validEnvelope, from: "h.1" },
    { ...validEnvelope, from: "h".repeat(65) },
    { ...validEnvelope, cid: 7 },
    { ...validEnvelope, cid: "with space" },
    { ...validEnvelope, extra: true },
    { v: 1, t: "hb.ping", from: "h1", cid: "x" },
  ]) {
    t.is(reasonOf(pack(envelope)), "invalid-envelope", JSON.stringify(envelope));
  }
  const result = testRegistry.decode(pack({ ...validEnvelope, from: "h.1" }));
  t.like(result, { ok: false, detail: 'hb.ping: from: expected string of length in [1, 64] matching /^[A-Za-z0-9_-]+$/, got "h.1"' });
});

test("bodies are validated with a path to the problem; bigints never pass as integers", (t) => {
  const bigSequence = testRegistry.decode(pack({ ...validEnvelope, body: { sequence: 7n, sentAtMs: 1 } }));
  t.like(bigSequence, { ok: false, reason: "invalid-body", detail: "hb.ping: body.sequence: expected integer in [0, 2147483648], got bigint" });
  t.is(reasonOf(pack({ ...validEnvelope, body: { sequence: 7, sentAtMs: 1, more: 1 } })), "invalid-body");
  t.is(reasonOf(pack({ ...validEnvelope, body: { sequence: 7 } })), "invalid-body");
  t.is(reasonOf(pack({ ...validEnvelope, body: { sequence: 7, sentAtMs: Number.NaN } })), "invalid-body");
  t.is(reasonOf(pack({ ...validEnvelope, body: new Map([["sequence", 7], ["sentAtMs", 1]]) })), "ok", "msgpackr decodes maps as objects");
});

test("details are single printable bounded lines even for hostile text", (t) => {
  const result = testRegistry.decode(pack({ ...validEnvelope, t: "\n\u0007evil".repeat(50) }));
  if (result.ok) return t.fail();
  t.is(result.reason, "unknown-type");
  t.regex(result.detail, /^[\x20-\x7e…]*$/);
  t.true(result.detail.length <= 161);
});

test("encode refuses what the other side would reject", (t) => {
  t.throws(() => testRegistry.encode("hb.ping", "h1", "c", { sequence: -1, sentAtMs: 0 }), {
    instanceOf: RangeError,
    message: "encode hb.ping: body.sequence: expected integer in [0, 2147483648], got integer -1",
  });
  t.throws(() => testRegistry.encode("hb.ping", "h 1", "c", ping), { instanceOf: RangeError });
  t.throws(() => testRegistry.encode("hb.ping", "h1", "c c", ping), { instanceOf: RangeError });
  t.throws(() => testRegistry.encode("nope" as "hb.ping", "h1", "c", ping), { instanceOf: RangeError });
});

test("registry construction refuses bad type names and limits", (t) => {
  t.throws(() => createMessageRegistry({ "Hb.Ping": obj({}) }), { instanceOf: RangeError });
  t.throws(() => createMessageRegistry({ "hb..ping": obj({}) }), { instanceOf: RangeError });
  t.throws(() => createMessageRegistry({ "hb.ping": obj({}) }, { maxMessageBytes: 0 }), { instanceOf: RangeError });
  t.deepEqual(testRegistry.types, ["hb.ping", "hb.ack", "paxos.prepare", "data.put"]);
});

import test, { type ExecutionContext } from "ava";
import fc from "fast-check";
import { pack } from "msgpackr";
import { rejectionReasons, type RejectionReason } from "../../actors/codec/messageCodec.ts";
import { createRejectionCounter, messagesRejectedMetric, messageRejectedLogEvent, subjectFamily } from "../../actors/codec/rejectionCounter.ts";
import { recordingTelemetry } from "./recordingTelemetry.ts";
import { encodeMessage, messageArbitrary, testRegistry, testSubjects } from "./testMessages.ts";

const numRuns = 300;

/** Feeds `bytes` to decode on every test subject (and once unfiltered), counting rejections like a node does. */
function makeHarness() {
  const telemetry = recordingTelemetry();
  const rejections = createRejectionCounter(telemetry);
  let nonOk = 0;
  let accepted = 0;
  const feed = (bytes: Uint8Array): void => {
    for (const { subject, allowedTypes } of [...testSubjects, { subject: "haring.c1.view.commit", allowedTypes: undefined }]) {
      const result = testRegistry.decode(bytes, allowedTypes);
      if (result.ok) {
        accepted++;
        // Anything accepted is a message we could have sent ourselves.
        const again = testRegistry.encode(result.message.t, result.message.from, result.message.cid, result.message.body as never);
        if (!testRegistry.decode(again, allowedTypes).ok) throw new Error("accepted message does not survive re-encoding");
        if (allowedTypes !== undefined && !allowedTypes.includes(result.message.t)) throw new Error("unexpected type accepted");
      } else {
        nonOk++;
        if (!rejectionReasons.includes(result.reason)) throw new Error(`unknown reason ${result.reason}`);
        rejections.count(subject, result);
      }
    }
  };
  return { telemetry, rejections, feed, counts: () => ({ nonOk, accepted }) };
}

function assertEveryRejectionCountedOnce(t: ExecutionContext, harness: ReturnType<typeof makeHarness>): void {
  const { nonOk } = harness.counts();
  t.is(harness.rejections.rejectedTotal, nonOk);
  t.is(harness.telemetry.counter(messagesRejectedMetric), nonOk);
  const perKind = new Map<string, number>();
  for (const reason of rejectionReasons) {
    for (const { subject } of [...testSubjects, { subject: "haring.c1.view.commit" }]) {
      const labels = { reason, family: subjectFamily(subject) };
      if (harness.telemetry.counter(messagesRejectedMetric, labels) > 0) perKind.set(`${labels.reason}|${labels.family}`, 0);
    }
  }
  const logged = harness.telemetry.lines.filter((line) => line.event === messageRejectedLogEvent);
  for (const line of logged) {
    const kind = `${String(line.fields.reason)}|${String(line.fields.family)}`;
    perKind.set(kind, (perKind.get(kind) ?? 0) + 1);
  }
  t.true([...perKind.values()].every((times) => times === 1), "each rejection kind seen is logged exactly once");
}

test("random bytes never make decode throw, and every rejection is counted once", (t) => {
  const harness = makeHarness();
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
      harness.feed(bytes);
    }),
    { numRuns: numRuns * 3, seed: 4_242 },
  );
  assertEveryRejectionCountedOnce(t, harness);
  t.true(harness.counts().nonOk > 0);
});

test("random msgpack values, bare or in an envelope, never make decode throw", (t) => {
  const harness = makeHarness();
  const hostile = fc.anything({ withBigInt: true, withMap: true, withSet: true, withDate: true, withTypedArray: true, withNullPrototype: true });
  const enveloped = fc.record({
    v: fc.oneof(fc.constant(1), hostile),
    t: fc.oneof(fc.constantFrom(...testRegistry.types), hostile),
    from: fc.oneof(fc.constant("h1"), hostile),
    cid: fc.oneof(fc.constant(""), hostile),
    body: hostile,
  });
  fc.assert(
    fc.property(fc.oneof(hostile, enveloped), (value) => {
      let bytes: Uint8Array;
      try {
        bytes = pack(value);
      } catch {
        return; // msgpackr cannot encode every JS value (huge bigints); not decode's concern
      }
      harness.feed(bytes);
    }),
    { numRuns: numRuns * 2, seed: 99 },
  );
  assertEveryRejectionCountedOnce(t, harness);
  const reasons = new Set(harness.telemetry.lines.map((line) => line.fields.reason));
  t.true(reasons.has("invalid-body") && reasons.has("malformed"), `reasons seen: ${[...reasons].join(", ")}`);
});

test("valid messages round-trip byte for byte", (t) => {
  fc.assert(
    fc.property(messageArbitrary, (message) => {
      const bytes = encodeMessage(message);
      const result = testRegistry.decode(bytes, [message.type]);
      if (!result.ok) throw new Error(`${result.reason}: ${result.detail}`);
      if (result.message.t !== message.type || result.message.from !== message.from || result.message.cid !== message.cid) {
        throw new Error("envelope changed");
      }
      const again = testRegistry.encode(result.message.t, result.message.from, result.message.cid, result.message.body as never);
      if (Buffer.compare(again, bytes) !== 0) throw new Error("re-encoding changed the bytes");
    }),
    { numRuns, seed: 7 },
  );
  t.pass();
});

test("truncations of valid messages are rejected as truncated", (t) => {
  const harness = makeHarness();
  const reasons = new Set<RejectionReason>();
  fc.assert(
    fc.property(messageArbitrary, fc.nat(), (message, cut) => {
      const bytes = encodeMessage(message);
      const prefix = bytes.subarray(0, cut % bytes.length);
      const result = testRegistry.decode(prefix);
      if (result.ok) throw new Error("a proper prefix decoded");
      reasons.add(result.reason);
      harness.feed(prefix);
    }),
    { numRuns, seed: 11 },
  );
  t.deepEqual([...reasons], ["truncated"]);
  assertEveryRejectionCountedOnce(t, harness);
});

test("byte mutations of valid messages never throw; what still decodes is valid", (t) => {
  const harness = makeHarness();
  const mutation = fc.oneof(
    fc.record({ kind: fc.constant("set" as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
    fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
    fc.record({ kind: fc.constant("delete" as const), at: fc.nat(), byte: fc.constant(0) }),
  );
  fc.assert(
    fc.property(messageArbitrary, fc.array(mutation, { minLength: 1, maxLength: 4 }), (message, mutations) => {
      const bytes = [...encodeMessage(message)];
      for (const { kind, at, byte } of mutations) {
        const index = at % (bytes.length + (kind === "insert" ? 1 : 0));
        if (kind === "set") bytes[index] = byte;
        else if (kind === "insert") bytes.splice(index, 0, byte);
        else if (bytes.length > 1) bytes.splice(index, 1);
      }
      harness.feed(Uint8Array.from(bytes));
    }),
    { numRuns: numRuns * 2, seed: 23 },
  );
  assertEveryRejectionCountedOnce(t, harness);
  const { nonOk, accepted } = harness.counts();
  t.true(nonOk > 0, "mutations produce rejections");
  t.log(`mutated inputs: ${nonOk} rejections, ${accepted} still-valid decodes`);
});

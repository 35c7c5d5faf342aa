import fc from "fast-check";
import { nodeIdSchema } from "../../actors/codec/envelope.ts";
import { createMessageRegistry, type MessageType } from "../../actors/codec/messageCodec.ts";
import { arr, bool, bytes, discriminated, int, literal, nullable, num, obj, oneOf, optional, record, str, type Infer } from "../../actors/codec/schema.ts";

/** A registry shaped like the real protocols (heartbeats, Paxos, data multicast), for codec and actor-host tests. */
const sequence = int({ min: 0, max: 2 ** 31 });
const ballot = obj({ round: int({ min: 0, max: Number.MAX_SAFE_INTEGER }), controllerId: nodeIdSchema });
const command = discriminated("kind", [
  obj({ kind: literal("noop") }),
  obj({ kind: literal("host-failed"), hostId: nodeIdSchema, incarnation: int({ min: 0, max: 2 ** 31 }) }),
  obj({ kind: literal("vm-priority"), vmId: nodeIdSchema, priority: oneOf(["high", "medium", "low"]) }),
]);

export const testMessages = {
  "hb.ping": obj({ sequence, sentAtMs: num({ min: 0, max: 1e15 }) }),
  "hb.ack": obj({ sequence, leaseMs: int({ min: 0, max: 60_000 }), granted: bool() }),
  "paxos.prepare": obj({
    ballot,
    fromSlot: int({ min: 0, max: Number.MAX_SAFE_INTEGER }),
    accepted: arr(obj({ slot: int({ min: 0, max: Number.MAX_SAFE_INTEGER }), ballot, command }), { maxLength: 8 }),
    leaderHint: nullable(nodeIdSchema),
  }),
  "data.put": obj({
    key: str({ minLength: 1, maxLength: 32, pattern: /^[a-z0-9-]+$/ }),
    value: bytes({ maxLength: 256 }),
    labels: record(str({ minLength: 1, maxLength: 16, pattern: /^[a-z]+$/ }), str({ maxLength: 16 }), { maxEntries: 4 }),
    expectedRevision: optional(int({ min: 0, max: 2 ** 40 })),
  }),
};

export type TestMessages = typeof testMessages;
export type TestType = MessageType<TestMessages>;

export const testRegistry = createMessageRegistry(testMessages, { maxMessageBytes: 4_096 });

/** Subjects the tests listen on, each with the types expected there. */
export const testSubjects: ReadonlyArray<{ readonly subject: string; readonly allowedTypes: readonly TestType[] }> = [
  { subject: "haring.c1.hb.m1", allowedTypes: ["hb.ping", "hb.ack"] },
  { subject: "haring.c1.paxos.c2", allowedTypes: ["paxos.prepare"] },
  { subject: "haring.c1.data.h1.vms", allowedTypes: ["data.put"] },
  { subject: "_INBOX.abc.1", allowedTypes: ["hb.ack"] },
];

const nodeId = fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/);
const safeIndex = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const ballotArbitrary = fc.record({ round: safeIndex, controllerId: nodeId });
const commandArbitrary: fc.Arbitrary<Infer<typeof command>> = fc.oneof(
  fc.constant({ kind: "noop" as const }),
  fc.record({ kind: fc.constant("host-failed" as const), hostId: nodeId, incarnation: fc.integer({ min: 0, max: 2 ** 31 }) }),
  fc.record({ kind: fc.constant("vm-priority" as const), vmId: nodeId, priority: fc.constantFrom("high" as const, "medium" as const, "low" as const) }),
);

export const bodyArbitraries: { readonly [T in TestType]: fc.Arbitrary<Infer<TestMessages[T]>> } = {
  "hb.ping": fc.record({ sequence: fc.integer({ min: 0, max: 2 ** 31 }), sentAtMs: fc.double({ min: 0, max: 1e15, noNaN: true }) }),
  "hb.ack": fc.record({ sequence: fc.integer({ min: 0, max: 2 ** 31 }), leaseMs: fc.integer({ min: 0, max: 60_000 }), granted: fc.boolean() }),
  "paxos.prepare": fc.record({
    ballot: ballotArbitrary,
    fromSlot: safeIndex,
    accepted: fc.array(fc.record({ slot: safeIndex, ballot: ballotArbitrary, command: commandArbitrary }), { maxLength: 8 }),
    leaderHint: fc.option(nodeId, { nil: null }),
  }),
  "data.put": fc.record(
    {
      key: fc.stringMatching(/^[a-z0-9-]{1,32}$/),
      value: fc.uint8Array({ maxLength: 256 }),
      labels: fc.dictionary(fc.stringMatching(/^[a-z]{1,16}$/), fc.string({ maxLength: 16 }), { maxKeys: 4 }),
      expectedRevision: fc.integer({ min: 0, max: 2 ** 40 }),
    },
    { requiredKeys: ["key", "value", "labels"] },
  ),
};

export interface EncodableMessage {
  readonly type: TestType;
  readonly from: string;
  readonly cid: string;
  readonly body: unknown;
}

export const messageArbitrary: fc.Arbitrary<EncodableMessage> = fc
  .constantFrom(...(Object.keys(testMessages) as TestType[]))
  .chain((type) =>
    fc.record({
      type: fc.constant(type),
      from: nodeId,
      cid: fc.stringMatching(/^[A-Za-z0-9_.:-]{0,128}$/),
      body: bodyArbitraries[type] as fc.Arbitrary<unknown>,
    }),
  );

export function encodeMessage(message: EncodableMessage): Uint8Array {
  return testRegistry.encode(message.type, message.from, message.cid, message.body as never);
}

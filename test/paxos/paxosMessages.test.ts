import test from "ava";
import { pack } from "msgpackr";
import fc from "fast-check";
import {
  decodePaxosMessage,
  encodePaxosMessage,
  acceptOverheadBytes,
  encodeTransferMessage,
  maxWireCommandBytes,
  maxWireVotesPerMessage,
  paxosInboundRegistry,
  paxosWireConfigProblems,
  transferMessageTypes,
  type PaxosWireBody,
  type ViewPaxosMessage,
} from "../../actors/paxos/paxosMessages.ts";
import { defaultTransferLimits } from "../../machines/paxos/chunkTransfer.ts";
import { decodeRecords, encodeRecord, type ViewDurableRecord } from "../../actors/paxos/paxosRecords.ts";
import type { RejectionReason } from "../../actors/codec/messageCodec.ts";
import { validate } from "../../actors/codec/schema.ts";
import { viewCommandSchema, viewSnapshotSchema, type WireViewCommand, type WireViewSnapshot } from "../../actors/view/viewSchemas.ts";
import { minimumMirrorBytes, mirrorValue } from "../../actors/view/viewKvMirror.ts";
import { createPaxosConfig } from "../../machines/paxos/config.ts";
import type { PaxosMessageType, PrepareMessage, PromiseMessage, RejectMessage, SnapshotMessage } from "../../machines/paxos/messages.ts";
import { paxosMessageTypes } from "../../machines/paxos/messages.ts";
import { applyViewCommands } from "../../machines/view/applyViewCommands.ts";
import type { ViewCommand } from "../../machines/view/viewCommands.ts";
import { viewFromSnapshot, viewToSnapshot, type ViewSnapshot } from "../../machines/view/viewSnapshot.ts";
import { emptyView } from "../../machines/view/viewTypes.ts";

// The wire types and the machines' types agree both ways (a compile error here means the schemas drifted).
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const commandTypesAgree: Same<WireViewCommand, ViewCommand> = true;
const snapshotTypesAgree: Same<WireViewSnapshot, ViewSnapshot> = true;
const prepareAgrees: Same<PaxosWireBody<"paxos.prepare">, Omit<PrepareMessage, "type" | "from">> = true;
const promiseAgrees: Same<PaxosWireBody<"paxos.promise">, Omit<PromiseMessage<ViewCommand>, "type" | "from">> = true;
const rejectAgrees: Same<PaxosWireBody<"paxos.reject">, Omit<RejectMessage, "type" | "from">> = true;

const ballot = { round: 7, controllerId: "c2" };
const vmAdd: ViewCommand = { id: "cmd-1", type: "vm.add", vmId: "vm1", resources: { cpu: 2, memoryMiB: 4_096 }, priority: "high", rules: { affinity: [], antiAffinity: ["vm2"] }, desiredState: "running" };
const hostUp: ViewCommand = { id: "cmd-2", type: "host.up", hostId: "h1", incarnation: 3 };
const value = { kind: "commands" as const, commands: [vmAdd, hostUp] };
const view = applyViewCommands(emptyView, 0, [{ id: "r", type: "host.register", hostId: "h1", capacity: { cpu: 8, memoryMiB: 8_192 } }, vmAdd]).view;

const examples: readonly ViewPaxosMessage[] = [
  { type: "paxos.pre-vote", from: "c3", to: "c1", ballot: { round: 3, controllerId: "c3" } },
  { type: "paxos.pre-vote-reply", from: "c1", to: "c3", ballot: { round: 3, controllerId: "c3" }, granted: false, promised: ballot, leaseHolderId: "c2", leaseRemainingMs: 40.5 },
  { type: "paxos.prepare", from: "c2", to: "c1", ballot, fromSlot: 4 },
  { type: "paxos.promise", from: "c1", to: "c2", ballot, floorSlot: 2, votes: [{ slot: 4, ballot: { round: 3, controllerId: "c3" }, value }] },
  { type: "paxos.accept", from: "c2", to: "c3", ballot, slot: 5, value: { kind: "noop" }, commitIndex: 4 },
  { type: "paxos.accepted", from: "c3", to: "c2", ballot, slot: 5 },
  { type: "paxos.heartbeat", from: "c2", to: "c1", ballot, commitIndex: 6, sequence: 12 },
  { type: "paxos.heartbeat-ack", from: "c1", to: "c2", ballot, sequence: 12 },
  { type: "paxos.reject", from: "c1", to: "c3", ballot: { round: 2, controllerId: "c3" }, reason: "lease-held", promised: ballot, leaseHolderId: "c2", leaseRemainingMs: 12.5, floorSlot: 0, slot: -1 },
  { type: "paxos.rejoin-fence", from: "c3", to: "c1", attempt: 2 },
  { type: "paxos.rejoin-state", from: "c1", to: "c3", attempt: 2, fence: { round: 8, controllerId: "c2" }, floorSlot: 0, votes: [] },
  { type: "paxos.commit", from: "c2", to: "*", entries: [{ slot: 5, value }], commitIndex: 6 },
  { type: "paxos.fetch", from: "h1", to: "c1", fromSlot: 0, maxSlots: 256 },
  { type: "paxos.fetch-reply", from: "c1", to: "h1", entries: [{ slot: 0, value: { kind: "noop" } }], commitIndex: 1 },
  { type: "paxos.snapshot", from: "c1", to: "h1", throughSlot: 9, snapshot: viewToSnapshot(view), commitIndex: 9 },
  { type: "paxos.propose", from: "h1", to: "c2", command: hostUp },
  { type: "paxos.propose", from: "c1", to: "c2", command: hostUp, relay: true },
  { type: "paxos.propose-reply", from: "c1", to: "h1", commandId: "cmd-2", refusal: "not-leader", leaderHint: "c2" },
];

test("every Paxos message type survives the wire unchanged", (t) => {
  t.true(commandTypesAgree && snapshotTypesAgree && prepareAgrees && promiseAgrees && rejectAgrees);
  t.deepEqual(new Set(examples.map((message) => message.type)), new Set<PaxosMessageType>(paxosMessageTypes));
  for (const message of examples) {
    const decoded = decodePaxosMessage(encodePaxosMessage(message));
    t.true(decoded.ok, message.type);
    if (decoded.ok) t.deepEqual(decoded.message, message, message.type);
  }
  const snapshot = decodePaxosMessage(encodePaxosMessage(examples.find((message) => message.type === "paxos.snapshot")!));
  t.true(snapshot.ok && viewFromSnapshot((snapshot.message as SnapshotMessage).snapshot).ok, "a snapshot from the wire is one the view accepts");
});

test("allowed types are enforced per subject", (t) => {
  const decoded = decodePaxosMessage(encodePaxosMessage(examples[0]!), ["paxos.commit"]);
  t.false(decoded.ok);
  if (!decoded.ok) t.is(decoded.reason, "unexpected-type");
});

function envelope(type: string, body: unknown, from = "c1"): Uint8Array {
  return new Uint8Array(pack({ v: 1, t: type, from, cid: "", body }));
}

test("well-framed but wrong messages are refused with a reason, never thrown", (t) => {
  const cases: Array<[string, Uint8Array, RejectionReason]> = [
    ["an unknown field", envelope("paxos.accepted", { to: "c2", ballot, slot: 1, extra: true }), "invalid-body"],
    ["a fractional slot", envelope("paxos.accepted", { to: "c2", ballot, slot: 1.5 }), "invalid-body"],
    ["a negative slot", envelope("paxos.accept", { to: "c2", ballot, slot: -1, value: { kind: "noop" }, commitIndex: 0 }), "invalid-body"],
    ["a bigint round", envelope("paxos.accepted", { to: "c2", ballot: { round: 2n ** 60n, controllerId: "c2" }, slot: 1 }), "invalid-body"],
    ["a bad recipient", envelope("paxos.prepare", { to: "c1.>", ballot, fromSlot: 0 }), "invalid-body"],
    ["an unknown command type", envelope("paxos.propose", { to: "c1", command: { id: "x", type: "vm.explode", vmId: "vm1" } }), "invalid-body"],
    ["a command id that is too long", envelope("paxos.propose", { to: "c1", command: { ...hostUp, id: "x".repeat(129) } }), "invalid-body"],
    ["a relay mark that is not a boolean", envelope("paxos.propose", { to: "c1", command: hostUp, relay: "yes" }), "invalid-body"],
    ["an unknown reject reason", envelope("paxos.reject", { ...examples.find((message) => message.type === "paxos.reject")!, type: undefined, from: undefined, reason: "tired" }), "invalid-body"],
    ["too many votes", envelope("paxos.promise", { to: "c2", ballot, floorSlot: 0, votes: Array.from({ length: maxWireVotesPerMessage + 1 }, (_, slot) => ({ slot, ballot, value: { kind: "noop" } })) }), "invalid-body"],
    ["a snapshot of the wrong version", envelope("paxos.snapshot", { to: "h1", throughSlot: 1, snapshot: { ...viewToSnapshot(view), version: 2 }, commitIndex: 1 }), "invalid-body"],
    ["an unknown type", envelope("paxos.elect-me", { to: "c1" }), "unknown-type"],
    ["a sender that is not an id", envelope("paxos.fetch", { to: "c1", fromSlot: 0, maxSlots: 1 }, "h 1"), "invalid-envelope"],
  ];
  for (const [what, bytes, reason] of cases) {
    const decoded = decodePaxosMessage(bytes);
    t.false(decoded.ok, what);
    if (!decoded.ok) t.is(decoded.reason, reason, what);
  }
});

test("random bytes and mutated messages never throw and never decode into something invalid", (t) => {
  const valid = examples.map((message) => encodePaxosMessage(message));
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(valid.length - 1), fc.nat(400), fc.nat(255), (noise, which, position, byte) => {
      for (const bytes of [noise, (() => {
        const mutated = valid[which]!.slice();
        mutated[position % mutated.length] = byte;
        return mutated;
      })()]) {
        const decoded = decodePaxosMessage(bytes);
        if (decoded.ok) {
          // Whatever got through re-encodes: it is within every bound the schemas set.
          encodePaxosMessage(decoded.message);
        }
      }
    }),
    { numRuns: 3_000, seed: 42 },
  );
  t.pass();
});

test("a message too large for one NATS message is refused at encode", (t) => {
  const big: ViewPaxosMessage = {
    type: "paxos.commit",
    from: "c1",
    to: "*",
    commitIndex: 100,
    entries: Array.from({ length: 100 }, (_, slot) => ({ slot, value: { kind: "commands" as const, commands: Array.from({ length: 64 }, (_, index) => ({ ...vmAdd, id: `c-${slot}-${index}-${"x".repeat(100)}` })) } })),
  };
  t.throws(() => encodePaxosMessage(big), { instanceOf: RangeError, message: /exceeds maxMessageBytes/ });
});

test("the view's wire schemas accept what the view produces and bound what it would refuse", (t) => {
  t.true(validate(viewSnapshotSchema, viewToSnapshot(view)).ok);
  t.true(validate(viewCommandSchema, vmAdd).ok);
  t.false(validate(viewCommandSchema, { ...vmAdd, rules: { affinity: Array.from({ length: 65 }, (_, index) => `vm${index}`), antiAffinity: [] } }).ok);
  t.false(validate(viewCommandSchema, { ...vmAdd, resources: { cpu: -1, memoryMiB: 1 } }).ok);
});

test("durable records round-trip through the record codec; an unreadable one names itself", (t) => {
  const records: ViewDurableRecord[] = [
    { kind: "init" },
    { kind: "promise", ballot },
    { kind: "accept", slot: 3, ballot, value },
    { kind: "inherit", slot: 4, ballot, value: { kind: "noop" } },
    { kind: "floor", slot: 2 },
    { kind: "round", round: 7 },
    { kind: "snapshot", throughSlot: 2, snapshot: viewToSnapshot(view) },
  ];
  const encoded = records.map((record) => encodeRecord("c1", record));
  t.deepEqual(decodeRecords(encoded, "c1"), { ok: true, records });
  const broken = decodeRecords([encoded[0]!, envelope("record.accept", { slot: "3", ballot, value }), encoded[2]!], "c1");
  t.false(broken.ok);
  if (!broken.ok) t.is(broken.reason, "unreadable");
  if (!broken.ok) t.regex(broken.error, /record 1 of 3 is unreadable \(invalid-body: record\.accept: body\.slot/);
});

test("a log written by another controller is refused, even one record of it", (t) => {
  const own = [encodeRecord("c2", { kind: "init" }), encodeRecord("c2", { kind: "promise", ballot })];
  const foreign = decodeRecords(own, "c3");
  t.deepEqual(foreign, { ok: false, reason: "foreign", error: "record 0 of 2 was written by controller c2, not by c3: this is another controller's log" });
  const mixed = decodeRecords([...own, encodeRecord("c3", { kind: "floor", slot: 2 })], "c2");
  t.false(mixed.ok);
  if (!mixed.ok) t.regex(mixed.error, /^record 2 of 3 was written by controller c3, not by c2/);
  t.true(decodeRecords(own, "c2").ok);
});

test("the default timings fit the wire; an oversized batch or vote log does not", (t) => {
  t.deepEqual(paxosWireConfigProblems(createPaxosConfig(["c1", "c2", "c3"])), []);
  const problems = paxosWireConfigProblems(createPaxosConfig(["c1", "c2", "c3"], { maxCommandsPerBatch: 5_000, maxRetainedSlots: 8_000 }));
  t.is(problems.length, 2);
  t.regex(problems.join("\n"), /maxCommandsPerBatch/);
  t.regex(problems.join("\n"), /votes/);
  t.deepEqual(paxosWireConfigProblems(createPaxosConfig(["c1", "c2", "c3"], { maxCommandsPerBatch: 113 })), []);
  t.regex(paxosWireConfigProblems(createPaxosConfig(["c1", "c2", "c3"], { maxCommandsPerBatch: 114 })).join("\n"), /at most 113: a batch of the largest commands must fit one/);
});

test("the largest view command stays within maxWireCommandBytes, so a full batch fits one accept", (t) => {
  const id = (letter: string, index: number) => letter.repeat(64 - String(index).length) + index;
  const largest: ViewCommand = {
    id: "x".repeat(128),
    type: "vm.add",
    vmId: id("v", 0),
    resources: { cpu: 1_000_000, memoryMiB: 1_000_000 },
    priority: "medium",
    rules: { affinity: Array.from({ length: 64 }, (_, index) => id("a", index)), antiAffinity: Array.from({ length: 64 }, (_, index) => id("b", index)) },
    desiredState: "running",
  };
  const accept = (commands: ViewCommand[]) =>
    encodePaxosMessage({ type: "paxos.accept", from: "c".repeat(64), to: "d".repeat(64), ballot: { round: 2 ** 50, controllerId: "c".repeat(64) }, slot: 2 ** 50, value: { kind: "commands", commands }, commitIndex: 2 ** 50 }).length;
  const perCommand = accept([largest, largest]) - accept([largest]);
  t.true(perCommand <= maxWireCommandBytes, `${perCommand} bytes`);
  t.true(accept([largest]) - perCommand <= acceptOverheadBytes);
  const fitting = Math.floor((1_048_576 - acceptOverheadBytes) / maxWireCommandBytes);
  t.notThrows(() => accept(Array.from({ length: fitting }, (_, index) => ({ ...largest, id: `${"x".repeat(120)}${index}` }))));
});

test("the mirror's size floor never exceeds the real size of a mirrored view", (t) => {
  const views = [emptyView, view, applyViewCommands(view, 1, [{ id: "h", type: "host.register", hostId: "h2", capacity: { cpu: 0, memoryMiB: 0 } }, { id: "v", type: "vm.add", vmId: "v", resources: { cpu: 0, memoryMiB: 0 }, priority: "low", rules: { affinity: [], antiAffinity: [] }, desiredState: "stopped" }]).view];
  for (const candidate of views) t.true(minimumMirrorBytes(candidate) <= mirrorValue(candidate, 0, "c").length);
});

test("chunk traffic has its own bounded wire: a chunk and a request round-trip; oversized or mistyped ones are refused", (t) => {
  const chunk = {
    type: "paxos.chunk",
    from: "c1",
    to: "h1",
    transferId: "1a2b-3",
    carries: "paxos.snapshot",
    slot: 12,
    totalBytes: 10_000,
    chunkBytes: 8_192,
    chunkCount: 2,
    checksum: 0xdeadbeef,
    index: 1,
    data: new Uint8Array(1_808).fill(7),
  } as const;
  const decoded = paxosInboundRegistry.decode(encodeTransferMessage(chunk), transferMessageTypes);
  t.true(decoded.ok);
  if (decoded.ok) {
    const { type: _type, from: _from, data, ...header } = chunk;
    const { data: decodedData, ...decodedHeader } = decoded.message.body as typeof chunk;
    t.deepEqual(decodedHeader, header);
    t.deepEqual(new Uint8Array(decodedData), data);
    t.is(decoded.message.from, "c1");
  }
  const request = { type: "paxos.chunk-request", from: "h1", to: "c1", transferId: "1a2b-3", indices: [0, 1] } as const;
  t.true(paxosInboundRegistry.decode(encodeTransferMessage(request), transferMessageTypes).ok);
  t.throws(() => encodeTransferMessage({ ...chunk, data: new Uint8Array(defaultTransferLimits.chunkBytes + 1) }), { message: /data/ });
  t.throws(() => encodeTransferMessage({ ...chunk, carries: "paxos.accept" as never }), { message: /carries/ });
  t.throws(() => encodeTransferMessage({ ...chunk, transferId: "../etc" }), { message: /transferId/ });
  t.throws(() => encodeTransferMessage({ ...request, indices: Array.from({ length: defaultTransferLimits.chunksInFlight + 1 }, (_, index) => index) }), { message: /indices/ });
  // Protocol messages are not allowed where only chunks are, and the reverse.
  t.false(paxosInboundRegistry.decode(encodeTransferMessage(request), ["paxos.prepare"]).ok);
});

import test from "ava";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createSeededRandom } from "../../actors/seededRandom.ts";
import { crc32 as crc32InJavaScript, frameRecord, frameRecords, maxRecordBytes, parseRecords } from "../../actors/recordFraming.ts";
import { isSnapshotPacked, snapshotRecordsPerPackingSlice, unpackedSnapshotRecords } from "../../actors/paxos/snapshotRecordEncoding.ts";
import { SnapshotPrepacker, snapshotPrepackRecordsPerTick } from "../../actors/paxos/snapshotPrepacker.ts";
import { maxTransferBytes } from "../../machines/paxos/chunkTransfer.ts";
import { fastCrc32 } from "../../runtime/nativeCrc32.ts";
import { FileStorage } from "../../runtime/fileStorage.ts";
import type { SyncOutcome } from "../../actors/ports/storage.ts";
import { decodeRecords, encodeRecord, paxosRecordRegistry } from "../../actors/paxos/paxosRecords.ts";
import { applyViewCommands } from "../../machines/view/applyViewCommands.ts";
import { viewToSnapshot, type ViewSnapshot } from "../../machines/view/viewSnapshot.ts";
import { leaderElectedCommand, viewStateMachine } from "../../machines/view/viewStateMachine.ts";
import { emptyView, type View } from "../../machines/view/viewTypes.ts";
import { randomViewCommand } from "../../sim/paxos/randomViewCommand.ts";
import { encodeLargePaxosMessage } from "../../actors/paxos/largePaxosMessage.ts";
import { paxosLargeWireRegistry, paxosWireRegistry, type ViewPaxosMessage } from "../../actors/paxos/paxosMessages.ts";

function snapshotMessage(throughSlot: number, snapshot: unknown): ViewPaxosMessage {
  return { type: "paxos.snapshot", from: "c1", to: "c2", throughSlot, snapshot, commitIndex: throughSlot + 3 } as ViewPaxosMessage;
}

function wireBytes(message: ViewPaxosMessage, registry = paxosLargeWireRegistry): Uint8Array {
  const { type, from, ...body } = message;
  return registry.encode(type, from, "", body as never);
}

function registryBytes(nodeId: string, throughSlot: number, snapshot: unknown): Uint8Array {
  return paxosRecordRegistry.encode("record.snapshot", nodeId, "", { throughSlot, snapshot } as never);
}

test("a snapshot record is the registry's encoding byte for byte, snapshot after snapshot, as records change, appear and go", (t) => {
  const random = createSeededRandom(23);
  let view: View = applyViewCommands(emptyView, 0, [leaderElectedCommand("c1", 1), { id: "configure", type: "cluster.configure", hostFailuresToTolerate: 1 }]).view;
  let compared = 0;
  for (let slot = 1; slot <= 400; slot++) {
    const commands = Array.from({ length: 1 + random.int(4) }, (_, index) => randomViewCommand(random, `c${slot}-${index}`));
    if (slot % 50 === 0) commands.push({ id: `remove-${slot}`, type: "vm.remove", vmId: `vm${random.int(6)}` });
    view = applyViewCommands(view, slot, commands).view;
    // Every few slots, as a controller snapshots: some records are cached from earlier snapshots, some are new.
    if (slot % 7 !== 0) continue;
    const snapshot = viewToSnapshot(view);
    const encoded = encodeRecord("c2", { kind: "snapshot", throughSlot: slot + 1, snapshot });
    t.deepEqual(encoded, registryBytes("c2", slot + 1, snapshot), `slot ${slot}`);
    compared++;
  }
  t.true(compared > 50);
  t.true(view.vms.size > 0 && view.hosts.size > 0 && view.recentCommandCount > 100, `the view the comparisons ended on is not trivial: ${view.vms.size} VMs, ${view.hosts.size} hosts, ${view.recentCommandCount} remembered commands`);
  const last = viewToSnapshot(view);
  const read = decodeRecords([encodeRecord("c2", { kind: "snapshot", throughSlot: 401, snapshot: last })], "c2");
  t.true(read.ok);
  t.deepEqual(read.ok ? read.records : [], [{ kind: "snapshot", throughSlot: 401, snapshot: JSON.parse(JSON.stringify(last)) as ViewSnapshot }]);
});

test("a snapshot record with a bad part is refused like the registry refuses it, even with its other parts cached", (t) => {
  let view: View = applyViewCommands(emptyView, 0, [leaderElectedCommand("c1", 1)]).view;
  view = applyViewCommands(view, 1, [{ id: "a1", type: "vm.add", vmId: "vm1", resources: { cpu: 1, memoryMiB: 64 }, priority: "high", rules: { affinity: [], antiAffinity: [] }, desiredState: "running" }]).view;
  const good = viewToSnapshot(view);
  encodeRecord("c1", { kind: "snapshot", throughSlot: 2, snapshot: good });
  const badVm = { ...good, vms: [...good.vms, { ...good.vms[0]!, vmId: "vm2", priority: "urgent" }] };
  t.throws(() => registryBytes("c1", 2, badVm), { instanceOf: RangeError });
  t.throws(() => encodeRecord("c1", { kind: "snapshot", throughSlot: 2, snapshot: badVm }), { instanceOf: RangeError, message: /vms\[1\]/ });
  t.throws(() => encodeRecord("c1", { kind: "snapshot", throughSlot: 2, snapshot: { ...good, epoch: -1 } }), { instanceOf: RangeError });
  t.throws(() => encodeRecord("c1", { kind: "snapshot", throughSlot: -1, snapshot: good }), { instanceOf: RangeError });
  t.throws(() => encodeRecord("bad id!", { kind: "snapshot", throughSlot: 2, snapshot: good }), { instanceOf: RangeError });
  t.throws(() => encodeRecord("c1", { kind: "snapshot", throughSlot: 2, snapshot: { ...good, hosts: "none" } }), { instanceOf: RangeError });
  t.throws(() => encodeRecord("c1", { kind: "snapshot", throughSlot: 2, snapshot: { ...good, vms: Array.from({ length: 200_001 }, () => good.vms[0]) } }), { instanceOf: RangeError, message: /exceed/ });
  // The good one still encodes, as the registry does.
  t.deepEqual(encodeRecord("c1", { kind: "snapshot", throughSlot: 2, snapshot: good }), registryBytes("c1", 2, good));
});

test("a paxos.snapshot message is the wire registries' encoding byte for byte, however often one snapshot object is served", (t) => {
  const random = createSeededRandom(31);
  let view: View = applyViewCommands(emptyView, 0, [leaderElectedCommand("c1", 1)]).view;
  for (let slot = 1; slot <= 120; slot++) {
    view = applyViewCommands(view, slot, Array.from({ length: 1 + random.int(4) }, (_, index) => randomViewCommand(random, `w${slot}-${index}`))).view;
    if (slot % 40 !== 0) continue;
    const snapshot = viewToSnapshot(view);
    const message = snapshotMessage(slot + 1, snapshot);
    // Served twice, then written to disk, then served again: each time the registry's bytes.
    for (let round = 0; round < 2; round++) t.deepEqual(encodeLargePaxosMessage(message), wireBytes(message), `slot ${slot}, round ${round}`);
    t.deepEqual(encodeRecord("c1", { kind: "snapshot", throughSlot: slot + 1, snapshot }), registryBytes("c1", slot + 1, snapshot));
    t.deepEqual(encodeLargePaxosMessage(message), wireBytes(message, paxosWireRegistry));
  }
  const good = viewToSnapshot(view);
  encodeLargePaxosMessage(snapshotMessage(200, good));
  const badVm = { ...good, vms: [...good.vms, { ...good.vms[0]!, vmId: "vm-bad", priority: "urgent" }] };
  t.throws(() => wireBytes(snapshotMessage(200, badVm)), { instanceOf: RangeError });
  t.throws(() => encodeLargePaxosMessage(snapshotMessage(200, badVm)), { instanceOf: RangeError, message: /^encode paxos\.snapshot: body\.snapshot\.vms\[\d+\]/ });
  t.throws(() => encodeLargePaxosMessage({ ...snapshotMessage(200, good), commitIndex: -1 } as ViewPaxosMessage), { instanceOf: RangeError });
  t.throws(() => encodeLargePaxosMessage({ ...snapshotMessage(200, good), to: "not an id!" } as ViewPaxosMessage), { instanceOf: RangeError });
  // Other messages go through the registry as they are.
  const reply = { type: "paxos.propose-reply", from: "c1", to: "c2", commandId: "cmd-1", refusal: "not-leader", leaderHint: "" } as ViewPaxosMessage;
  t.deepEqual(encodeLargePaxosMessage(reply), wireBytes(reply));
  t.throws(() => encodeLargePaxosMessage({ ...reply, refusal: "busy" } as unknown as ViewPaxosMessage), { instanceOf: RangeError });
});

test("the file storage's CRC-32 is zlib's: the standard check value and random buffers agree with the JavaScript one", (t) => {
  t.is(fastCrc32(new TextEncoder().encode("123456789")), 0xcbf43926);
  t.is(crc32InJavaScript(new TextEncoder().encode("123456789")), 0xcbf43926);
  t.is(fastCrc32(new Uint8Array(0)), 0);
  for (const size of [1, 7, 64, 1_000, 100_003]) {
    const bytes = new Uint8Array(randomBytes(size));
    t.is(fastCrc32(bytes), crc32InJavaScript(bytes), `${size} bytes`);
  }
});

test("a view whose snapshot is above 16 MiB is persisted as one record, read back after a reopen, and installs the same view", async (t) => {
  // 64,000 VMs of about 270 bytes each (bench:paxos's commands): the view its throughput run left behind
  // once it reached 5,800 commits/s, which stopped controllers while records were capped at 16 MiB.
  const vmCount = 64_000;
  const padding = ["a", "b", "c"].map((letter) => `${letter}${"p".repeat(63)}`);
  let view: View = applyViewCommands(emptyView, 0, [leaderElectedCommand("c1", 1)]).view;
  for (let slot = 1, index = 0; index < vmCount; slot++) {
    const commands = [];
    for (let inSlot = 0; inSlot < 64 && index < vmCount; inSlot++, index++) {
      commands.push({ id: `add-${index}`, type: "vm.add" as const, vmId: `vm-${index}`, resources: { cpu: 1, memoryMiB: 512 }, priority: "medium" as const, rules: { affinity: [], antiAffinity: padding }, desiredState: "running" as const });
    }
    view = applyViewCommands(view, slot, commands).view;
  }
  t.is(view.vms.size, vmCount);
  // Whatever a peer may be sent as one (chunked) message must fit one record of the log too.
  t.true(maxRecordBytes >= maxTransferBytes);
  const snapshot = viewToSnapshot(view);
  const encoded = encodeRecord("c1", { kind: "snapshot", throughSlot: 1_001, snapshot });
  t.true(encoded.length > 16 * 1024 * 1024, `${encoded.length} bytes`);
  // Served to a peer in chunks: the same bytes the registry makes, from the snapshot packed for the disk.
  const message = snapshotMessage(1_001, snapshot);
  const served = encodeLargePaxosMessage(message);
  t.true(Buffer.from(served).equals(Buffer.from(wireBytes(message))), `${served.length} bytes`);
  const directory = mkdtempSync(join(tmpdir(), "haring-large-snapshot-"));
  try {
    const writer = new FileStorage(directory);
    const written = writer.open("paxos");
    written.append(encoded);
    const outcome = await new Promise<SyncOutcome>((resolve) => written.sync(resolve));
    t.deepEqual(outcome, { ok: true });
    await writer.close();
    const reader = new FileStorage(directory);
    const reopened = reader.open("paxos");
    t.is(reopened.discardedTailBytes, 0);
    const read = decodeRecords(reopened.readAll(), "c1");
    t.true(read.ok, read.ok ? "" : read.error);
    const record = read.ok ? read.records[0] : undefined;
    t.is(record?.kind, "snapshot");
    const installed = viewStateMachine.fromSnapshot(record?.kind === "snapshot" ? record.snapshot : undefined);
    t.true(installed.ok);
    t.is(installed.ok ? installed.state.vms.size : 0, vmCount);
    t.deepEqual(installed.ok ? viewToSnapshot(installed.state) : undefined, JSON.parse(JSON.stringify(snapshot)));
    await reader.close();
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test("a snapshot prepacked a slice per tick (records, then the whole) is written as a copy of its bytes, the registry's byte for byte", (t) => {
  let view: View = applyViewCommands(emptyView, 0, [leaderElectedCommand("c1", 1)]).view;
  const random = createSeededRandom(7);
  for (let slot = 1; slot <= 300; slot++) view = applyViewCommands(view, slot, Array.from({ length: 40 }, (_, index) => randomViewCommand(random, `p${slot}-${index}`))).view;
  const snapshot = viewToSnapshot(view);
  const records = snapshot.hosts.length + snapshot.vms.length + snapshot.recentCommands.length;
  t.true(records > 2 * snapshotRecordsPerPackingSlice, `${records} records, several slices`);
  t.is(unpackedSnapshotRecords(snapshot, records + 1), records, "a fresh view: nothing packed");

  const prepacker = new SnapshotPrepacker();
  prepacker.startSnapshot(snapshot);
  let ticks = 0;
  while (prepacker.active) {
    t.false(isSnapshotPacked(snapshot), "the whole is packed only at the end");
    prepacker.tick();
    ticks++;
  }
  t.true(isSnapshotPacked(snapshot));
  t.is(unpackedSnapshotRecords(snapshot, records + 1), 0);
  const recordTicks = Math.ceil((records + 1) / snapshotPrepackRecordsPerTick);
  t.true(ticks >= recordTicks + 2, `${ticks} ticks: ${recordTicks} for the records, then slices of the whole`);
  t.deepEqual(encodeRecord("c2", { kind: "snapshot", throughSlot: 301, snapshot }), registryBytes("c2", 301, snapshot));
});

test("frameRecords is frameRecord of each record, one after another, and parses back", (t) => {
  const payloads = [new Uint8Array(0), Uint8Array.of(1, 2, 3), new Uint8Array(randomBytes(70_000))];
  const image = frameRecords(payloads, fastCrc32);
  const joined = payloads.map((payload) => frameRecord(payload, fastCrc32));
  t.deepEqual(image, new Uint8Array(Buffer.concat(joined)));
  const parsed = parseRecords(image, fastCrc32);
  t.deepEqual(parsed.records.map((record) => [...record]), payloads.map((payload) => [...payload]));
  t.is(parsed.discardedTailBytes, 0);
});

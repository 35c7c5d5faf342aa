import test from "ava";
import { createSeededRandom } from "../../actors/seededRandom.ts";
import { encodeRecord, paxosRecordRegistry } from "../../actors/paxos/paxosRecords.ts";
import { SnapshotPrepacker, snapshotPrepackRecordsPerTick } from "../../actors/paxos/snapshotPrepacker.ts";
import { prepackSnapshotRecord } from "../../actors/paxos/snapshotRecordEncoding.ts";
import { applyViewCommands } from "../../machines/view/applyViewCommands.ts";
import { viewFromSnapshot, viewToSnapshot } from "../../machines/view/viewSnapshot.ts";
import { leaderElectedCommand } from "../../machines/view/viewStateMachine.ts";
import { emptyView, type View } from "../../machines/view/viewTypes.ts";
import { randomViewCommand } from "../../sim/paxos/randomViewCommand.ts";

function rebuilt(view: View): View {
  // As a snapshot read from disk or a peer: every record a new object.
  const parsed = viewFromSnapshot(JSON.parse(JSON.stringify(viewToSnapshot(view))));
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.state;
}

test("a view rebuilt from a snapshot has its records packed a bounded number per tick, and its next snapshot is the same bytes", (t) => {
  const random = createSeededRandom(7);
  let view: View = applyViewCommands(emptyView, 0, [leaderElectedCommand("c1", 1)]).view;
  for (let slot = 1; slot <= 300; slot++) view = applyViewCommands(view, slot, [randomViewCommand(random, `p${slot}`)]).view;
  for (let index = 0; index < 1_200; index++) {
    view = applyViewCommands(view, 300 + index + 1, [{ id: `add-${index}`, type: "vm.add", vmId: `vm-${index}`, resources: { cpu: 1, memoryMiB: 64 }, priority: "low", rules: { affinity: [], antiAffinity: [] }, desiredState: "stopped" }]).view;
  }
  const installed = rebuilt(view);
  const records = installed.hosts.size + installed.vms.size + installed.recentCommandCount;
  t.true(records > 3 * snapshotPrepackRecordsPerTick, `${records} records`);
  const someVm = installed.vms.get("vm-1199")!;

  const prepacker = new SnapshotPrepacker();
  prepacker.start(installed);
  prepacker.tick();
  t.is(prepacker.packed, snapshotPrepackRecordsPerTick);
  t.true(prepacker.active);
  let ticks = 1;
  while (prepacker.active) {
    prepacker.tick();
    ticks++;
  }
  t.is(prepacker.packed, records);
  t.is(ticks, Math.ceil((records + 1) / snapshotPrepackRecordsPerTick));
  t.false(prepackSnapshotRecord("vms", someVm), "packed already");

  // Packed or not, a snapshot record is the registry's encoding.
  const snapshot = viewToSnapshot(installed);
  t.deepEqual(encodeRecord("c1", { kind: "snapshot", throughSlot: 2_000, snapshot }), paxosRecordRegistry.encode("record.snapshot", "c1", "", { throughSlot: 2_000, snapshot } as never));

  // The same view again: nothing left to pack.
  prepacker.start(installed);
  while (prepacker.active) prepacker.tick();
  t.is(prepacker.packed, records);
  // A record that fails its schema is left for the snapshot that holds it to report.
  t.false(prepackSnapshotRecord("vms", { ...someVm, priority: "urgent" }));
});

/**
 * The snapshot a controller keeps to serve peers that fall behind, after it
 * recovered from its log or installed a snapshot from a peer: the same
 * content as the one it loaded, but made of its view's own record objects.
 * Those are what the background packing after a rebuild packs
 * (SnapshotPrepacker), so serving the kept snapshot copies packed bytes.
 * Before, the kept snapshot was the decoded object itself, whose records the
 * packing never saw: a recovered controller's first serve packed all of them
 * again, 339-358 ms at 60,000 VMs in the benchmark's logs, and the leader it
 * was the only other answer of stepped down.
 */
import test from "ava";
import { pack, unpack } from "msgpackr";
import { prepackSnapshotRecord } from "../../actors/paxos/snapshotRecordEncoding.ts";
import { createPaxosConfig } from "../../machines/paxos/config.ts";
import { createControllerNode } from "../../machines/paxos/controllerNode.ts";
import { createLearner, stepLearner } from "../../machines/paxos/learner.ts";
import { applyViewCommands } from "../../machines/view/applyViewCommands.ts";
import type { ViewCommand } from "../../machines/view/viewCommands.ts";
import type { ViewSnapshot } from "../../machines/view/viewSnapshot.ts";
import { leaderElectedCommand, viewStateMachine } from "../../machines/view/viewStateMachine.ts";
import { emptyView, type View, type VmRecord } from "../../machines/view/viewTypes.ts";
import { largeViewVm } from "./largeViewFixture.ts";

const config = createPaxosConfig(["c1", "c2", "c3"]);
const throughSlot = 40;

/** A snapshot as it comes off the disk or the wire: every record a new object. */
function decodedSnapshot(): ViewSnapshot {
  let view: View = applyViewCommands(emptyView, 0, [leaderElectedCommand("c1", 1)]).view;
  for (let slot = 1; slot < throughSlot; slot++) view = applyViewCommands(view, slot, [largeViewVm(slot)]).view;
  return unpack(pack(viewStateMachine.toSnapshot(view))) as ViewSnapshot;
}

function recordsOf(snapshot: unknown): { vms: readonly VmRecord[]; hosts: readonly object[]; recentCommands: readonly object[] } {
  return snapshot as { vms: readonly VmRecord[]; hosts: readonly object[]; recentCommands: readonly object[] };
}

/** Packs the view's records as the background packing after a rebuild does. */
function prepackView(view: View): void {
  for (const host of view.hosts.values()) prepackSnapshotRecord("hosts", host);
  for (const vm of view.vms.values()) prepackSnapshotRecord("vms", vm);
  for (const chunk of view.recentCommandChunks) for (const remembered of chunk) prepackSnapshotRecord("recentCommands", remembered);
}

test("recovered from its log, a controller keeps the loaded snapshot made of its view's records, so the background packing covers it", (t) => {
  const decoded = decodedSnapshot();
  const records = [{ kind: "snapshot" as const, throughSlot, snapshot: decoded }];
  const learner = createLearner<ViewCommand, View>({ learnerId: "c2", config, machine: viewStateMachine, records, nowMs: 0 });
  const kept = learner.lastSnapshot!;
  t.is(kept.throughSlot, throughSlot);
  t.deepEqual(kept.snapshot, decoded, "the same content");
  const vms = recordsOf(kept.snapshot).vms;
  t.is(vms.length, throughSlot - 1);
  t.true(vms.every((vm, index) => vm !== recordsOf(decoded).vms[index]), "none of the decoded objects");
  for (const vm of vms) t.is(learner.app.vms.get(vm.vmId), vm);

  prepackView(learner.app);
  const unpacked = [...recordsOf(kept.snapshot).vms, ...recordsOf(kept.snapshot).hosts, ...recordsOf(kept.snapshot).recentCommands].filter((record, index) => {
    const list = index < vms.length ? "vms" : index < vms.length + recordsOf(kept.snapshot).hosts.length ? "hosts" : "recentCommands";
    return prepackSnapshotRecord(list, record);
  });
  t.deepEqual(unpacked, [], "serving it packs no record again");

  // The controller node keeps the same object for its log rewrites.
  const node = createControllerNode<ViewCommand, View>({ nodeId: "c2", config, machine: viewStateMachine, records, nowMs: 0, randomSeed: 1, bootstrap: false });
  t.deepEqual(node.state.lastSnapshot?.snapshot, decoded);
  t.true(recordsOf(node.state.lastSnapshot!.snapshot).vms.every((vm) => node.state.learner.app.vms.get(vm.vmId) === vm));
});

test("installed from a peer, the snapshot persisted and kept is made of the installed view's records", (t) => {
  const decoded = decodedSnapshot();
  const empty = createLearner<ViewCommand, View>({ learnerId: "c2", config, machine: viewStateMachine, records: [], nowMs: 0 });
  const step = stepLearner(empty, { type: "message", nowMs: 5, message: { type: "paxos.snapshot", from: "c1", to: "c2", throughSlot, snapshot: decoded, commitIndex: throughSlot } });
  t.is(step.state.nextSlot, throughSlot);
  const kept = step.state.lastSnapshot!;
  t.is(step.snapshot, kept, "the record the log rewrite persists is the kept one");
  t.deepEqual(kept.snapshot, decoded, "the same content");
  const vms = recordsOf(kept.snapshot).vms;
  t.true(vms.length > 0 && vms.every((vm) => step.state.app.vms.get(vm.vmId) === vm));
  t.true(vms.every((vm, index) => vm !== recordsOf(decoded).vms[index]));
});

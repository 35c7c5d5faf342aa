import test from "ava";
import { commandProblem } from "../../machines/view/viewCommands.ts";
import { canonicalViewJson, viewFromSnapshot, viewToSnapshot } from "../../machines/view/viewSnapshot.ts";
import { emptyView, maxLeavingSourcesPerVm, type View } from "../../machines/view/viewTypes.ts";
import { viewSnapshotSchema } from "../../actors/view/viewSchemas.ts";
import { conforms } from "../../actors/codec/schema.ts";
import { viewCommandSteps } from "./viewCommandSteps.ts";

const { outcome, ok } = viewCommandSteps("leave");

/** h1, h2, h3 up at incarnation 1; a placed on h1. */
function base(): View {
  let view = emptyView;
  for (const hostId of ["h1", "h2", "h3"]) {
    view = ok(view, { type: "host.register", hostId, capacity: { cpu: 8, memoryMiB: 8_192 } }, { type: "host.up", hostId, incarnation: 1 });
  }
  return ok(
    view,
    { type: "vm.add", vmId: "a", resources: { cpu: 1, memoryMiB: 1_024 }, priority: "medium", rules: { affinity: [], antiAffinity: [] }, desiredState: "running" },
    { type: "vm.place", vmId: "a", hostId: "h1", expectedPlacementEpoch: 0 },
  );
}

const epochOf = (view: View): number => view.vms.get("a")!.placement!.epoch;

test("vm.place off a host that is up records it in leavingFrom; vm.left clears exactly that entry; a snapshot keeps it", (t) => {
  const start = base();
  t.is(start.vms.get("a")!.leavingFrom, undefined, "a first placement leaves nothing");
  let view = ok(start, { type: "vm.place", vmId: "a", hostId: "h2", expectedPlacementEpoch: epochOf(start) });
  const moved = epochOf(view);
  t.deepEqual(view.vms.get("a")!.leavingFrom, [{ hostId: "h1", incarnation: 1, placementEpoch: moved }]);
  // The marker is part of the replicated state: a snapshot (wire schema too) and the canonical JSON carry it.
  const snapshot = viewToSnapshot(view);
  t.true(conforms(viewSnapshotSchema, JSON.parse(JSON.stringify(snapshot))));
  const parsed = viewFromSnapshot(JSON.parse(JSON.stringify(snapshot)));
  t.true(parsed.ok);
  if (parsed.ok) t.is(canonicalViewJson(parsed.state), canonicalViewJson(view));
  t.regex(canonicalViewJson(view), /"leavingFrom":\[\{"hostId":"h1","incarnation":1,"placementEpoch":/);

  // Moving on again keeps h1 and adds h2.
  view = ok(view, { type: "vm.place", vmId: "a", hostId: "h3", expectedPlacementEpoch: moved });
  t.deepEqual(view.vms.get("a")!.leavingFrom, [
    { hostId: "h1", incarnation: 1, placementEpoch: moved },
    { hostId: "h2", incarnation: 1, placementEpoch: epochOf(view) },
  ]);
  // vm.left must name the host, incarnation and placement epoch of the entry.
  t.regex(outcome(view, { type: "vm.left", vmId: "a", hostId: "h1", incarnation: 2, placementEpoch: moved }).reason, /not leaving host h1 at incarnation 2/);
  t.regex(outcome(view, { type: "vm.left", vmId: "a", hostId: "h1", incarnation: 1, placementEpoch: moved + 1 }).reason, /not leaving host h1/);
  t.regex(outcome(view, { type: "vm.left", vmId: "zz", hostId: "h1", incarnation: 1, placementEpoch: moved }).reason, /unknown vm zz/);
  view = ok(view, { type: "vm.left", vmId: "a", hostId: "h1", incarnation: 1, placementEpoch: moved });
  t.deepEqual(view.vms.get("a")!.leavingFrom, [{ hostId: "h2", incarnation: 1, placementEpoch: epochOf(view) }], "vm.left keeps the placement epoch");
  // Placed back on a host it left: the entry goes (a start there finds it running if it does); the field is absent when empty.
  view = ok(view, { type: "vm.place", vmId: "a", hostId: "h2", expectedPlacementEpoch: epochOf(view) });
  t.deepEqual(view.vms.get("a")!.leavingFrom, [{ hostId: "h3", incarnation: 1, placementEpoch: epochOf(view) }]);
  view = ok(view, { type: "vm.left", vmId: "a", hostId: "h3", incarnation: 1, placementEpoch: epochOf(view) });
  t.false("leavingFrom" in view.vms.get("a")!, "absent, not empty, so views without markers are unchanged");
});

test("a failed or fenced previous host records nothing (failover waits for its lease); fenced, rejoin and remove end the entries of that incarnation", (t) => {
  let view = base();
  view = ok(view, { type: "host.failed", hostId: "h1", incarnation: 1 });
  view = ok(view, { type: "vm.place", vmId: "a", hostId: "h2", expectedPlacementEpoch: epochOf(view) });
  t.is(view.vms.get("a")!.leavingFrom, undefined);

  // Suspect and maintenance hosts may still run it.
  view = ok(view, { type: "host.suspect", hostId: "h2", incarnation: 1 });
  view = ok(view, { type: "vm.place", vmId: "a", hostId: "h3", expectedPlacementEpoch: epochOf(view) });
  t.deepEqual(view.vms.get("a")!.leavingFrom?.map((entry) => entry.hostId), ["h2"]);
  // The host failing does not end the entry (its lease may still run); fencing does.
  view = ok(view, { type: "host.failed", hostId: "h2", incarnation: 1 });
  t.deepEqual(view.vms.get("a")!.leavingFrom?.map((entry) => entry.hostId), ["h2"]);
  view = ok(view, { type: "host.fenced", hostId: "h2", incarnation: 1 });
  t.is(view.vms.get("a")!.leavingFrom, undefined);

  // Rejoin with a higher incarnation ends it too.
  view = ok(view, { type: "host.rejoin", hostId: "h1", incarnation: 2 }, { type: "host.up", hostId: "h1", incarnation: 2 });
  view = ok(view, { type: "host.maintenance-enter", hostId: "h3" });
  view = ok(view, { type: "vm.place", vmId: "a", hostId: "h1", expectedPlacementEpoch: epochOf(view) });
  t.deepEqual(view.vms.get("a")!.leavingFrom?.map((entry) => entry.hostId), ["h3"], "left a host in maintenance");
  view = ok(view, { type: "host.failed", hostId: "h3", incarnation: 1 }, { type: "host.rejoin", hostId: "h3", incarnation: 2 });
  t.is(view.vms.get("a")!.leavingFrom, undefined);

  // Remove ends it.
  view = ok(view, { type: "host.up", hostId: "h3", incarnation: 2 });
  view = ok(view, { type: "vm.place", vmId: "a", hostId: "h3", expectedPlacementEpoch: epochOf(view) });
  t.deepEqual(view.vms.get("a")!.leavingFrom?.map((entry) => `${entry.hostId}@${entry.incarnation}`), ["h1@2"]);
  view = ok(view, { type: "host.maintenance-enter", hostId: "h1" });
  view = ok(view, { type: "host.remove", hostId: "h1" });
  t.is(view.vms.get("a")!.leavingFrom, undefined);
});

test("vm.migrate-abort records a live target as a host the VM may run on; the list is bounded", (t) => {
  let view = base();
  view = ok(view, { type: "vm.migrate", vmId: "a", toHostId: "h2", expectedPlacementEpoch: epochOf(view) });
  t.is(view.vms.get("a")!.leavingFrom, undefined, "a migration source is covered by its marker");
  view = ok(view, { type: "vm.migrate-abort", vmId: "a", expectedPlacementEpoch: epochOf(view) });
  t.is(view.vms.get("a")!.placement!.hostId, "h1");
  t.deepEqual(view.vms.get("a")!.leavingFrom, [{ hostId: "h2", incarnation: 1, placementEpoch: epochOf(view) }]);
  // Done leaves no marker.
  view = ok(view, { type: "vm.left", vmId: "a", hostId: "h2", incarnation: 1, placementEpoch: epochOf(view) });
  view = ok(view, { type: "vm.migrate", vmId: "a", toHostId: "h2", expectedPlacementEpoch: epochOf(view) });
  view = ok(view, { type: "vm.migrate-done", vmId: "a", expectedPlacementEpoch: epochOf(view) });
  t.is(view.vms.get("a")!.leavingFrom, undefined);

  // Bounded: with maxLeavingSourcesPerVm unconfirmed hosts, a placement that adds one more is refused.
  let many = emptyView;
  for (let i = 0; i <= maxLeavingSourcesPerVm + 1; i++) many = ok(many, { type: "host.register", hostId: `m${i}`, capacity: { cpu: 8, memoryMiB: 8_192 } }, { type: "host.up", hostId: `m${i}`, incarnation: 0 });
  many = ok(many, { type: "vm.add", vmId: "a", resources: { cpu: 1, memoryMiB: 1 }, priority: "low", rules: { affinity: [], antiAffinity: [] }, desiredState: "running" });
  many = ok(many, { type: "vm.place", vmId: "a", hostId: "m0", expectedPlacementEpoch: 0 });
  for (let i = 1; i <= maxLeavingSourcesPerVm; i++) many = ok(many, { type: "vm.place", vmId: "a", hostId: `m${i}`, expectedPlacementEpoch: epochOf(many) });
  t.is(many.vms.get("a")!.leavingFrom!.length, maxLeavingSourcesPerVm);
  t.regex(outcome(many, { type: "vm.place", vmId: "a", hostId: `m${maxLeavingSourcesPerVm + 1}`, expectedPlacementEpoch: epochOf(many) }).reason, /not confirmed its stop/);
  t.regex(outcome(many, { type: "vm.migrate", vmId: "a", toHostId: `m${maxLeavingSourcesPerVm + 1}`, expectedPlacementEpoch: epochOf(many) }).reason, /not confirmed its stop/);
});

test("malformed vm.left commands and leavingFrom snapshots are refused with a reason, never a crash", (t) => {
  t.is(commandProblem({ id: "x", type: "vm.left", vmId: "a", hostId: "h1", incarnation: 0, placementEpoch: 1 }), null);
  t.regex(commandProblem({ id: "x", type: "vm.left", vmId: "a", hostId: "h1", incarnation: 0 }) ?? "", /missing field placementEpoch/);
  t.regex(commandProblem({ id: "x", type: "vm.left", vmId: "a", hostId: "h1", incarnation: -1, placementEpoch: 1 }) ?? "", /incarnation/);
  t.regex(commandProblem({ id: "x", type: "vm.left", vmId: "a", hostId: "h 1", incarnation: 0, placementEpoch: 1 }) ?? "", /hostId/);
  t.regex(commandProblem({ id: "x", type: "vm.left", vmId: "a", hostId: "h1", incarnation: 0, placementEpoch: 0 }) ?? "", /placementEpoch/);
  t.regex(commandProblem({ id: "x", type: "vm.left", vmId: "a", hostId: "h1", incarnation: 0, placementEpoch: 1, extra: 1 }) ?? "", /unexpected field extra/);

  const view = ok(base(), { type: "vm.place", vmId: "a", hostId: "h2", expectedPlacementEpoch: 0 + epochOf(base()) });
  const snapshot = JSON.parse(JSON.stringify(viewToSnapshot(view)));
  const withLeaving = (leavingFrom: unknown): unknown => ({ ...snapshot, vms: [{ ...snapshot.vms[0], leavingFrom }] });
  const bad: [unknown, RegExp][] = [
    [[], /must not be empty/],
    ["h1", /leavingFrom must be a list/],
    [[{ hostId: "h1", incarnation: 1 }], /placementEpoch is missing/],
    [[{ hostId: "h1", incarnation: 1, placementEpoch: 0 }], /placementEpoch must be an integer >= 1/],
    [[{ hostId: "h1", incarnation: 1, placementEpoch: 3 }, { hostId: "h1", incarnation: 1, placementEpoch: 4 }], /names a host twice/],
    [Array.from({ length: maxLeavingSourcesPerVm + 1 }, (_, i) => ({ hostId: `h${i}`, incarnation: 0, placementEpoch: 1 })), /at most/],
  ];
  for (const [leavingFrom, reason] of bad) {
    const parsed = viewFromSnapshot(withLeaving(leavingFrom));
    t.false(parsed.ok);
    if (!parsed.ok) t.regex(parsed.error, reason);
  }
});

import test from "ava";
import { vmsByHost } from "../../machines/view/applyViewCommands.ts";
import { commandProblem } from "../../machines/view/viewCommands.ts";
import { canonicalViewJson, viewFromSnapshot, viewToSnapshot } from "../../machines/view/viewSnapshot.ts";
import { emptyView, type View } from "../../machines/view/viewTypes.ts";
import { migrateRefusal, startRefusal } from "../../machines/manager/mayStartVm.ts";
import { viewCommandSteps } from "./viewCommandSteps.ts";

const { outcome, ok } = viewCommandSteps("mig");

/** h1 (maintenance) runs a; h2 and h3 up; h3 small. */
function base(): View {
  return ok(
    emptyView,
    { type: "host.register", hostId: "h1", capacity: { cpu: 8, memoryMiB: 8_192 } },
    { type: "host.up", hostId: "h1", incarnation: 0 },
    { type: "host.register", hostId: "h2", capacity: { cpu: 8, memoryMiB: 8_192 } },
    { type: "host.up", hostId: "h2", incarnation: 0 },
    { type: "host.register", hostId: "h3", capacity: { cpu: 1, memoryMiB: 1_024 } },
    { type: "host.up", hostId: "h3", incarnation: 0 },
    { type: "vm.add", vmId: "a", resources: { cpu: 2, memoryMiB: 2_048 }, priority: "medium", rules: { affinity: [], antiAffinity: [] }, desiredState: "running" },
    { type: "vm.place", vmId: "a", hostId: "h1", expectedPlacementEpoch: 0 },
    { type: "host.maintenance-enter", hostId: "h1" },
  );
}

test("vm.migrate places the VM on the target at a new epoch marked as migrating from its host; done clears the marker at the same epoch", (t) => {
  let view = base();
  const sourceEpoch = view.vms.get("a")!.placement!.epoch;
  view = ok(view, { type: "vm.migrate", vmId: "a", toHostId: "h2", expectedPlacementEpoch: sourceEpoch });
  const placement = view.vms.get("a")!.placement!;
  t.deepEqual(placement, { hostId: "h2", epoch: view.epoch, migratingFrom: "h1" });
  t.deepEqual(vmsByHost(view).get("h2"), ["a"], "its capacity counts on the target");
  t.is(vmsByHost(view).get("h1"), undefined);
  // The host side: no start on the target while the marker is set; only the source may migrate it.
  t.regex(startRefusal(view, "h2", "a", placement.epoch) ?? "", /migrating here from host h1/);
  t.is(migrateRefusal(view, "h1", "a", placement.epoch, "h2"), null);
  t.regex(migrateRefusal(view, "h3", "a", placement.epoch, "h2") ?? "", /not migrating from host h3/);
  t.regex(migrateRefusal(view, "h1", "a", placement.epoch - 1, "h2") ?? "", /placement epoch/);
  // A second migration, a removal of the source, or a stale done are refused.
  t.regex(outcome(view, { type: "vm.migrate", vmId: "a", toHostId: "h3", expectedPlacementEpoch: placement.epoch }).reason, /already migrating from host h1/);
  t.regex(outcome(ok(view, { type: "host.maintenance-exit", hostId: "h1" }), { type: "host.remove", hostId: "h1" }).reason, /up: fail, fence or drain/);
  t.regex(outcome(view, { type: "vm.migrate-done", vmId: "a", expectedPlacementEpoch: sourceEpoch }).reason, /placement epoch of vm a is/);
  // Snapshot round trip keeps the marker; canonical JSON tells the views apart.
  const parsed = viewFromSnapshot(JSON.parse(JSON.stringify(viewToSnapshot(view))));
  t.true(parsed.ok);
  if (parsed.ok) t.is(canonicalViewJson(parsed.state), canonicalViewJson(view));
  const done = ok(view, { type: "vm.migrate-done", vmId: "a", expectedPlacementEpoch: placement.epoch });
  t.deepEqual(done.vms.get("a")!.placement, { hostId: "h2", epoch: placement.epoch });
  t.not(canonicalViewJson(done), canonicalViewJson(view));
  t.is(startRefusal(done, "h2", "a", placement.epoch), null);
  t.regex(outcome(done, { type: "vm.migrate-done", vmId: "a", expectedPlacementEpoch: placement.epoch }).reason, /not migrating/);
});

test("vm.migrate-abort places the VM back on its source (in maintenance) at a new epoch; vm.place clears a marker too", (t) => {
  let view = base();
  view = ok(view, { type: "vm.migrate", vmId: "a", toHostId: "h2", expectedPlacementEpoch: view.vms.get("a")!.placement!.epoch });
  const migrating = view.vms.get("a")!.placement!.epoch;
  const aborted = ok(view, { type: "vm.migrate-abort", vmId: "a", expectedPlacementEpoch: migrating });
  t.deepEqual(aborted.vms.get("a")!.placement, { hostId: "h1", epoch: aborted.epoch });
  t.true(aborted.epoch > migrating);
  const placed = ok(view, { type: "vm.place", vmId: "a", hostId: "h2", expectedPlacementEpoch: migrating });
  t.deepEqual(placed.vms.get("a")!.placement, { hostId: "h2", epoch: placed.epoch });
});

test("vm.migrate checks the target like a placement and the source's state; malformed migration commands are refused with the reason", (t) => {
  const view = base();
  const epoch = view.vms.get("a")!.placement!.epoch;
  t.regex(outcome(view, { type: "vm.migrate", vmId: "a", toHostId: "h3", expectedPlacementEpoch: epoch }).reason, /lacks capacity/);
  t.regex(outcome(view, { type: "vm.migrate", vmId: "a", toHostId: "h1", expectedPlacementEpoch: epoch }).reason, /already placed on host h1/);
  t.regex(outcome(view, { type: "vm.migrate", vmId: "a", toHostId: "nope", expectedPlacementEpoch: epoch }).reason, /unknown host nope/);
  t.regex(outcome(view, { type: "vm.migrate", vmId: "a", toHostId: "h2", expectedPlacementEpoch: epoch + 5 }).reason, /placement epoch/);
  const failed = ok(view, { type: "host.failed", hostId: "h1", incarnation: 0 });
  t.is(failed.hosts.get("h1")!.state, "failed", "a host in maintenance can fail");
  t.regex(outcome(failed, { type: "vm.migrate", vmId: "a", toHostId: "h2", expectedPlacementEpoch: epoch }).reason, /h1 is failed/);
  t.regex(commandProblem({ id: "x", type: "vm.migrate", vmId: "a", toHostId: "h2" }) ?? "", /missing field expectedPlacementEpoch/);
  t.regex(commandProblem({ id: "x", type: "vm.migrate", vmId: "a", toHostId: "h 2", expectedPlacementEpoch: 1 }) ?? "", /toHostId/);
  t.regex(commandProblem({ id: "x", type: "vm.migrate-done", vmId: "a", expectedPlacementEpoch: -1 }) ?? "", /expectedPlacementEpoch/);
  t.regex(commandProblem({ id: "x", type: "vm.migrate-abort", vmId: "a", expectedPlacementEpoch: 1, extra: 1 }) ?? "", /unexpected field extra/);
  const snapshot = viewToSnapshot(view) as unknown as { vms: Array<{ placement: Record<string, unknown> }> };
  const bad = JSON.parse(JSON.stringify(snapshot)) as typeof snapshot;
  bad.vms[0]!.placement.migratingFrom = bad.vms[0]!.placement.hostId;
  const parsed = viewFromSnapshot(bad);
  t.false(parsed.ok);
  if (!parsed.ok) t.regex(parsed.error, /migratingFrom must differ/);
});

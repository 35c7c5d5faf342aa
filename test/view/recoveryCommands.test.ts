import test from "ava";
import { conforms } from "../../actors/codec/schema.ts";
import { viewCommandSchema, viewSnapshotSchema } from "../../actors/view/viewSchemas.ts";
import { applyViewCommands } from "../../machines/view/applyViewCommands.ts";
import { commandProblem } from "../../machines/view/viewCommands.ts";
import { canonicalViewJson, viewFromSnapshot, viewToSnapshot } from "../../machines/view/viewSnapshot.ts";
import { emptyView, maxRecordedRecoveriesPerKind, type RecoveryKind, type View } from "../../machines/view/viewTypes.ts";
import { viewCommandSteps } from "./viewCommandSteps.ts";

const { outcome, ok } = viewCommandSteps("recovery");

function base(): View {
  return ok(
    emptyView,
    { type: "host.register", hostId: "h1", capacity: { cpu: 8, memoryMiB: 8_192 } },
    { type: "host.up", hostId: "h1", incarnation: 0 },
    { type: "vm.add", vmId: "a", resources: { cpu: 1, memoryMiB: 1_024 }, priority: "medium", rules: { affinity: [], antiAffinity: [] }, desiredState: "running" },
    { type: "vm.place", vmId: "a", hostId: "h1", expectedPlacementEpoch: 0 },
  );
}

const record = (kind: RecoveryKind, atMs: number) => ({ type: "vm.record-recovery", vmId: "a", kind, atMs }) as const;

test("vm.record-recovery appends to the VM's record in commit order; a VM without any has no field", (t) => {
  const start = base();
  t.is(start.vms.get("a")!.recoveries, undefined);
  const placement = start.vms.get("a")!.placement;
  // Leaders' clocks differ: an entry with an earlier time than the last is kept, in the order committed.
  const view = ok(start, record("restart", 5_000), record("reset", 6_000), record("restart", 4_000));
  t.deepEqual(view.vms.get("a")!.recoveries, [
    { kind: "restart", atMs: 5_000 },
    { kind: "reset", atMs: 6_000 },
    { kind: "restart", atMs: 4_000 },
  ]);
  t.is(view.epoch, start.epoch + 3);
  t.deepEqual(view.vms.get("a")!.placement, placement, "recording changes no placement");
  t.is(outcome(view, { ...record("restart", 1), vmId: "zz" }).reason, "unknown vm zz");
  t.false(canonicalViewJson(start).includes("recoveries"));
});

test("the record keeps the last maxRecordedRecoveriesPerKind of each kind, so it is bounded and one kind never pushes out the other", (t) => {
  let view = ok(base(), record("reset", 1));
  for (let index = 0; index < maxRecordedRecoveriesPerKind + 5; index++) view = ok(view, record("restart", 100 + index));
  const recoveries = view.vms.get("a")!.recoveries!;
  const restarts = recoveries.filter((entry) => entry.kind === "restart").map((entry) => entry.atMs);
  t.is(restarts.length, maxRecordedRecoveriesPerKind);
  t.deepEqual(restarts, Array.from({ length: maxRecordedRecoveriesPerKind }, (_, index) => 105 + index), "the oldest restarts dropped");
  t.deepEqual(recoveries.filter((entry) => entry.kind === "reset"), [{ kind: "reset", atMs: 1 }], "the reset stays");
  for (let index = 0; index < maxRecordedRecoveriesPerKind + 1; index++) view = ok(view, record("reset", 1_000 + index));
  t.is(view.vms.get("a")!.recoveries!.length, 2 * maxRecordedRecoveriesPerKind);
  // Removing the VM drops its record.
  t.false(ok(view, { type: "vm.remove", vmId: "a" }).vms.has("a"));
});

test("the record survives a snapshot round trip (and the wire schema); hostile records are refused", (t) => {
  let view = base();
  for (let index = 0; index < maxRecordedRecoveriesPerKind; index++) view = ok(view, record("restart", index), record("reset", 10_000 + index));
  const snapshot = JSON.parse(JSON.stringify(viewToSnapshot(view)));
  t.true(conforms(viewSnapshotSchema, snapshot));
  const parsed = viewFromSnapshot(snapshot);
  t.true(parsed.ok);
  if (parsed.ok) {
    t.is(canonicalViewJson(parsed.state), canonicalViewJson(view));
    // Applying on the restored view gives what applying on the original gives.
    const command = [{ id: "after", ...record("restart", 99_999) }];
    t.is(canonicalViewJson(applyViewCommands(parsed.state, 500, command).view), canonicalViewJson(applyViewCommands(view, 500, command).view));
  }
  const withVm = (recoveries: unknown) => ({ ...snapshot, vms: snapshot.vms.map((vm: Record<string, unknown>) => ({ ...vm, recoveries })) });
  const bad: Array<[unknown, RegExp]> = [
    [[], /must not be empty/],
    [[{ kind: "restart", atMs: -1 }], /atMs must be an integer >= 0/],
    [[{ kind: "crash", atMs: 1 }], /kind must be one of restart, reset/],
    [[{ kind: "restart", atMs: 1, extra: 1 }], /unexpected field extra/],
    [Array.from({ length: maxRecordedRecoveriesPerKind + 1 }, (_, index) => ({ kind: "restart", atMs: index })), new RegExp(`more than ${maxRecordedRecoveriesPerKind} of kind restart`)],
    [Array.from({ length: 2 * maxRecordedRecoveriesPerKind + 1 }, (_, index) => ({ kind: index % 2 === 0 ? "restart" : "reset", atMs: index })), /must be a list of at most/],
  ];
  for (const [recoveries, reason] of bad) {
    const result = viewFromSnapshot(withVm(recoveries));
    t.false(result.ok, JSON.stringify(recoveries).slice(0, 80));
    t.regex(result.ok ? "" : result.error, reason);
  }
  t.false(conforms(viewSnapshotSchema, withVm(Array.from({ length: 2 * maxRecordedRecoveriesPerKind + 1 }, () => ({ kind: "reset", atMs: 1 })))));
});

test("malformed vm.record-recovery commands are refused with a reason by the view and the wire schema", (t) => {
  const good = { id: "r", type: "vm.record-recovery", vmId: "a", kind: "reset", atMs: 0 };
  t.is(commandProblem(good), null);
  t.true(conforms(viewCommandSchema, good));
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ ...good, kind: "crash" }, /kind must be restart or reset/],
    [{ ...good, atMs: -5 }, /atMs must be an integer/],
    [{ ...good, atMs: 1.5 }, /atMs must be an integer/],
    [{ ...good, vmId: "a b" }, /vmId/],
    [{ id: "r", type: "vm.record-recovery", vmId: "a", kind: "reset" }, /missing field atMs/],
    [{ ...good, placementEpoch: 3 }, /unexpected field placementEpoch/],
  ];
  const view = base();
  for (const [command, reason] of cases) {
    t.regex(commandProblem(command) ?? "", reason);
    t.false(conforms(viewCommandSchema, command));
    const applied = applyViewCommands(view, 7, [command]);
    t.is(applied.outcomes[0]!.kind, "rejected");
    t.is(applied.view.vms.get("a")!.recoveries, undefined);
  }
});

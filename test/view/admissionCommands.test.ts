import test from "ava";
import { conforms } from "../../actors/codec/schema.ts";
import { viewCommandSchema, viewSnapshotSchema } from "../../actors/view/viewSchemas.ts";
import { admitCommand } from "../../machines/view/admission.ts";
import { applyViewCommands } from "../../machines/view/applyViewCommands.ts";
import { canonicalJson } from "../../machines/view/canonicalJson.ts";
import { commandProblem, type ViewCommand } from "../../machines/view/viewCommands.ts";
import { canonicalViewJson, viewFromSnapshot, viewToSnapshot } from "../../machines/view/viewSnapshot.ts";
import { emptyView, type View } from "../../machines/view/viewTypes.ts";
import { viewCommandSteps, type Draft } from "./viewCommandSteps.ts";

const { outcome, ok } = viewCommandSteps("admit");

const add = (vmId: string, cpu: number, desiredState: "running" | "stopped" = "running"): Draft => ({
  type: "vm.add",
  vmId,
  resources: { cpu, memoryMiB: 1_024 },
  priority: "medium",
  rules: { affinity: [], antiAffinity: [] },
  desiredState,
});

const configure = (hostFailuresToTolerate: number, expectedHostFailuresToTolerate: number | null): Draft => ({ type: "cluster.configure", hostFailuresToTolerate, expectedHostFailuresToTolerate });

/** Three up hosts of 16 vCPU (48, 16 held back for F = 1: 32 usable) and 12 vCPU meant to run; F not set. */
function unconfigured(): View {
  let view = emptyView;
  for (const hostId of ["h1", "h2", "h3"]) view = ok(view, { type: "host.register", hostId, capacity: { cpu: 16, memoryMiB: 65_536 } }, { type: "host.up", hostId, incarnation: 0 });
  return ok(view, add("a", 6), add("b", 6));
}

test("cluster.configure sets F as a compare-and-set on the value the proposer saw", (t) => {
  const view = unconfigured();
  t.is(view.hostFailuresToTolerate, null);
  const set = ok(view, configure(1, null));
  t.is(set.hostFailuresToTolerate, 1);
  t.is(set.epoch, view.epoch + 1);
  // A second manager that also saw none, configured differently, does not override it.
  t.is(outcome(set, configure(2, null)).reason, "host failures to tolerate is 1, not unset");
  t.is(outcome(set, configure(1, 1)).reason, "host failures to tolerate is already 1");
  t.is(outcome(view, configure(2, 1)).reason, "host failures to tolerate is unset, not 1");
  // An operator who names the current value changes it.
  t.is(ok(set, configure(0, 1)).hostFailuresToTolerate, 0);
});

test("with F in the view, apply refuses a vm.add that would break the rule, naming the shortfall as admitCommand does", (t) => {
  const view = ok(unconfigured(), configure(1, null));
  const big: ViewCommand = { ...(add("big", 24) as Omit<ViewCommand & { type: "vm.add" }, "id">), id: "big" };
  const expected = admitCommand(view, big, 1);
  t.false(expected.admitted);
  const refused = outcome(view, add("big", 24));
  t.is(
    refused.reason,
    "vm big refused: needs 4 vCPU more to keep room for 1 host failure (3 up hosts have 48 vCPU and 192 GiB, 16 vCPU and 64 GiB held back for the largest 1, 12 vCPU and 2 GiB meant to run, this vm 24 vCPU and 1 GiB)",
  );
  t.is(refused.reason, expected.admitted ? "" : expected.error);
  t.false(refused.view.vms.has("big"));
  t.is(refused.view.epoch, view.epoch, "a refusal changes nothing");
  // A stopped VM adds no demand; powering it on is checked like an add.
  const parked = ok(view, add("parked", 24, "stopped"));
  t.regex(outcome(parked, { type: "vm.set-desired", vmId: "parked", desiredState: "running" }).reason, /^vm parked refused: needs 4 vCPU more to keep room for 1 host failure/);
  t.is(ok(parked, add("fits", 20)).vms.get("fits")!.desiredState, "running");
  // Without F (a view from before the setting, or not configured yet) every VM is admitted.
  t.true(ok(unconfigured(), add("big", 24)).vms.has("big"));
});

test("two adds racing each other: both fit alone, the second in the log is refused by apply", (t) => {
  const view = ok(unconfigured(), configure(1, null));
  // Each would be admitted against the committed view (what a leader that then crashed, and the next one, saw).
  const first: ViewCommand = { id: "race-1", type: "vm.add", vmId: "x", resources: { cpu: 12, memoryMiB: 1_024 }, priority: "high", rules: { affinity: [], antiAffinity: [] }, desiredState: "running" };
  const second: ViewCommand = { ...first, id: "race-2", vmId: "y" };
  t.true(admitCommand(view, first, 1).admitted);
  t.true(admitCommand(view, second, 1).admitted);
  // In one slot, and in consecutive slots: the same answer.
  const together = applyViewCommands(view, 100, [first, second]);
  t.deepEqual(together.outcomes[0], { kind: "committed" });
  t.regex(together.outcomes[1]!.kind === "rejected" ? together.outcomes[1]!.reason : "", /^vm y refused: needs 4 vCPU more to keep room for 1 host failure .* 24 vCPU and 3 GiB meant to run, this vm 12 vCPU and 1 GiB\)$/);
  const afterFirst = applyViewCommands(view, 100, [first]).view;
  const apart = applyViewCommands(afterFirst, 101, [second]);
  t.deepEqual(apart.outcomes, together.outcomes.slice(1));
  t.is(canonicalJson(apart.view.vms), canonicalJson(together.view.vms));
  t.deepEqual([...together.view.vms.keys()].sort(), ["a", "b", "x"]);
});

test("apply counts what the slot changed before the command: hosts that came up, VMs stopped, removed or added", (t) => {
  let view = ok(unconfigured(), configure(1, null), add("c", 20));
  // 32 usable, 32 meant to run.
  t.regex(outcome(view, add("d", 1)).reason, /needs 1 vCPU more/);
  const commands: ViewCommand[] = [
    { id: "stop-c", type: "vm.set-desired", vmId: "c", desiredState: "stopped" },
    { id: "add-d", type: "vm.add", vmId: "d", resources: { cpu: 20, memoryMiB: 1_024 }, priority: "low", rules: { affinity: [], antiAffinity: [] }, desiredState: "running" },
    { id: "add-e", type: "vm.add", vmId: "e", resources: { cpu: 1, memoryMiB: 1_024 }, priority: "low", rules: { affinity: [], antiAffinity: [] }, desiredState: "running" },
    { id: "reg-h4", type: "host.register", hostId: "h4", capacity: { cpu: 16, memoryMiB: 65_536 } },
    { id: "up-h4", type: "host.up", hostId: "h4", incarnation: 0 },
    { id: "add-f", type: "vm.add", vmId: "f", resources: { cpu: 16, memoryMiB: 1_024 }, priority: "low", rules: { affinity: [], antiAffinity: [] }, desiredState: "running" },
    { id: "remove-a", type: "vm.remove", vmId: "a" },
    { id: "add-g", type: "vm.add", vmId: "g", resources: { cpu: 6, memoryMiB: 1_024 }, priority: "low", rules: { affinity: [], antiAffinity: [] }, desiredState: "running" },
    { id: "add-h", type: "vm.add", vmId: "h", resources: { cpu: 1, memoryMiB: 1_024 }, priority: "low", rules: { affinity: [], antiAffinity: [] }, desiredState: "running" },
  ];
  const applied = applyViewCommands(view, 200, commands);
  t.deepEqual(
    applied.outcomes.map((result, index) => `${commands[index]!.id}:${result.kind}`),
    ["stop-c:committed", "add-d:committed", "add-e:rejected", "reg-h4:committed", "up-h4:committed", "add-f:committed", "remove-a:committed", "add-g:committed", "add-h:rejected"],
  );
  // The same commands one slot each give the same outcomes and VMs (the demand carried from view to view matches a count within the slot).
  const oneByOne = commands.map((command, index) => {
    const step = applyViewCommands(view, 300 + index, [command]);
    view = step.view;
    return step.outcomes[0];
  });
  t.deepEqual(oneByOne, applied.outcomes);
  t.is(canonicalJson({ hosts: view.hosts, vms: view.vms, epoch: view.epoch }), canonicalJson({ hosts: applied.view.hosts, vms: applied.view.vms, epoch: applied.view.epoch }));
  const reloaded = viewFromSnapshot(JSON.parse(JSON.stringify(viewToSnapshot(view))));
  t.true(reloaded.ok);
  if (reloaded.ok) t.deepEqual(applyViewCommands(reloaded.state, 400, [commands[8]!]).outcomes, applyViewCommands(view, 400, [commands[8]!]).outcomes);
});

test("F survives a snapshot round trip; a snapshot without it (from before it existed) loads unconfigured", (t) => {
  const configured = ok(unconfigured(), configure(2, null));
  const snapshot = JSON.parse(JSON.stringify(viewToSnapshot(configured)));
  t.is(snapshot.hostFailuresToTolerate, 2);
  t.true(conforms(viewSnapshotSchema, snapshot));
  const parsed = viewFromSnapshot(snapshot);
  t.true(parsed.ok);
  if (parsed.ok) {
    t.is(parsed.state.hostFailuresToTolerate, 2);
    t.is(canonicalViewJson(parsed.state), canonicalViewJson(configured));
    // Admission applies on the restored view just as on the original.
    t.deepEqual(applyViewCommands(parsed.state, 9, [{ id: "z", ...add("z", 10) } as ViewCommand]).outcomes, applyViewCommands(configured, 9, [{ id: "z", ...add("z", 10) } as ViewCommand]).outcomes);
  }
  t.regex(canonicalViewJson(configured), /"hostFailuresToTolerate":2/);

  const old = JSON.parse(JSON.stringify(viewToSnapshot(unconfigured())));
  t.false("hostFailuresToTolerate" in old, "an unconfigured view's snapshot is what it was before the setting existed");
  t.false(canonicalViewJson(unconfigured()).includes("hostFailuresToTolerate"));
  t.true(conforms(viewSnapshotSchema, old));
  const loaded = viewFromSnapshot(old);
  t.true(loaded.ok && loaded.state.hostFailuresToTolerate === null);

  for (const bad of [-1, 101, 1.5, "1", null]) {
    const result = viewFromSnapshot({ ...snapshot, hostFailuresToTolerate: bad });
    t.false(result.ok, `F ${JSON.stringify(bad)} refused`);
    t.false(conforms(viewSnapshotSchema, { ...snapshot, hostFailuresToTolerate: bad }));
  }
});

test("malformed cluster.configure commands are refused with a reason by the view and the wire schema", (t) => {
  const view = unconfigured();
  const good = { id: "cfg", type: "cluster.configure", hostFailuresToTolerate: 1, expectedHostFailuresToTolerate: null };
  t.is(commandProblem(good), null);
  t.true(conforms(viewCommandSchema, good));
  t.is(commandProblem({ ...good, expectedHostFailuresToTolerate: 3 }), null);
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ ...good, hostFailuresToTolerate: -1 }, /hostFailuresToTolerate must be an integer in \[0, 100\]/],
    [{ ...good, hostFailuresToTolerate: 101 }, /hostFailuresToTolerate must be an integer in \[0, 100\]/],
    [{ ...good, hostFailuresToTolerate: 0.5 }, /hostFailuresToTolerate/],
    [{ ...good, hostFailuresToTolerate: "1" }, /hostFailuresToTolerate/],
    [{ ...good, expectedHostFailuresToTolerate: -2 }, /expectedHostFailuresToTolerate \(or null\)/],
    [{ ...good, expectedHostFailuresToTolerate: undefined }, /expectedHostFailuresToTolerate/],
    [{ id: "cfg", type: "cluster.configure", hostFailuresToTolerate: 1 }, /missing field expectedHostFailuresToTolerate/],
    [{ ...good, extra: true }, /unexpected field extra/],
  ];
  for (const [command, reason] of cases) {
    const applied = applyViewCommands(view, 1, [command]);
    const result = applied.outcomes[0]!;
    t.is(result.kind, "rejected", JSON.stringify(command));
    t.regex(result.kind === "rejected" ? result.reason : "", reason);
    t.is(applied.view.hostFailuresToTolerate, null);
    t.false(conforms(viewCommandSchema, command), `the wire schema refuses ${JSON.stringify(command)}`);
  }
});

import test from "ava";
import fc from "fast-check";
import { createSeededRandom } from "../../actors/seededRandom.ts";
import type { CommandOutcome } from "../../machines/paxos/replicatedStateMachine.ts";
import { applyViewCommands } from "../../machines/view/applyViewCommands.ts";
import { canonicalJson } from "../../machines/view/canonicalJson.ts";
import { commandProblem, type ViewCommand } from "../../machines/view/viewCommands.ts";
import { canonicalViewJson, viewFromSnapshot, viewToSnapshot } from "../../machines/view/viewSnapshot.ts";
import { emptyView, maxRememberedCommands, recentCommandsOf, rememberedChunkSize, type View } from "../../machines/view/viewTypes.ts";

let counter = 0;
const nextId = (): string => `cmd-${counter++}`;

/** Applies each command in its own slot and returns the view and every outcome. */
function applyAll(view: View, commands: readonly unknown[], firstSlot = 0): { view: View; outcomes: CommandOutcome[] } {
  const outcomes: CommandOutcome[] = [];
  commands.forEach((command, index) => {
    const applied = applyViewCommands(view, firstSlot + index, [command]);
    view = applied.view;
    outcomes.push(...applied.outcomes);
  });
  return { view, outcomes };
}

function applyOk(view: View, ...commands: ViewCommand[]): View {
  const result = applyAll(view, commands);
  for (const outcome of result.outcomes) if (outcome.kind !== "committed") throw new Error(`expected committed, got ${JSON.stringify(outcome)}`);
  return result.view;
}

function reason(view: View, command: ViewCommand): string {
  const outcome = applyViewCommands(view, 0, [command]).outcomes[0]!;
  return outcome.kind === "rejected" ? outcome.reason : `not rejected: ${outcome.kind}`;
}

const host = (hostId: string, cpu = 8, memoryMiB = 8_192): ViewCommand => ({ id: nextId(), type: "host.register", hostId, capacity: { cpu, memoryMiB } });
const up = (hostId: string, incarnation = 0): ViewCommand => ({ id: nextId(), type: "host.up", hostId, incarnation });
const vm = (vmId: string, cpu = 2, rules: { affinity?: string[]; antiAffinity?: string[] } = {}): ViewCommand => ({
  id: nextId(),
  type: "vm.add",
  vmId,
  resources: { cpu, memoryMiB: 1_024 },
  priority: "high",
  rules: { affinity: rules.affinity ?? [], antiAffinity: rules.antiAffinity ?? [] },
  desiredState: "running",
});
const place = (vmId: string, hostId: string, expectedPlacementEpoch = 0): ViewCommand => ({ id: nextId(), type: "vm.place", vmId, hostId, expectedPlacementEpoch });

test("hosts move through joining, up, suspect, failed, fenced and rejoin with a higher incarnation", (t) => {
  let view = applyOk(emptyView, host("h1"));
  t.is(view.hosts.get("h1")?.state, "joining");
  view = applyOk(view, up("h1"), { id: nextId(), type: "host.suspect", hostId: "h1", incarnation: 0 });
  t.is(view.hosts.get("h1")?.state, "suspect");
  t.is(reason(view, { id: nextId(), type: "host.fenced", hostId: "h1", incarnation: 0 }), "host h1 is suspect, not failed");
  view = applyOk(view, { id: nextId(), type: "host.failed", hostId: "h1", incarnation: 0 }, { id: nextId(), type: "host.fenced", hostId: "h1", incarnation: 0 });
  t.is(reason(view, { id: nextId(), type: "host.rejoin", hostId: "h1", incarnation: 0 }), "rejoin incarnation 0 must exceed 0");
  view = applyOk(view, { id: nextId(), type: "host.rejoin", hostId: "h1", incarnation: 1 });
  t.deepEqual([view.hosts.get("h1")?.state, view.hosts.get("h1")?.incarnation], ["joining", 1]);
  // Reports about the old incarnation are stale now.
  t.is(reason(view, up("h1", 0)), "stale incarnation 0 for host h1 (now 1)");
  view = applyOk(view, up("h1", 1), { id: nextId(), type: "host.maintenance-enter", hostId: "h1" });
  t.is(view.hosts.get("h1")?.state, "maintenance");
  t.is(view.hosts.get("h1")?.stateEpoch, view.epoch);
  t.is(reason(view, up("h9")), "unknown host h9");
  t.is(reason(view, host("h1")), "host h1 already registered");
});

test("every committed command raises the epoch by one; a rejected one leaves the view unchanged", (t) => {
  const view = applyOk(emptyView, host("h1"), up("h1"));
  t.is(view.epoch, 2);
  const rejected = applyViewCommands(view, 5, [up("h1")]);
  t.is(rejected.view.epoch, 2);
  t.is(canonicalJson({ ...viewToSnapshot(rejected.view), recentCommands: [] }), canonicalJson({ ...viewToSnapshot(view), recentCommands: [] }));
  t.is(rejected.view.hosts, view.hosts, "nothing was copied");
});

test("placement checks host state, capacity, anti-affinity, affinity and the placement epoch (compare-and-set)", (t) => {
  let view = applyOk(emptyView, host("h1", 4), host("h2", 4), up("h1"), vm("a", 3), vm("b", 2), vm("c", 1, { antiAffinity: ["a"] }), vm("d", 1, { affinity: ["a"] }));
  t.is(reason(view, place("a", "h2")), "host h2 is joining, not up");
  view = applyOk(view, place("a", "h1"));
  const placed = view.vms.get("a")!.placement!;
  t.deepEqual(placed, { hostId: "h1", epoch: view.epoch });
  t.is(reason(view, place("b", "h1")), "host h1 lacks capacity for vm b");
  t.is(reason(view, place("c", "h1")), "anti-affinity: vm c may not share host h1 with vm a");
  view = applyOk(view, up("h2"));
  t.is(reason(view, place("d", "h2")), "affinity: vm d must run with vm a on host h1");
  view = applyOk(view, place("d", "h1"), place("c", "h2"));
  // A stale placement (the proposer saw an older epoch) is refused; the current one moves the VM.
  t.is(reason(view, place("a", "h2", 0)), `placement epoch of vm a is ${placed.epoch}, not 0`);
  t.is(reason(view, place("a", "h2", placed.epoch)), "anti-affinity: vm a may not share host h2 with vm c");
  view = applyOk(view, { id: nextId(), type: "vm.unplace", vmId: "c", expectedPlacementEpoch: view.vms.get("c")!.placement!.epoch }, place("a", "h2", placed.epoch));
  t.is(view.vms.get("a")!.placement!.hostId, "h2");
  t.true(view.vms.get("a")!.placement!.epoch > placed.epoch);
  t.is(reason(view, { id: nextId(), type: "host.remove", hostId: "h2" }), "host h2 is up: fail, fence or drain it first");
});

test("an outcome is the same on a learner that applied every placement and on one restored from a snapshot (view fuzz seeds 102521, 104973)", (t) => {
  // Placed in descending id order, so the order of placement and the order a restored view rebuilds its host index in differ.
  const ids = Array.from({ length: 12 }, (_, index) => `v${String(11 - index).padStart(2, "0")}`);
  let view = applyOk(emptyView, host("h1", 64, 65_536), up("h1"), ...ids.map((id) => vm(id, 1)), vm("x", 1, { antiAffinity: ids }));
  for (const id of ids) view = applyOk(view, place(id, "h1"));
  const restored = viewFromSnapshot(JSON.parse(JSON.stringify(viewToSnapshot(view))));
  if (!restored.ok) return t.fail(restored.error);
  const refusal = place("x", "h1");
  const applied = applyViewCommands(view, 40, [refusal]);
  const afterRestore = applyViewCommands(restored.state, 40, [refusal]);
  t.deepEqual(applied.outcomes, [{ kind: "rejected", reason: "anti-affinity: vm x may not share host h1 with vm v00" }], "the lowest id, whatever the order of placement");
  t.deepEqual(afterRestore.outcomes, applied.outcomes);
  t.is(canonicalViewJson(afterRestore.view), canonicalViewJson(applied.view), "the remembered refusal too");
  // The host's index stays in id order as VMs leave and come back.
  view = applyOk(view, { id: nextId(), type: "vm.unplace", vmId: "v00", expectedPlacementEpoch: view.vms.get("v00")!.placement!.epoch });
  t.is(reason(view, refusal), "anti-affinity: vm x may not share host h1 with vm v01");
  view = applyOk(view, place("v00", "h1", 0));
  t.is(reason(view, refusal), "anti-affinity: vm x may not share host h1 with vm v00");
});

test("a command id applied twice changes nothing the second time and reports the first outcome", (t) => {
  const register = host("h1");
  const first = applyViewCommands(emptyView, 3, [register]);
  const again = applyViewCommands(first.view, 8, [register, { ...register, capacity: { cpu: 1, memoryMiB: 1 } }]);
  t.deepEqual(again.outcomes, [
    { kind: "duplicate", firstSlot: 3, first: { kind: "committed" } },
    { kind: "duplicate", firstSlot: 3, first: { kind: "committed" } },
  ]);
  t.is(canonicalViewJson(again.view), canonicalViewJson(first.view));
  // A rejection is remembered too.
  const bad = up("nowhere");
  const rejected = applyViewCommands(first.view, 4, [bad]);
  t.deepEqual(applyViewCommands(rejected.view, 9, [bad]).outcomes, [{ kind: "duplicate", firstSlot: 4, first: { kind: "rejected", reason: "unknown host nowhere" } }]);
});

test("the remembered command ids are a bounded window that survives snapshots", (t) => {
  const commands: ViewCommand[] = [];
  for (let index = 0; index < maxRememberedCommands + rememberedChunkSize; index++) commands.push({ id: `c${index}`, type: "controllers.set", controllerIds: ["c1"] });
  const almost = applyViewCommands(emptyView, 0, commands.slice(0, -1)).view;
  t.is(almost.recentCommandCount, maxRememberedCommands + rememberedChunkSize - 1, "whole chunks are forgotten");
  t.true(almost.recentCommandIndex.has("c0"));
  // Split over two slots: the window carries over between views.
  const { view } = applyViewCommands(almost, 1, commands.slice(-1));
  t.is(view.recentCommandCount, maxRememberedCommands);
  t.is(recentCommandsOf(view).length, maxRememberedCommands);
  t.is(recentCommandsOf(view)[0]?.commandId, `c${rememberedChunkSize}`);
  t.false(view.recentCommandIndex.has("c0"));
  t.false(view.recentCommandIndex.has(`c${rememberedChunkSize - 1}`));
  t.is(view.recentCommandIndex.size, maxRememberedCommands);
  const restored = viewFromSnapshot(JSON.parse(JSON.stringify(viewToSnapshot(view))));
  t.true(restored.ok);
  if (restored.ok) {
    t.is(canonicalViewJson(restored.state), canonicalViewJson(view));
    t.is(applyViewCommands(restored.state, 2, [commands[rememberedChunkSize]!]).outcomes[0]?.kind, "duplicate");
    t.is(applyViewCommands(restored.state, 2, [commands[5]!]).outcomes[0]?.kind, "committed", "forgotten beyond the window");
  }
});

test("malformed commands are rejected with a reason, the same everywhere, and never throw", (t) => {
  t.is(commandProblem({ id: "x", type: "vm.place", vmId: "a", hostId: "h", expectedPlacementEpoch: -1 }), "expectedPlacementEpoch must be an integer in [0, 9007199254740991]");
  t.is(commandProblem({ id: "x", type: "host.register", hostId: "bad id", capacity: { cpu: 1, memoryMiB: 1 } }), "hostId must be 1-64 of [A-Za-z0-9_-]");
  t.is(commandProblem({ id: "x", type: "host.up", hostId: "h", incarnation: 0, extra: 1 }), "unexpected field extra");
  t.is(commandProblem({ id: "x", type: "nope" }), "unknown command type");
  t.is(commandProblem(null), "command must be an object");
  const outcome = applyViewCommands(emptyView, 0, [{ id: "x", type: "host.up", hostId: "h" }]).outcomes[0];
  t.deepEqual(outcome, { kind: "rejected", reason: "malformed command: missing field incarnation" });
  fc.assert(
    fc.property(fc.anything(), (value) => {
      const first = applyViewCommands(emptyView, 0, [value]);
      const second = applyViewCommands(emptyView, 0, [value]);
      return canonicalJson(first.outcomes) === canonicalJson(second.outcomes) && first.outcomes.length === 1;
    }),
    { seed: 11, numRuns: 500 },
  );
});

test("canonical JSON sorts keys as strings, writes Maps as objects, and is stable", (t) => {
  t.is(canonicalJson({ b: 1, a: [{ z: 1, y: 2 }], 10: "x", 2: "y" }), '{"10":"x","2":"y","a":[{"y":2,"z":1}],"b":1}');
  t.is(canonicalJson(new Map([["b", 1], ["a", 2]])), '{"a":2,"b":1}');
  t.throws(() => canonicalJson({ a: Number.NaN }));
  const one = applyOk(emptyView, host("h2"), host("h1"));
  const two = applyOk(emptyView, host("h2"), host("h1"));
  t.is(canonicalViewJson(one).replace(/cmd-\d+/g, ""), canonicalViewJson(two).replace(/cmd-\d+/g, ""));
});

function randomCommands(seed: number, count: number): ViewCommand[] {
  const random = createSeededRandom(seed);
  const commands: ViewCommand[] = [];
  for (let index = 0; index < count; index++) {
    const hostId = `h${random.int(5)}`;
    const vmId = `v${random.int(8)}`;
    const id = `s${seed}-${index}`;
    switch (random.int(8)) {
      case 0:
        commands.push({ id, type: "host.register", hostId, capacity: { cpu: 4 + random.int(8), memoryMiB: 8_192 } });
        break;
      case 1:
        commands.push({ id, type: "host.up", hostId, incarnation: random.int(2) });
        break;
      case 2:
        commands.push({ id, type: "host.failed", hostId, incarnation: 0 });
        break;
      case 3:
        commands.push({ id, type: "vm.add", vmId, resources: { cpu: 1 + random.int(4), memoryMiB: 512 }, priority: "low", rules: { affinity: [], antiAffinity: [`v${random.int(8)}`] }, desiredState: "running" });
        break;
      case 4:
        commands.push({ id, type: "vm.place", vmId, hostId, expectedPlacementEpoch: random.int(3) === 0 ? 0 : random.int(40) });
        break;
      case 5:
        commands.push({ id, type: "vm.remove", vmId });
        break;
      case 6:
        commands.push({ id, type: "host.remove", hostId });
        break;
      default:
        commands.push({ id: `s${seed}-${random.int(index + 1)}`, type: "vm.set-desired", vmId, desiredState: "stopped" });
    }
  }
  return commands;
}

test("the view is a deterministic function of the log, also across a snapshot taken midway; epochs never go back", (t) => {
  for (let seed = 1; seed <= 40; seed++) {
    const commands = randomCommands(seed, 120);
    const straight = applyAll(emptyView, commands);
    // Another learner: the first half in batches of three, a snapshot through JSON, then the rest.
    let view = emptyView;
    let lastEpoch = 0;
    const outcomes: CommandOutcome[] = [];
    for (let index = 0; index < 60; index += 3) {
      const applied = applyViewCommands(view, index, commands.slice(index, index + 3));
      t.true(applied.view.epoch >= lastEpoch, `seed ${seed}: epoch went back`);
      lastEpoch = applied.view.epoch;
      view = applied.view;
      outcomes.push(...applied.outcomes);
    }
    const restored = viewFromSnapshot(JSON.parse(JSON.stringify(viewToSnapshot(view))));
    if (!restored.ok) return t.fail(`seed ${seed}: ${restored.error}`);
    t.is(canonicalViewJson(restored.state), canonicalViewJson(view), `seed ${seed}: snapshot round trip`);
    const rest = applyAll(restored.state, commands.slice(60), 60);
    outcomes.push(...rest.outcomes);
    const strip = (items: CommandOutcome[]) => items.map((item) => (item.kind === "duplicate" ? item.first : item));
    t.deepEqual(strip(outcomes), strip(straight.outcomes), `seed ${seed}: outcomes`);
    t.is(canonicalViewJson(rest.view).replace(/"slot":\d+/g, ""), canonicalViewJson(straight.view).replace(/"slot":\d+/g, ""), `seed ${seed}: final view`);
    // Capacity is never exceeded, whatever the order of commands.
    for (const record of rest.view.hosts.values()) {
      const load = [...rest.view.vms.values()].filter((item) => item.placement?.hostId === record.hostId).reduce((sum, item) => sum + item.resources.cpu, 0);
      t.true(load <= record.capacity.cpu, `seed ${seed}: host ${record.hostId} over capacity`);
    }
  }
});

test("a snapshot from a peer is validated field by field and never throws", (t) => {
  const view = applyOk(emptyView, host("h1"), up("h1"), vm("a"), place("a", "h1"));
  const snapshot = JSON.parse(JSON.stringify(viewToSnapshot(view)));
  t.true(viewFromSnapshot(snapshot).ok);
  const broken = (mutate: (copy: { [key: string]: unknown }) => void): string => {
    const copy = JSON.parse(JSON.stringify(snapshot));
    mutate(copy);
    const parsed = viewFromSnapshot(copy);
    return parsed.ok ? "accepted" : parsed.error;
  };
  t.is(broken((copy) => (copy.version = 2)), "snapshot.version must be 1");
  t.is(broken((copy) => ((copy.hosts as { state: string }[])[0]!.state = "gone")), "snapshot.hosts[0].state must be one of joining, up, suspect, failed, fenced, maintenance");
  t.is(broken((copy) => (copy.hosts as unknown[]).push((copy.hosts as unknown[])[0])), "snapshot.hosts has h1 twice");
  t.is(broken((copy) => ((copy.vms as { placement: unknown }[])[0]!.placement = { hostId: "h1", epoch: 0 })), "snapshot.vms[0].placement.epoch must be an integer >= 1");
  t.is(broken((copy) => (copy.extra = true)), "snapshot has unexpected field extra");
  fc.assert(
    fc.property(fc.anything(), (value) => {
      viewFromSnapshot(value);
      return true;
    }),
    { seed: 5, numRuns: 500 },
  );
});

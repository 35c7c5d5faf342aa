import test from "ava";
import { pack } from "msgpackr";
import { createSeededRandom } from "../../actors/seededRandom.ts";
import type { Random } from "../../actors/ports/random.ts";
import { maxRecordBytes } from "../../actors/recordFraming.ts";
import { encodeRecord } from "../../actors/paxos/paxosRecords.ts";
import { admitCommand } from "../../machines/view/admission.ts";
import { applyViewCommands } from "../../machines/view/applyViewCommands.ts";
import { maxCommandIdLength, type ViewCommand } from "../../machines/view/viewCommands.ts";
import {
  boundedReason,
  hostRecordBytesBound,
  maxRememberedReasonLength,
  maxViewRecordBytes,
  rememberedCommandBytesBound,
  snapshotBytesBeyondRecords,
  viewAdmissionRecordBytes,
  viewRecordBytes,
  vmRecordBytesBound,
} from "../../machines/view/viewSize.ts";
import { viewFromSnapshot, viewToSnapshot, type ViewSnapshot } from "../../machines/view/viewSnapshot.ts";
import {
  maxControllers,
  maxLeavingSourcesPerVm,
  maxRecordedRecoveriesPerKind,
  maxRememberedCommands,
  maxRuleTargets,
  rememberedChunkSize,
  type HostRecord,
  type RememberedCommand,
  type View,
  type VmRecord,
} from "../../machines/view/viewTypes.ts";

const longId = (prefix: string, index: number): string => `${prefix}${index}`.padEnd(64, "x");
const largestNumber = Number.MAX_SAFE_INTEGER;

function host(hostId: string, state: HostRecord["state"] = "up"): HostRecord {
  return { hostId, state, incarnation: 1, capacity: { cpu: 1_000_000, memoryMiB: 1_000_000_000 }, stateEpoch: 1 };
}

function lightVm(vmId: string, placement: VmRecord["placement"] = null): VmRecord {
  return { vmId, desiredState: "stopped", placement, priority: "low", resources: { cpu: 0, memoryMiB: 0 }, rules: { affinity: [], antiAffinity: [] } };
}

/** A VM as large as its record can be: the longest ids, full rule lists, every host it may have left, every restart and reset. */
function largestVm(index: number): VmRecord {
  const ids = (prefix: string) => Array.from({ length: maxRuleTargets }, (_, target) => longId(`${prefix}${index}-`, target));
  return {
    vmId: longId("vm", index),
    desiredState: "running",
    placement: { hostId: longId("target", index), epoch: largestNumber, migratingFrom: longId("source", index) },
    priority: "medium",
    resources: { cpu: 1_000_000, memoryMiB: 1_000_000_000 },
    rules: { affinity: ids("a"), antiAffinity: ids("b") },
    leavingFrom: Array.from({ length: maxLeavingSourcesPerVm }, (_, entry) => ({ hostId: longId(`left${index}-`, entry), incarnation: largestNumber, placementEpoch: largestNumber })),
    recoveries: Array.from({ length: 2 * maxRecordedRecoveriesPerKind }, (_, entry) => ({ kind: entry % 2 === 0 ? ("restart" as const) : ("reset" as const), atMs: largestNumber - entry })),
  };
}

function randomVm(random: Random, index: number): VmRecord {
  const id = () => (random.int(2) === 0 ? `v${random.int(1_000)}` : longId(`v${random.int(1_000)}-`, index));
  const ids = (count: number) => [...new Set(Array.from({ length: count }, id))];
  const vm: VmRecord = {
    vmId: id(),
    desiredState: random.int(2) === 0 ? "running" : "stopped",
    placement: random.int(3) === 0 ? null : { hostId: id(), epoch: random.int(2) === 0 ? 1 : largestNumber, ...(random.int(3) === 0 ? { migratingFrom: `m${index}` } : {}) },
    priority: (["high", "medium", "low"] as const)[random.int(3)]!,
    resources: { cpu: random.int(2) === 0 ? 1 : 1_000_000, memoryMiB: random.int(2) === 0 ? 64 : 1_000_000_000 },
    rules: { affinity: ids(random.int(maxRuleTargets + 1)), antiAffinity: ids(random.int(3)) },
  };
  const leaving = Array.from({ length: random.int(maxLeavingSourcesPerVm + 1) }, (_, entry) => ({ hostId: `${id()}-${entry}`.slice(-64), incarnation: random.int(largestNumber), placementEpoch: 1 + random.int(9) }));
  const recoveries = Array.from({ length: random.int(2 * maxRecordedRecoveriesPerKind + 1) }, (_, entry) => ({ kind: entry % 2 === 0 ? ("restart" as const) : ("reset" as const), atMs: random.int(largestNumber) }));
  return { ...vm, ...(leaving.length > 0 ? { leavingFrom: leaving } : {}), ...(recoveries.length > 0 ? { recoveries } : {}) };
}

test("the bound is never below msgpack's bytes for a host or VM record, the largest ones included, and an ordinary VM's is within twice its bytes", (t) => {
  const random = createSeededRandom(5);
  for (let index = 0; index < 3_000; index++) {
    const vm = index === 0 ? largestVm(0) : randomVm(random, index);
    t.true(pack(vm).length <= vmRecordBytesBound(vm), `vm ${index}: ${pack(vm).length} bytes, bound ${vmRecordBytesBound(vm)}`);
    const someHost = { ...host(index === 0 ? longId("h", 0) : `h${index}`, (["joining", "up", "maintenance"] as const)[index % 3]), incarnation: index === 0 ? largestNumber : index };
    t.true(pack(someHost).length <= hostRecordBytesBound(someHost));
  }
  const ordinary: VmRecord = { ...lightVm("web-042", { hostId: "esx-17", epoch: 1_234 }), desiredState: "running", resources: { cpu: 4, memoryMiB: 8_192 } };
  t.true(vmRecordBytesBound(ordinary) <= 2 * pack(ordinary).length, `${vmRecordBytesBound(ordinary)} against ${pack(ordinary).length}`);
  const largestRemembered: RememberedCommand = { commandId: "€".repeat(maxCommandIdLength), slot: largestNumber, outcome: { kind: "rejected", reason: "r".repeat(maxRememberedReasonLength) } };
  t.true(pack(largestRemembered).length <= rememberedCommandBytesBound);
});

test("rejection reasons the view remembers are printable ASCII of at most maxRememberedReasonLength characters", (t) => {
  t.is(boundedReason("host h1 is up, not failed"), "host h1 is up, not failed");
  t.is(boundedReason("unexpected field caf\u00e9\u{1F600}"), "unexpected field caf???");
  const cut = boundedReason("x".repeat(maxRememberedReasonLength + 50));
  t.is(cut.length, maxRememberedReasonLength);
  t.true(cut.endsWith("~"));
  const outcome = applyViewCommands(viewOf([], []), 1, [{ id: "bad", type: "host.up", hostId: "h1", incarnation: 1, ["\u00fcbrig".repeat(20)]: 1 }]).outcomes[0];
  t.deepEqual(outcome, { kind: "rejected", reason: `malformed command: unexpected field ${"?brig".repeat(20).slice(0, 64)}` });
});

function viewOf(hosts: readonly HostRecord[], vms: readonly VmRecord[], recentCommands: readonly RememberedCommand[] = [], controllerIds: readonly string[] = ["c1"]): View {
  const snapshot: ViewSnapshot = { version: 1, epoch: 100, controllerIds, leader: { controllerId: controllerIds[0]!, round: 1 }, hosts, vms, recentCommands };
  const parsed = viewFromSnapshot(snapshot);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.state;
}

test("hosts and VMs at the largest bound with the largest remembered commands still make a snapshot that fits one log record", (t) => {
  t.true(maxViewRecordBytes + snapshotBytesBeyondRecords <= maxRecordBytes, `${maxViewRecordBytes} + ${snapshotBytesBeyondRecords} > ${maxRecordBytes}`);
  const controllerIds = Array.from({ length: maxControllers }, (_, index) => longId("c", index));
  const hosts = [host(longId("h", 0))];
  const vms: VmRecord[] = [];
  let bytes = hostRecordBytesBound(hosts[0]!);
  for (let index = 0; bytes + vmRecordBytesBound(largestVm(index)) <= maxViewRecordBytes; index++) {
    vms.push(largestVm(index));
    bytes += vmRecordBytesBound(vms[index]!);
  }
  const remembered = Array.from({ length: maxRememberedCommands + rememberedChunkSize }, (_, index): RememberedCommand => ({
    commandId: `${index}`.padEnd(maxCommandIdLength, "€"),
    slot: largestNumber,
    outcome: { kind: "rejected", reason: "r".repeat(maxRememberedReasonLength) },
  }));
  const view = viewOf(hosts, vms, remembered, controllerIds);
  t.is(viewRecordBytes(view), bytes);
  t.true(bytes > maxViewRecordBytes - vmRecordBytesBound(largestVm(0)));
  const encoded = encodeRecord(longId("c", 0), { kind: "snapshot", throughSlot: largestNumber, snapshot: viewToSnapshot(view) });
  t.true(encoded.length <= maxRecordBytes, `${encoded.length} bytes`);
  t.true(encoded.length > 0.9 * (bytes + remembered.length * (rememberedCommandBytesBound - 10)), `the snapshot holds what was meant: ${encoded.length} bytes`);
});

function randomCommand(random: Random, view: View, id: string): ViewCommand {
  const hostIds = [...view.hosts.keys()];
  const vms = [...view.vms.values()];
  const someHost = () => (hostIds.length === 0 || random.int(5) === 0 ? `h${random.int(8)}` : hostIds[random.int(hostIds.length)]!);
  const someVm = () => (vms.length === 0 ? undefined : vms[random.int(vms.length)]);
  const vm = someVm();
  const incarnation = (hostId: string) => view.hosts.get(hostId)?.incarnation ?? 0;
  switch (random.int(14)) {
    case 0:
      return { id, type: "host.register", hostId: `h${random.int(8)}`, capacity: { cpu: 64, memoryMiB: 1_000_000 } };
    case 1: {
      const hostId = someHost();
      return { id, type: "host.up", hostId, incarnation: incarnation(hostId) + random.int(2) };
    }
    case 2: {
      const hostId = someHost();
      return { id, type: random.int(2) === 0 ? "host.failed" : "host.fenced", hostId, incarnation: incarnation(hostId) };
    }
    case 3: {
      const hostId = someHost();
      return { id, type: "host.rejoin", hostId, incarnation: incarnation(hostId) + 1 };
    }
    case 4:
      return { id, type: "host.remove", hostId: someHost() };
    case 5:
    case 6: {
      const targets = Array.from({ length: random.int(4) }, () => `vm${random.int(40)}`);
      const vmId = `vm${random.int(40)}`;
      const affinity = [...new Set(targets)].filter((target) => target !== vmId);
      return { id, type: "vm.add", vmId, resources: { cpu: 1, memoryMiB: 512 }, priority: "high", rules: { affinity: random.int(2) === 0 ? affinity : [], antiAffinity: random.int(2) === 0 ? [] : affinity }, desiredState: "running" };
    }
    case 7:
      return { id, type: "vm.remove", vmId: vm?.vmId ?? "vm0" };
    case 8:
    case 9:
      return { id, type: "vm.place", vmId: vm?.vmId ?? "vm0", hostId: someHost(), expectedPlacementEpoch: vm?.placement?.epoch ?? 0 };
    case 10:
      return { id, type: "vm.migrate", vmId: vm?.vmId ?? "vm0", toHostId: someHost(), expectedPlacementEpoch: vm?.placement?.epoch ?? 1 };
    case 11:
      return { id, type: random.int(2) === 0 ? "vm.migrate-done" : "vm.migrate-abort", vmId: vm?.vmId ?? "vm0", expectedPlacementEpoch: vm?.placement?.epoch ?? 0 };
    case 12: {
      const left = vm?.leavingFrom?.[0];
      if (vm !== undefined && left !== undefined) return { id, type: "vm.left", vmId: vm.vmId, hostId: left.hostId, incarnation: left.incarnation, placementEpoch: left.placementEpoch };
      return { id, type: "vm.unplace", vmId: vm?.vmId ?? "vm0", expectedPlacementEpoch: vm?.placement?.epoch ?? 0 };
    }
    default:
      return { id, type: "vm.record-recovery", vmId: vm?.vmId ?? "vm0", kind: random.int(2) === 0 ? "restart" : "reset", atMs: random.int(1_000_000) };
  }
}

test("the bound carried from slot to slot is the sum over the view's records, through every kind of command", (t) => {
  for (const seed of [1, 2, 3]) {
    const random = createSeededRandom(seed);
    let view = viewOf([], []);
    t.is(viewRecordBytes(view), 0);
    const committedTypes = new Set<string>();
    for (let slot = 1; slot <= 3_000; slot++) {
      const commands = Array.from({ length: 1 + random.int(3) }, (_, index) => randomCommand(random, view, `s${seed}-${slot}-${index}`));
      const applied = applyViewCommands(view, slot, commands);
      applied.outcomes.forEach((outcome, index) => outcome.kind === "committed" && committedTypes.add(commands[index]!.type));
      view = applied.view;
      if (slot % 100 !== 0) continue;
      const fresh = viewOf([...view.hosts.values()], [...view.vms.values()]);
      t.is(viewRecordBytes(view), viewRecordBytes(fresh), `seed ${seed}, slot ${slot}`);
    }
    t.true(committedTypes.size >= 14, `seed ${seed}: committed ${[...committedTypes].sort().join(", ")}`);
    t.true(view.vms.size > 0 && [...view.vms.values()].some((vm) => vm.leavingFrom !== undefined || vm.recoveries !== undefined), `seed ${seed}: the view grew more than new records`);
  }
});

/**
 * A view whose hosts and VMs are at most `limit` to the bound, and within a byte of it: big VMs first,
 * then light ones, then restarts recorded on the light ones, then a longer id.
 */
function viewJustBelow(limit: number): View {
  const hosts = [host("h1"), host("h2"), host("h3")];
  const vms: VmRecord[] = [{ ...lightVm("placed", { hostId: "h1", epoch: 5 }), desiredState: "running" }];
  let bytes = hosts.reduce((sum, record) => sum + hostRecordBytesBound(record), 0) + vmRecordBytesBound(vms[0]!);
  const heavy = (index: number): VmRecord => ({ ...largestVm(index), placement: null, leavingFrom: undefined, recoveries: undefined, vmId: `big${index}-`.padEnd(12, "0") });
  const strip = (vm: VmRecord): VmRecord => JSON.parse(JSON.stringify(vm)) as VmRecord;
  for (let index = 0; bytes + vmRecordBytesBound(strip(heavy(index))) <= limit; index++) {
    vms.push(strip(heavy(index)));
    bytes += vmRecordBytesBound(vms[vms.length - 1]!);
  }
  for (let index = 0; bytes + vmRecordBytesBound(lightVm(`light${index}-`.padEnd(12, "0"))) <= limit; index++) {
    vms.push(lightVm(`light${index}-`.padEnd(12, "0")));
    bytes += vmRecordBytesBound(vms[vms.length - 1]!);
  }
  for (let index = vms.length - 1; index > 0 && vms[index]!.vmId.startsWith("light"); index--) {
    for (let count = 1; count <= maxRecordedRecoveriesPerKind; count++) {
      const grown: VmRecord = { ...vms[index]!, recoveries: Array.from({ length: count }, (_, entry) => ({ kind: "restart" as const, atMs: entry })) };
      const change = vmRecordBytesBound(grown) - vmRecordBytesBound(vms[index]!);
      if (bytes + change > limit) break;
      bytes += change;
      vms[index] = grown;
    }
    if (limit - bytes < 33) break;
  }
  // Then one light VM's id lengthened to close what is left, to within a byte.
  const last = vms.length - 1;
  for (let length = vms[last]!.vmId.length + 1; length <= 64; length++) {
    const renamed: VmRecord = { ...vms[last]!, vmId: vms[last]!.vmId.padEnd(length, "z") };
    const change = vmRecordBytesBound(renamed) - vmRecordBytesBound(vms[last]!);
    if (bytes + change > limit) break;
    bytes += change;
    vms[last] = renamed;
  }
  const view = viewOf(hosts, vms);
  if (viewRecordBytes(view) !== bytes || bytes > limit || limit - bytes > 1) throw new Error(`view at ${bytes} for a limit of ${limit}`);
  return view;
}

const addCommand = (id: string, vmId: string): ViewCommand => ({ id, type: "vm.add", vmId, resources: { cpu: 1, memoryMiB: 64 }, priority: "low", rules: { affinity: [], antiAffinity: [] }, desiredState: "stopped" });

test("beyond the admission bound a new VM or host is refused, the view unchanged, while failures and placements still commit", (t) => {
  const view = viewJustBelow(viewAdmissionRecordBytes);
  const sizeBefore = viewRecordBytes(view);
  const commands: ViewCommand[] = [
    addCommand("add", "new-vm"),
    { id: "register", type: "host.register", hostId: "h9", capacity: { cpu: 1, memoryMiB: 1 } },
    { id: "place", type: "vm.place", vmId: "placed", hostId: "h2", expectedPlacementEpoch: 5 },
    { id: "fail", type: "host.failed", hostId: "h3", incarnation: 1 },
    { id: "remove", type: "vm.remove", vmId: "big0-".padEnd(12, "0") },
    addCommand("add-again", "new-vm"),
  ];
  const applied = applyViewCommands(view, 1, commands);
  const [add, register, place, fail, remove, addAgain] = applied.outcomes;
  t.like(add, { kind: "rejected" });
  t.regex(add?.kind === "rejected" ? add.reason : "", /^view full: vm\.add of vm new-vm would bring the view's hosts and VMs to 44\.0 MiB \(bound\), beyond the 44\.0 MiB the view admits new hosts and VMs up to/);
  t.like(register, { kind: "rejected" });
  t.regex(register?.kind === "rejected" ? register.reason : "", /^view full: host\.register of host h9/);
  // Placed off an up host: the VM's record grows by the host it left, well within the room kept for that.
  t.deepEqual([place, fail, remove, addAgain], [{ kind: "committed" }, { kind: "committed" }, { kind: "committed" }, { kind: "committed" }]);
  t.is(applied.view.epoch, view.epoch + 4);
  t.true(applied.view.vms.has("new-vm"));
  t.false(applied.view.hosts.has("h9"));
  t.is(viewRecordBytes(applied.view), viewRecordBytes(viewOf([...applied.view.hosts.values()], [...applied.view.vms.values()])));
  t.true(viewRecordBytes(applied.view) < sizeBefore);
  // The leader's gate answers the operator the same before proposing.
  const gate = admitCommand(view, addCommand("add", "new-vm"), 1);
  t.like(gate, { admitted: false });
  t.is(gate.admitted ? "" : gate.error, add?.kind === "rejected" ? add.reason : "-");
  t.like(admitCommand(applied.view, addCommand("add-3", "third-vm"), 0), { admitted: true });
});

test("beyond the largest bound any command that would grow a record is refused and undone; what does not grow it commits", (t) => {
  const view = viewJustBelow(maxViewRecordBytes);
  const light = [...view.vms.values()].find((vm) => vm.vmId.startsWith("light") && vm.recoveries === undefined)!;
  const applied = applyViewCommands(view, 1, [
    { id: "place", type: "vm.place", vmId: "placed", hostId: "h2", expectedPlacementEpoch: 5 },
    { id: "migrate", type: "vm.migrate", vmId: "placed", toHostId: "h2", expectedPlacementEpoch: 5 },
    { id: "record", type: "vm.record-recovery", vmId: light.vmId, kind: "reset", atMs: 7 },
    { id: "unplace", type: "vm.unplace", vmId: "placed", expectedPlacementEpoch: 5 },
    { id: "place-light", type: "vm.place", vmId: light.vmId, hostId: "h2", expectedPlacementEpoch: 0 },
    { id: "suspect", type: "host.suspect", hostId: "h3", incarnation: 1 },
    { id: "maintenance", type: "host.maintenance-enter", hostId: "h2" },
  ]);
  const [place, migrate, record, unplace, placeLight, suspect, maintenance] = applied.outcomes;
  for (const [name, outcome] of [["place", place], ["migrate", migrate], ["record", record]] as const) {
    t.like(outcome, { kind: "rejected" }, name);
    t.regex(outcome?.kind === "rejected" ? outcome.reason : "", /^view full: vm\.[a-z-]+ of vm \S+ would bring the view's hosts and VMs to 52\.0 MiB \(bound\), beyond the 52\.0 MiB limit/, name);
  }
  // Placing an unplaced VM, taking one off a host, and host state changes are the same size to the bound.
  t.deepEqual([unplace, placeLight, suspect, maintenance], [{ kind: "committed" }, { kind: "committed" }, { kind: "committed" }, { kind: "committed" }]);
  t.is(applied.view.epoch, view.epoch + 4);
  t.deepEqual(applied.view.vms.get(light.vmId)?.recoveries, undefined);
  t.deepEqual(applied.view.vms.get(light.vmId)?.placement, { hostId: "h2", epoch: view.epoch + 2 });
  t.true(viewRecordBytes(applied.view) <= maxViewRecordBytes);
  t.is(viewRecordBytes(applied.view), viewRecordBytes(viewOf([...applied.view.hosts.values()], [...applied.view.vms.values()])));
  // The refusal is remembered like any outcome: the same id again reports it.
  const again = applyViewCommands(applied.view, 2, [{ id: "place", type: "vm.place", vmId: "placed", hostId: "h2", expectedPlacementEpoch: 5 }]).outcomes[0];
  t.like(again, { kind: "duplicate", firstSlot: 1, first: { kind: "rejected" } });
});

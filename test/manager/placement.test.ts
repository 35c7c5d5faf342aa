import test from "ava";
import { admitCommand, admitVm } from "../../machines/view/admission.ts";
import { mayStartVm, startRefusal } from "../../machines/manager/mayStartVm.ts";
import { planPlacements } from "../../machines/manager/placement.ts";
import { addVm, apply, cluster, placeOn, tryApply } from "./viewBuilder.ts";

const GiB = 1024;

function hostsOf(plan: ReturnType<typeof planPlacements>): Record<string, string> {
  return Object.fromEntries(plan.placements.map((p) => [p.vmId, p.hostId]));
}

test("capacity: a VM goes only where its CPU and memory fit, counting VMs already placed", (t) => {
  let view = cluster([["h1", 8, 16 * GiB], ["h2", 8, 16 * GiB]], addVm("big", { cpu: 6, memoryMiB: 4 * GiB }), addVm("a", { cpu: 4, memoryMiB: 4 * GiB }));
  view = apply(view, placeOn(view, "big", "h1"));
  const plan = planPlacements({ view, vmIds: ["a"] });
  t.deepEqual(hostsOf(plan), { a: "h2" });
  // Memory alone also blocks.
  const tight = cluster([["h1", 64, 4 * GiB]], addVm("m", { cpu: 1, memoryMiB: 5 * GiB }));
  const refused = planPlacements({ view: tight, vmIds: ["m"] });
  t.deepEqual(refused.placements, []);
  t.is(refused.pending[0]!.reason, "no room on 1 up host: 1 lack 1 vCPU and 5 GiB free");
});

test("reservations of placements in flight count against a host", (t) => {
  const view = cluster([["h1", 8, 64 * GiB], ["h2", 4, 64 * GiB]], addVm("a", { cpu: 4 }));
  t.deepEqual(hostsOf(planPlacements({ view, vmIds: ["a"] })), { a: "h1" });
  const plan = planPlacements({ view, vmIds: ["a"], reservations: [{ vmId: "x", hostId: "h1", resources: { cpu: 6, memoryMiB: 1 } }] });
  t.deepEqual(hostsOf(plan), { a: "h2" });
});

test("only up hosts are candidates", (t) => {
  let view = cluster([["h1", 8, 64 * GiB], ["h2", 8, 64 * GiB], ["h3", 8, 64 * GiB], ["h4", 8, 64 * GiB]], addVm("a"));
  view = apply(
    view,
    { type: "host.maintenance-enter", hostId: "h1" },
    { type: "host.suspect", hostId: "h2", incarnation: 0 },
    { type: "host.failed", hostId: "h3", incarnation: 0 },
    { type: "host.register", hostId: "h5", capacity: { cpu: 64, memoryMiB: 1_000_000 } },
  );
  t.deepEqual(hostsOf(planPlacements({ view, vmIds: ["a"] })), { a: "h4" });
  view = apply(view, { type: "host.maintenance-enter", hostId: "h4" });
  t.deepEqual(planPlacements({ view, vmIds: ["a"] }).pending, [{ vmId: "a", reason: "no host is up" }]);
});

test("priority: high before medium before low when room is short; ties by id", (t) => {
  const view = cluster([["h1", 4, 64 * GiB]], addVm("low1", { cpu: 2, priority: "low" }), addVm("med", { cpu: 2, priority: "medium" }), addVm("high", { cpu: 2, priority: "high" }), addVm("low0", { cpu: 2, priority: "low" }));
  const plan = planPlacements({ view, vmIds: ["low1", "med", "low0", "high"] });
  t.deepEqual(plan.placements.map((p) => p.vmId), ["high", "med"]);
  t.deepEqual(plan.pending.map((p) => p.vmId), ["low0", "low1"]);
});

test("anti-affinity keeps VMs apart in both directions, against placed and planned VMs", (t) => {
  let view = cluster([["h1", 16, 64 * GiB], ["h2", 16, 64 * GiB]], addVm("db1"), addVm("db2", { antiAffinity: ["db1"] }), addVm("db3", { antiAffinity: ["db1", "db2"] }));
  view = apply(view, placeOn(view, "db1", "h1"));
  // db1 names nobody, db2 names db1: the rule holds both ways.
  const plan = planPlacements({ view, vmIds: ["db2", "db3"] });
  t.deepEqual(hostsOf(plan), { db2: "h2" });
  t.is(plan.pending[0]!.reason, "no room on 2 up hosts: 2 run an anti-affinity peer");
  // And the view agrees with the plan (the command commits).
  t.true(tryApply(view, plan.placements[0]!.command).committed);
});

test("affinity: a VM follows its partner, in either direction; partners placed together follow the first", (t) => {
  let view = cluster([["h1", 16, 64 * GiB], ["h2", 16, 64 * GiB]], addVm("web"), addVm("cache", { affinity: ["web"] }), addVm("filler", { cpu: 4 }));
  view = apply(view, placeOn(view, "filler", "h1"), placeOn(view, "web", "h1"));
  // Least loaded would be h2, but cache must run with web.
  t.deepEqual(hostsOf(planPlacements({ view, vmIds: ["cache"] })), { cache: "h1" });
  // Reverse direction: web (which names nobody) must follow cache if cache is staying.
  let reverse = cluster([["h1", 16, 64 * GiB], ["h2", 16, 64 * GiB]], addVm("web"), addVm("cache", { affinity: ["web"] }), addVm("filler", { cpu: 4 }));
  reverse = apply(reverse, placeOn(reverse, "filler", "h1"), placeOn(reverse, "cache", "h1"));
  t.deepEqual(hostsOf(planPlacements({ view: reverse, vmIds: ["web"] })), { web: "h1" });
  // Both to place: they land together, and the commands commit in order.
  const fresh = cluster([["h1", 16, 64 * GiB], ["h2", 16, 64 * GiB]], addVm("web"), addVm("cache", { affinity: ["web"] }));
  const plan = planPlacements({ view: fresh, vmIds: ["web", "cache"] });
  t.is(plan.placements.length, 2);
  t.is(plan.placements[0]!.hostId, plan.placements[1]!.hostId);
  let applied = fresh;
  for (const p of plan.placements) {
    const r = tryApply(applied, p.command);
    t.true(r.committed, r.reason);
    applied = r.view;
  }
});

test("affinity with a partner on a failed host is pending with the reason", (t) => {
  let view = cluster([["h1", 16, 64 * GiB], ["h2", 16, 64 * GiB]], addVm("web"), addVm("cache", { affinity: ["web"] }));
  view = apply(view, placeOn(view, "web", "h1"), { type: "host.failed", hostId: "h1", incarnation: 0 });
  t.deepEqual(planPlacements({ view, vmIds: ["cache"] }).pending, [{ vmId: "cache", reason: "affinity: must run with vm web on host h1, which is failed" }]);
});

test("spread: least loaded after placement first, ties to the smaller host id", (t) => {
  const view = cluster([["h2", 8, 64 * GiB], ["h1", 8, 64 * GiB], ["h3", 16, 64 * GiB]], ...["a", "b", "c", "d"].map((id) => addVm(id, { cpu: 2, memoryMiB: GiB })));
  const plan = planPlacements({ view, vmIds: ["a", "b", "c", "d"] });
  // Load after placing: a → h3 (2/16 beats 2/8); b → h1 (h1, h2 and h3 all reach 0.25: smallest id); c → h2 (0.25, ties h3, smaller id); d → h3 (6/16 < 4/8).
  t.deepEqual(hostsOf(plan), { a: "h3", b: "h1", c: "h2", d: "h3" });
});

test("determinism: the same inputs in any order give the same plan", (t) => {
  const ids = Array.from({ length: 30 }, (_, i) => `vm${i}`);
  const view = cluster(
    [["h1", 16, 64 * GiB], ["h2", 12, 48 * GiB], ["h3", 20, 32 * GiB]],
    ...ids.map((id, i) => addVm(id, { cpu: 1 + (i % 3), memoryMiB: GiB * (1 + (i % 4)), priority: (["high", "medium", "low"] as const)[i % 3]!, antiAffinity: i % 5 === 0 && i > 0 ? [`vm${i - 5}`] : [] })),
  );
  const first = planPlacements({ view, vmIds: ids });
  const second = planPlacements({ view, vmIds: [...ids].reverse() });
  t.deepEqual(second, first);
  // Every planned command commits, in order, on the real view.
  let applied = view;
  for (const p of first.placements) {
    const r = tryApply(applied, p.command);
    t.true(r.committed, r.reason);
    applied = r.view;
  }
});

test("excluded hosts are skipped; unknown VMs are pending", (t) => {
  const view = cluster([["h1", 16, 64 * GiB], ["h2", 4, 64 * GiB]], addVm("a"));
  t.deepEqual(hostsOf(planPlacements({ view, vmIds: ["a"], excludedHostsByVm: new Map([["a", new Set(["h1"])]]) })), { a: "h2" });
  t.deepEqual(planPlacements({ view, vmIds: ["nope"] }).pending, [{ vmId: "nope", reason: "unknown vm nope" }]);
});

test("admission control refuses a VM that would break room for one host failure, naming the shortfall", (t) => {
  // 3 hosts × (16 vCPU, 64 GiB); reserve one host → 32 vCPU / 128 GiB usable.
  const view = cluster([["h1", 16, 64 * GiB], ["h2", 16, 64 * GiB], ["h3", 16, 64 * GiB]], addVm("a", { cpu: 24, memoryMiB: 112 * GiB }), addVm("off", { cpu: 100, memoryMiB: 1000 * GiB, desired: "stopped" }));
  t.deepEqual(admitVm(view, "b", { cpu: 8, memoryMiB: 16 * GiB }, 1), { admitted: true });
  const refused = admitVm(view, "b", { cpu: 16, memoryMiB: 32 * GiB }, 1);
  t.false(refused.admitted);
  if (!refused.admitted) {
    t.deepEqual(refused.shortfall, { cpu: 8, memoryMiB: 16 * GiB });
    t.true(refused.error.startsWith("vm b refused: needs 8 vCPU and 16 GiB more to keep room for 1 host failure"), refused.error);
  }
  // With F = 0 the same VM fits.
  t.deepEqual(admitVm(view, "b", { cpu: 16, memoryMiB: 32 * GiB }, 0), { admitted: true });
  // Powering on the stopped giant is refused; a vm.add of a stopped VM is admitted.
  const powerOn = admitCommand(view, { id: "x", type: "vm.set-desired", vmId: "off", desiredState: "running" }, 1);
  t.false(powerOn.admitted);
  t.true(admitCommand(view, { id: "y", type: "vm.add", vmId: "c", resources: { cpu: 999, memoryMiB: 1 }, priority: "low", rules: { affinity: [], antiAffinity: [] }, desiredState: "stopped" }, 1).admitted);
});

test("admission control refuses everything when F hosts are all the up hosts; down hosts give no room", (t) => {
  let view = cluster([["h1", 16, 64 * GiB], ["h2", 16, 64 * GiB]]);
  t.true(admitVm(view, "a", { cpu: 1, memoryMiB: 1 }, 1).admitted);
  view = apply(view, { type: "host.failed", hostId: "h2", incarnation: 0 });
  const refused = admitVm(view, "a", { cpu: 1, memoryMiB: 1 }, 1);
  t.false(refused.admitted);
  if (!refused.admitted) t.is(refused.error, "vm a refused: 1 up host cannot keep room for 1 host failure");
});

test("mayStartVm: only the placed host, at the current placement epoch, while up and the VM meant to run", (t) => {
  let view = cluster([["h1", 16, 64 * GiB], ["h2", 16, 64 * GiB]], addVm("a"));
  view = apply(view, placeOn(view, "a", "h1"));
  const oldEpoch = view.vms.get("a")!.placement!.epoch;
  t.true(mayStartVm(view, "h1", "a", oldEpoch));
  t.false(mayStartVm(view, "h2", "a", oldEpoch));
  // h1 fails, the VM moves to h2; h1 rejoins with a new incarnation and must not start it at the old epoch.
  view = apply(view, { type: "host.failed", hostId: "h1", incarnation: 0 });
  view = apply(view, placeOn(view, "a", "h2"), { type: "host.rejoin", hostId: "h1", incarnation: 1 }, { type: "host.up", hostId: "h1", incarnation: 1 });
  t.is(startRefusal(view, "h1", "a", oldEpoch), "vm a is placed on host h2");
  const newEpoch = view.vms.get("a")!.placement!.epoch;
  t.true(mayStartVm(view, "h2", "a", newEpoch));
  t.is(startRefusal(view, "h2", "a", oldEpoch), `placement epoch of vm a is ${newEpoch}, not ${oldEpoch}`);
  t.is(startRefusal(view, "h1", "a", newEpoch, 0), "host h1 runs incarnation 0, the view has 1");
  view = apply(view, { type: "vm.set-desired", vmId: "a", desiredState: "stopped" });
  t.is(startRefusal(view, "h2", "a", newEpoch), "vm a is meant to be stopped");
});

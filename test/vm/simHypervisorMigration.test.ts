import test from "ava";
import type { Hypervisor, HypervisorOutcome } from "../../actors/ports/hypervisor.ts";
import { maxSimMigrationCopyMs, SimHypervisors } from "../../sim/simHypervisor.ts";
import { SimWorld } from "../../sim/world.ts";

const vm = { vmId: "vm1", virtualization: "full", vcpus: 2, memoryMiB: 4_096 } as const;
/** 100 ms + 250 ms per GiB, then 20 ms of switchover. */
const copyMs = 100 + 4 * 250;

function migrationWorld(liveHosts: readonly string[] = ["h1", "h2"]) {
  const fleet = new SimHypervisors();
  for (const hostId of liveHosts) fleet.setLiveMigration(hostId, true);
  const world = new SimWorld({ seed: 1, clusterId: "t", extraPorts: (context) => ({ hypervisor: fleet.hypervisorFor(context) }) });
  const hypervisors = new Map<string, Hypervisor>();
  for (const hostId of ["h1", "h2", "h3"]) {
    world.addNode(hostId, (ports) => {
      hypervisors.set(hostId, ports.hypervisor!);
      return { stop: () => {} };
    });
  }
  fleet.placeVm("h1", vm);
  /** Every moment the VM's active hosts change, with the hosts. */
  const seen: string[][] = [];
  fleet.registry.onRecord((record) => {
    if (record.vmId === vm.vmId) seen.push([...fleet.registry.activeHosts(vm.vmId)]);
  });
  const migrate = (target = "h2"): { outcome: () => HypervisorOutcome<void> | undefined } => {
    let outcome: HypervisorOutcome<void> | undefined;
    let inside = true;
    hypervisors.get("h1")!.migrate!(vm.vmId, target, (result) => {
      if (inside) throw new Error("callback inside the call");
      outcome = result;
    });
    inside = false;
    return { outcome: () => outcome };
  };
  return { world, fleet, hv: (hostId: string) => hypervisors.get(hostId)!, migrate, seen };
}

test("a live migration keeps the VM running on the source during the copy, then it runs on the target and is gone from the source; never active on both", (t) => {
  const { world, fleet, hv, migrate, seen } = migrationWorld();
  t.true(hv("h1").supportsLiveMigration);
  t.false(hv("h3").supportsLiveMigration);
  const cpuBefore = fleet.vm("h1", "vm1")!.cpuTimeMs;
  const running = migrate();
  world.runFor(copyMs - 10);
  t.deepEqual(fleet.registry.activeHosts("vm1"), ["h1"], "still on the source during the copy");
  t.is(fleet.vm("h1", "vm1")!.state, "running");
  world.runFor(100);
  t.deepEqual(running.outcome(), { ok: true, value: undefined });
  t.deepEqual(fleet.registry.activeHosts("vm1"), ["h2"]);
  t.is(fleet.vm("h1", "vm1"), undefined, "undefined on the source");
  t.true(fleet.vm("h2", "vm1")!.cpuTimeMs > cpuBefore, "cpu time carries over");
  t.true(seen.every((hosts) => hosts.length <= 1), "never on two hosts");
  t.deepEqual(fleet.registry.overlaps(), []);
  t.deepEqual(fleet.registry.history().slice(-2).map((record) => `${record.hostId}${record.active ? "+" : "-"}${record.cause}`), ["h1-migrate-out", "h2+migrate-in"]);
});

test("a crash of the target, a partition between the hosts, or the VM stopped on the source aborts the migration; the VM stays on the source", (t) => {
  for (const fault of ["crash-target", "partition", "stop-source"] as const) {
    const { world, fleet, hv, migrate } = migrationWorld();
    const running = migrate();
    world.runFor(copyMs / 2);
    if (fault === "crash-target") world.crash("h2");
    else if (fault === "partition") world.fabric.partition([["h1"], ["h2", "h3"]]);
    else hv("h1").stop("vm1", true, () => undefined);
    world.runFor(copyMs + 100);
    const outcome = running.outcome();
    t.false(outcome?.ok ?? true, fault);
    if (outcome !== undefined && !outcome.ok) t.regex(outcome.error, /^migration of vm vm1 to h2 aborted: /, fault);
    t.deepEqual(fleet.registry.activeHosts("vm1"), fault === "stop-source" ? [] : ["h1"], fault);
    t.is(fleet.vm("h2", "vm1"), undefined, fault);
    t.deepEqual(fleet.registry.overlaps(), [], fault);
  }
});

test("a crash of the source during the copy: the VM dies with it and the migration's answer is lost with the agent", (t) => {
  const { world, fleet, migrate } = migrationWorld();
  const running = migrate();
  world.runFor(copyMs / 2);
  world.crash("h1");
  world.runFor(copyMs + 100);
  t.is(running.outcome(), undefined);
  t.deepEqual(fleet.registry.activeHosts("vm1"), []);
  t.is(fleet.vm("h2", "vm1"), undefined);
});

test("refused: a target without live migration, an unknown target, the host itself, a VM not running; the copy time is bounded", (t) => {
  const { world, fleet, hv } = migrationWorld(["h1", "h2"]);
  const outcomeOf = (target: string, vmId = "vm1"): HypervisorOutcome<void> | undefined => {
    let outcome: HypervisorOutcome<void> | undefined;
    hv("h1").migrate!(vmId, target, (result) => (outcome = result));
    world.runFor(20);
    return outcome;
  };
  const reason = (outcome: HypervisorOutcome<void> | undefined): string => (outcome === undefined ? "none" : outcome.ok ? "ok" : outcome.reason);
  t.is(reason(outcomeOf("h3")), "unsupported");
  t.is(reason(outcomeOf("nope")), "invalid");
  t.is(reason(outcomeOf("h1")), "invalid");
  t.is(reason(outcomeOf("h2", "missing")), "not-found");
  fleet.placeVm("h1", { vmId: "off", virtualization: "para", vcpus: 1, memoryMiB: 512 }, { running: false });
  t.is(reason(outcomeOf("h2", "off")), "invalid");
  t.throws(() => new SimHypervisors({ migrationMsPerGiB: -1 }), { instanceOf: RangeError });
  t.true(maxSimMigrationCopyMs <= 60_000);
});

import test from "ava";
import type { Hypervisor, HypervisorEvent, HypervisorOutcome, VmStatus } from "../../actors/ports/hypervisor.ts";
import { SimHypervisors, guestNodeId } from "../../sim/simHypervisor.ts";
import { SimWorld } from "../../sim/world.ts";

const vm1 = { vmId: "vm1", virtualization: "full", vcpus: 2, memoryMiB: 1024 } as const;
const vm2 = { vmId: "vm2", virtualization: "para", vcpus: 1, memoryMiB: 512 } as const;

function simWorld(hostIds: readonly string[] = ["h1"]) {
  const fleet = new SimHypervisors({ cpuUsage: 0.5 });
  const world = new SimWorld({ seed: 1, clusterId: "t", extraPorts: (context) => ({ hypervisor: fleet.hypervisorFor(context) }) });
  const hypervisors = new Map<string, Hypervisor>();
  for (const hostId of hostIds) {
    world.addNode(hostId, (ports) => {
      hypervisors.set(hostId, ports.hypervisor!);
      return { stop: () => {} };
    });
  }
  return { world, fleet, hv: (hostId = "h1") => hypervisors.get(hostId)! };
}

/** Calls an operation and runs the world until its callback fired; fails if it fired inside the call. */
function call<T>(world: SimWorld, operation: (done: (outcome: HypervisorOutcome<T>) => void) => void): HypervisorOutcome<T> {
  let outcome: HypervisorOutcome<T> | undefined;
  let insideCall = true;
  operation((result) => {
    if (insideCall) throw new Error("callback fired inside the call");
    outcome = result;
  });
  insideCall = false;
  for (let step = 0; step < 100 && outcome === undefined; step++) world.runFor(10);
  if (outcome === undefined) throw new Error("no callback");
  return outcome;
}

function value<T>(outcome: HypervisorOutcome<T>): T {
  if (!outcome.ok) throw new Error(`${outcome.reason}: ${outcome.error}`);
  return outcome.value;
}

test("define, start, status with advancing cpu time, pause freezes it, resume, graceful and forced stop", (t) => {
  const { world, fleet, hv } = simWorld();
  const events: HypervisorEvent[] = [];
  hv().onEvent((event) => events.push(event));
  t.true(call<void>(world, (done) => hv().define(vm1, done)).ok);
  t.is(value(call<VmStatus | undefined>(world, (done) => hv().status("vm1", done)))?.state, "shutoff");
  t.true(call<void>(world, (done) => hv().start("vm1", done)).ok);
  const first = value(call<VmStatus | undefined>(world, (done) => hv().status("vm1", done)))!;
  world.runFor(1_000);
  const second = value(call<VmStatus | undefined>(world, (done) => hv().status("vm1", done)))!;
  t.is(second.state, "running");
  t.is(second.virtualization, "full");
  t.true(Math.abs(second.cpuTimeMs - first.cpuTimeMs - 0.5 * (1_000 + 10)) < 20, "cpu time advances at the configured usage");

  t.true(call<void>(world, (done) => hv().pause("vm1", done)).ok);
  const pausedAt = fleet.vm("h1", "vm1")!.cpuTimeMs;
  world.runFor(1_000);
  t.is(fleet.vm("h1", "vm1")!.cpuTimeMs, pausedAt, "a paused vm uses no cpu");
  t.is(fleet.vm("h1", "vm1")!.state, "paused");
  t.deepEqual(fleet.registry.activeHosts("vm1"), ["h1"], "a paused vm is still active on its host");
  t.true(call<void>(world, (done) => hv().resume("vm1", done)).ok);
  t.false(call<void>(world, (done) => hv().resume("vm1", done)).ok, "resuming a running vm is refused");

  t.true(call<void>(world, (done) => hv().stop("vm1", false, done)).ok);
  t.is(fleet.vm("h1", "vm1")!.state, "running", "an ACPI shutdown takes a while");
  world.runFor(fleet.settings.gracefulShutdownMs);
  t.is(fleet.vm("h1", "vm1")!.state, "shutoff");
  t.true(call<void>(world, (done) => hv().start("vm1", done)).ok);
  t.true(call<void>(world, (done) => hv().stop("vm1", true, done)).ok);
  t.is(fleet.vm("h1", "vm1")!.state, "shutoff", "destroy is immediate");
  world.runFor(10);
  t.deepEqual(
    events.map((event) => event.type),
    ["started", "paused", "resumed", "stopped", "started", "stopped"],
  );
});

test("errors carry a reason: not-found, invalid, unsupported; bad definitions are refused", (t) => {
  const { world, hv } = simWorld();
  const started = call<void>(world, (done) => hv().start("nope", done));
  t.like(started, { ok: false, reason: "not-found" });
  t.is(value(call<VmStatus | undefined>(world, (done) => hv().status("nope", done))), undefined);
  t.like(call<void>(world, (done) => hv().define({ ...vm1, vcpus: 0 }, done)), { ok: false, reason: "invalid" });
  t.like(call<void>(world, (done) => hv().define({ ...vm1, vmId: "bad id" }, done)), { ok: false, reason: "invalid" });
  t.like(call<void>(world, (done) => hv().define({ ...vm1, virtualization: "weird" as "full" }, done)), { ok: false, reason: "invalid" });
  t.true(call<void>(world, (done) => hv().define(vm2, done)).ok);
  t.like(call<void>(world, (done) => hv().stop("vm2", true, done)), { ok: false, reason: "invalid" });
  t.true(call<void>(world, (done) => hv().start("vm2", done)).ok);
  t.like(call<void>(world, (done) => hv().start("vm2", done)), { ok: false, reason: "invalid" });
  t.like(call<void>(world, (done) => hv().guestPing("vm2", 100, done)), { ok: false, reason: "unsupported" }, "para-virt has no guest agent channel");
  t.like(call<void>(world, (done) => hv().guestPing("vm2", -1, done)), { ok: false, reason: "invalid" });
});

test("faults: crash, vm hang (running, cpu frozen), guest hang (cpu advances, ping times out), pause", (t) => {
  const { world, fleet, hv } = simWorld();
  fleet.placeVm("h1", vm1);
  fleet.placeVm("h1", vm2);
  world.runFor(100);
  const events: HypervisorEvent[] = [];
  hv().onEvent((event) => events.push(event));

  fleet.hangVm("h1", "vm1");
  const frozen = fleet.vm("h1", "vm1")!.cpuTimeMs;
  world.runFor(1_000);
  t.is(fleet.vm("h1", "vm1")!.state, "running");
  t.is(fleet.vm("h1", "vm1")!.cpuTimeMs, frozen);
  t.like(call<void>(world, (done) => hv().guestPing("vm1", 200, done)), { ok: false, reason: "timeout" });
  t.true(call<void>(world, (done) => hv().reset("vm1", done)).ok, "reset clears a hang");
  world.runFor(100);
  t.true(fleet.vm("h1", "vm1")!.cpuTimeMs > frozen);
  t.true(call<void>(world, (done) => hv().guestPing("vm1", 200, done)).ok);

  fleet.hangGuest("h1", "vm1");
  const before = fleet.vm("h1", "vm1")!.cpuTimeMs;
  world.runFor(1_000);
  t.true(fleet.vm("h1", "vm1")!.cpuTimeMs > before, "a hung guest may still use cpu");
  t.like(call<void>(world, (done) => hv().guestPing("vm1", 200, done)), { ok: false, reason: "timeout" });
  fleet.unhangGuest("h1", "vm1");

  fleet.pauseVm("h1", "vm2");
  fleet.resumeVm("h1", "vm2");
  fleet.crashVm("h1", "vm2");
  t.is(fleet.vm("h1", "vm2")!.state, "crashed");
  t.throws(() => fleet.crashVm("h1", "vm2"), { instanceOf: RangeError }, "a crashed vm cannot crash again");
  t.throws(() => fleet.hangVm("h1", "nope"), { instanceOf: RangeError });
  world.runFor(10);
  t.deepEqual(events, [
    { type: "paused", vmId: "vm2" },
    { type: "resumed", vmId: "vm2" },
    { type: "crashed", vmId: "vm2" },
  ]);
  const lines = world.transcriptLines().filter((line) => line.includes(" world info vm-") || line.includes(" world info guest-"));
  t.deepEqual(
    lines.map((line) => line.split(" ")[3]),
    ["vm-place", "vm-place", "vm-hang", "guest-hang", "guest-unhang", "vm-pause", "vm-resume", "vm-crash"],
  );
});

test("callbacks follow the host's clock: held while the agent is paused, dropped when the host crashes", (t) => {
  const { world, hv } = simWorld();
  let answered = 0;
  world.pause("h1");
  hv().list(() => answered++);
  world.runFor(1_000);
  t.is(answered, 0, "held while paused");
  world.resume("h1");
  world.runFor(10);
  t.is(answered, 1);
  hv().list(() => answered++);
  world.crash("h1");
  world.runFor(1_000);
  t.is(answered, 1, "dropped by the crash");
});

test("ground truth: a host crash stops its vms; the registry records every start and stop and finds overlaps", (t) => {
  const { world, fleet, hv } = simWorld(["h1", "h2"]);
  fleet.placeVm("h1", vm1);
  world.runFor(500);
  fleet.pauseVm("h1", "vm1");
  world.pause("h1");
  world.runFor(500);
  t.is(fleet.vm("h1", "vm1")!.state, "paused", "an agent pause does not touch the vms");
  world.resume("h1");
  world.runFor(500);
  world.crash("h1");
  t.is(fleet.vm("h1", "vm1")!.state, "shutoff");
  t.deepEqual(fleet.registry.activeHosts("vm1"), []);
  world.restart("h1");
  world.runFor(10);
  t.is(value(call<VmStatus | undefined>(world, (done) => hv("h1").status("vm1", done)))?.state, "shutoff", "defined, but off after the reboot");

  t.true(call<void>(world, (done) => hv("h2").define(vm1, done)).ok);
  const h2StartCalledAt = world.now();
  t.true(call<void>(world, (done) => hv("h2").start("vm1", done)).ok);
  t.deepEqual(fleet.registry.overlaps(), []);
  t.true(call<void>(world, (done) => hv("h1").start("vm1", done)).ok);
  t.deepEqual(fleet.registry.activeHosts("vm1"), ["h2", "h1"]);
  const overlaps = fleet.registry.overlaps();
  t.is(overlaps.length, 1);
  t.is(overlaps[0]!.vmId, "vm1");
  t.deepEqual(overlaps[0]!.hostIds, ["h2", "h1"]);
  t.deepEqual(
    fleet.registry.history().map((record) => `${record.atMs} ${record.hostId} ${record.active ? "on" : "off"} ${record.cause}`),
    ["0 h1 on placed", "1500 h1 off host-crash", `${h2StartCalledAt + fleet.settings.commandLatencyMs} h2 on start`, `${overlaps[0]!.atMs} h1 on start`],
  );
});

test("guest nodes follow their vm: up while it executes, paused while frozen, crashed while off, rebooted by reset", (t) => {
  const { world, fleet, hv } = simWorld();
  const boots: string[] = [];
  fleet.runGuests((vmId) => (ports) => {
    boots.push(`${vmId}@${ports.clock.now()}`);
    return { stop: () => {} };
  });
  fleet.placeVm("h1", vm1);
  const guest = guestNodeId("vm1");
  t.is(world.nodeState(guest), "up");
  fleet.hangGuest("h1", "vm1");
  t.is(world.nodeState(guest), "paused");
  fleet.unhangGuest("h1", "vm1");
  t.is(world.nodeState(guest), "up");
  fleet.hangVm("h1", "vm1");
  t.is(world.nodeState(guest), "paused");
  world.runFor(100);
  t.true(call<void>(world, (done) => hv().reset("vm1", done)).ok);
  t.is(world.nodeState(guest), "up");
  t.is(world.incarnation(guest), 2, "a reset reboots the guest");
  fleet.crashVm("h1", "vm1");
  t.is(world.nodeState(guest), "crashed");
  t.is(boots.length, 2);
});

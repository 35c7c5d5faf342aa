import test from "ava";
import { defaultGuestWatchdogConfig } from "../../machines/guest/guestWatchdog.ts";
import { guestNodeId } from "../../sim/simHypervisor.ts";
import { fullVm, paraVm, vmSimWorld } from "../vm/vmSimHarness.ts";

test("beats cut off by the network while the guest runs: full-virt answers its guest ping (silent), para-virt cannot (hung)", (t) => {
  const { world, healthsSince, reports } = vmSimWorld({ seed: 11, vms: [fullVm, paraVm] });
  world.runFor(3_000);
  const cutAt = world.now();
  world.blockLink(guestNodeId(fullVm.vmId), "h1");
  world.blockLink(guestNodeId(paraVm.vmId), "h1");
  world.runFor(5_000);
  t.deepEqual(healthsSince(fullVm.vmId, "guest", cutAt), ["silent"]);
  t.regex(reports.find((report) => report.health === "silent")!.detail, /network path/);
  t.deepEqual(healthsSince(paraVm.vmId, "guest", cutAt), ["hung"]);
  const healAt = world.now();
  world.heal();
  world.runFor(1_000);
  t.deepEqual(healthsSince(fullVm.vmId, "guest", healAt), ["alive"]);
  t.deepEqual(healthsSince(paraVm.vmId, "guest", healAt), ["alive"]);
});

test("a silent guest that then hangs for real is reported hung at the next confirming ping", (t) => {
  const { world, hypervisors, healthsSince } = vmSimWorld({ seed: 12, vms: [fullVm] });
  world.runFor(3_000);
  const cutAt = world.now();
  world.blockLink(guestNodeId(fullVm.vmId), "h1");
  world.runFor(4_000);
  hypervisors.hangGuest("h1", fullVm.vmId);
  world.runFor(4_000);
  t.deepEqual(healthsSince(fullVm.vmId, "guest", cutAt), ["silent", "hung"]);
});

test("a vm whose guest never runs an agent is reported no-agent after the boot grace, never hung", (t) => {
  const { world, healthsSince } = vmSimWorld({ seed: 13, vms: [fullVm], runAgents: false });
  world.runFor(defaultGuestWatchdogConfig.guestBootGraceMs - 100);
  t.deepEqual(healthsSince(fullVm.vmId, "guest", 0), []);
  world.runFor(200);
  t.deepEqual(healthsSince(fullVm.vmId, "guest", 0), ["no-agent"]);
  world.runFor(60_000);
  t.deepEqual(healthsSince(fullVm.vmId, "guest", 0), ["no-agent"]);
});

test("after a vm restart the guest gets the boot grace again; an agent that never comes back means hung", (t) => {
  const { world, hypervisors, healthsSince, watches } = vmSimWorld({ seed: 14, vms: [paraVm] });
  world.runFor(2_000);
  hypervisors.crashVm("h1", paraVm.vmId);
  world.runFor(1_000);
  // the host restarts it, but this time the guest hangs while booting
  const restartAt = world.now();
  hypervisors.placeVm("h1", paraVm);
  hypervisors.hangGuest("h1", paraVm.vmId);
  world.runFor(defaultGuestWatchdogConfig.guestBootGraceMs + 1_000);
  t.deepEqual(healthsSince(paraVm.vmId, "vm", restartAt), ["running"]);
  t.deepEqual(healthsSince(paraVm.vmId, "guest", restartAt), ["hung"]);
  t.truthy(watches.get(paraVm.vmId));
});

test("a host agent that restarts (actor restore) keeps watching: timers are re-armed by haring.resume", (t) => {
  const { world, hypervisors, healthsSince, watches } = vmSimWorld({ seed: 15, vms: [fullVm] });
  world.runFor(2_000);
  const watch = watches.get(fullVm.vmId)!;
  const vmSnapshot = watch.vm.host.getPersistedSnapshot()!;
  const guestSnapshot = watch.guest!.host.getPersistedSnapshot()!;
  watch.vm.host.restore(vmSnapshot);
  watch.guest!.host.restore(guestSnapshot);
  const hangAt = world.now();
  hypervisors.hangVm("h1", fullVm.vmId);
  world.runFor(6_000);
  t.deepEqual(healthsSince(fullVm.vmId, "vm", hangAt), ["hung"]);
  t.deepEqual(healthsSince(fullVm.vmId, "guest", hangAt), ["hung"]);
});

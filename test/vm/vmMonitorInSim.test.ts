import test from "ava";
import { defaultGuestWatchdogConfig } from "../../machines/guest/guestWatchdog.ts";
import { defaultVmMonitorConfig } from "../../machines/vm/vmHealth.ts";
import { fullVm, paraVm, vmSimWorld } from "./vmSimHarness.ts";

const vmHangBoundMs = defaultVmMonitorConfig.vmHangAfterMs + defaultVmMonitorConfig.vmPollIntervalMs + 50;
const guestSilenceMs = defaultGuestWatchdogConfig.guestHeartbeatIntervalMs * defaultGuestWatchdogConfig.guestMissedHeartbeatsBeforeHung;
const guestHangBoundMs = guestSilenceMs + defaultGuestWatchdogConfig.guestHeartbeatIntervalMs + defaultGuestWatchdogConfig.guestPingTimeoutMs + 50;

for (const vm of [fullVm, paraVm]) {
  test(`${vm.virtualization}-virt: a vm crash is reported within a second, by the event rather than the poll`, (t) => {
    const { world, hypervisors, healthsSince, firstReportAt } = vmSimWorld({ seed: 1, vms: [vm] });
    world.runFor(5_000);
    t.deepEqual(healthsSince(vm.vmId, "vm", 0), ["running"]);
    t.deepEqual(healthsSince(vm.vmId, "guest", 0), ["alive"]);
    world.runFor(123);
    const crashAt = world.now();
    hypervisors.crashVm("h1", vm.vmId);
    world.runFor(2_000);
    const detectedAt = firstReportAt(vm.vmId, "vm", "crashed", crashAt);
    t.not(detectedAt, undefined);
    t.true(detectedAt! - crashAt < 50, `crash detected after ${detectedAt! - crashAt} ms`);
    t.deepEqual(healthsSince(vm.vmId, "vm", crashAt), ["crashed"]);
    t.deepEqual(healthsSince(vm.vmId, "guest", crashAt), [], "a stopped vm's silent guest is not reported as hung");
  });

  test(`${vm.virtualization}-virt: a vm hang (running, cpu frozen) is reported within vmHangAfterMs plus one poll; recovery too`, (t) => {
    const { world, hypervisors, healthsSince, firstReportAt } = vmSimWorld({ seed: 2, vms: [vm] });
    world.runFor(5_000);
    const hangAt = world.now();
    hypervisors.hangVm("h1", vm.vmId);
    world.runFor(vmHangBoundMs + 1_000);
    const detectedAt = firstReportAt(vm.vmId, "vm", "hung", hangAt);
    t.not(detectedAt, undefined);
    t.true(detectedAt! - hangAt >= defaultVmMonitorConfig.vmHangAfterMs - defaultVmMonitorConfig.vmPollIntervalMs, "not before the cpu stood still long enough");
    t.true(detectedAt! - hangAt <= vmHangBoundMs, `hang detected after ${detectedAt! - hangAt} ms`);
    t.deepEqual(healthsSince(vm.vmId, "guest", hangAt), ["hung"], "the frozen guest stops beating too");
    const unhangAt = world.now();
    hypervisors.unhangVm("h1", vm.vmId);
    world.runFor(2_000);
    t.deepEqual(healthsSince(vm.vmId, "vm", unhangAt), ["running"]);
    t.deepEqual(healthsSince(vm.vmId, "guest", unhangAt), ["alive"]);
  });

  test(`${vm.virtualization}-virt: a guest hang (hypervisor fine, cpu advancing) is found by the guest watchdog alone`, (t) => {
    const { world, hypervisors, healthsSince, firstReportAt, reports } = vmSimWorld({ seed: 3, vms: [vm] });
    world.runFor(5_000);
    const hangAt = world.now();
    hypervisors.hangGuest("h1", vm.vmId);
    world.runFor(guestHangBoundMs + 1_000);
    const detectedAt = firstReportAt(vm.vmId, "guest", "hung", hangAt);
    t.not(detectedAt, undefined);
    t.true(detectedAt! - hangAt >= guestSilenceMs - defaultGuestWatchdogConfig.guestHeartbeatIntervalMs, "not before the beats were missed");
    t.true(detectedAt! - hangAt <= guestHangBoundMs, `guest hang detected after ${detectedAt! - hangAt} ms`);
    const hungReport = reports.find((report) => report.atMs === detectedAt && report.level === "guest")!;
    t.regex(hungReport.detail, vm.virtualization === "full" ? /guest ping failed/ : /no guest-agent channel/, "full-virt confirms by guest ping; para-virt has none");
    t.deepEqual(healthsSince(vm.vmId, "vm", hangAt), [], "the hypervisor side sees nothing wrong");
    const recoverAt = world.now();
    hypervisors.unhangGuest("h1", vm.vmId);
    world.runFor(1_000);
    t.deepEqual(healthsSince(vm.vmId, "guest", recoverAt), ["alive"], "recovers when beats resume");
  });
}

test("pause and an unexpected shut-off are reported; a desired stop makes the shut-off expected", (t) => {
  const { world, hypervisors, healthsSince, watches } = vmSimWorld({ seed: 4, vms: [fullVm, paraVm] });
  world.runFor(2_000);
  const pauseAt = world.now();
  hypervisors.pauseVm("h1", fullVm.vmId);
  world.runFor(5_000);
  hypervisors.resumeVm("h1", fullVm.vmId);
  world.runFor(2_000);
  t.deepEqual(healthsSince(fullVm.vmId, "vm", pauseAt), ["paused", "running"]);
  t.deepEqual(healthsSince(fullVm.vmId, "guest", pauseAt), [], "a paused vm's guest is not expected to beat");

  const shutAt = world.now();
  hypervisors.shutdownFromGuest("h1", paraVm.vmId);
  world.runFor(1_000);
  watches.get(paraVm.vmId)!.setDesired("stopped");
  world.runFor(1_000);
  t.deepEqual(healthsSince(paraVm.vmId, "vm", shutAt), ["shutoff", "stopped"]);
});

test("an application check failing inside the guest is reported as app-failed, and its recovery", (t) => {
  const checks = [{ kind: "tcp", name: "web", host: "127.0.0.1", port: 80 }] as const;
  const { world, hypervisors, healthsSince } = vmSimWorld({ seed: 5, vms: [paraVm], checks });
  world.runFor(3_000);
  const failAt = world.now();
  hypervisors.failGuestCheck(paraVm.vmId, "web");
  world.runFor(5_000);
  hypervisors.passGuestCheck(paraVm.vmId, "web");
  world.runFor(5_000);
  t.deepEqual(healthsSince(paraVm.vmId, "guest", failAt), ["app-failed", "alive"]);
});

test("no false report over ten virtual minutes, also with 5% message loss; same seed, same transcript", (t) => {
  const vms = [fullVm, paraVm, { ...fullVm, vmId: "full2" }, { ...paraVm, vmId: "para2" }];
  const run = (seed: number) => {
    const harness = vmSimWorld({ seed, vms });
    harness.world.runFor(60_000);
    harness.world.setLoss(0.05);
    harness.world.runFor(540_000);
    return harness;
  };
  const { reports, world } = run(6);
  t.deepEqual(
    reports.map((report) => `${report.vmId} ${report.level} ${report.health}`).sort(),
    vms.flatMap((vm) => [`${vm.vmId} guest alive`, `${vm.vmId} vm running`]).sort(),
    "only the first reports",
  );
  t.true(world.networkCounters().lost > 300, "loss really happened");
  t.is(run(6).world.transcript(), world.transcript());
});

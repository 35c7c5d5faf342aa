import test from "ava";
import type { Hypervisor, HypervisorOutcome, VmStatus } from "../../actors/ports/hypervisor.ts";
import { createVmHostPoller } from "../../actors/vm/vmHostPoller.ts";
import { startVmMonitor } from "../../actors/vm/vmMonitorActor.ts";
import { createSeededRandom } from "../../actors/seededRandom.ts";
import { defaultVmMonitorConfig, initialVmProgress, judgeVm, type VmHealth, type VmObservation, type VmProgress } from "../../machines/vm/vmHealth.ts";
import type { VmHealthReport } from "../../machines/vm/vmMonitor.ts";
import { filterVmSample, initialVmSampleMemory, type TimedObservation } from "../../machines/vm/vmSampleFilter.ts";
import type { NodeClock } from "../../sim/nodeClock.ts";
import { SimWorld } from "../../sim/world.ts";
import { fullVm, paraVm, vmSimWorld } from "./vmSimHarness.ts";

const config = defaultVmMonitorConfig;
const vmHangBoundMs = config.vmHangAfterMs + config.vmPollIntervalMs + 50;

/** Health after each sample, judging every sample (what a monitor polling alone sees). */
function judgedEach(samples: readonly TimedObservation[]): { healths: VmHealth[]; progress: VmProgress } {
  let health: VmHealth = "unknown";
  let progress = initialVmProgress;
  const healths: VmHealth[] = [];
  for (const sample of samples) {
    const verdict = judgeVm(health, progress, sample.observation, sample.atMs, "running", config);
    health = verdict.health;
    progress = verdict.progress;
    healths.push(health);
  }
  return { healths, progress };
}

/** The same through the filter: health after each sample, and how many samples reached the monitor. */
function judgedFiltered(samples: readonly TimedObservation[]): { healths: VmHealth[]; delivered: number } {
  let memory = initialVmSampleMemory;
  let health: VmHealth = "unknown";
  let progress = initialVmProgress;
  let delivered = 0;
  const healths: VmHealth[] = [];
  for (const sample of samples) {
    const decision = filterVmSample(memory, sample);
    memory = decision.memory;
    for (const passed of decision.deliver) {
      delivered++;
      const verdict = judgeVm(health, progress, passed.observation, passed.atMs, "running", config);
      health = verdict.health;
      progress = verdict.progress;
    }
    healths.push(health);
  }
  return { healths, delivered };
}

test("the sample filter changes no verdict: random sample streams judged with and without it agree after every sample", (t) => {
  const random = createSeededRandom(7);
  let totalSamples = 0;
  let totalDelivered = 0;
  for (let run = 0; run < 300; run++) {
    const samples: TimedObservation[] = [];
    let cpu = 0;
    let state: "running" | "paused" | "shutoff" | "crashed" = "running";
    let frozen = false;
    for (let index = 0; index < 200; index++) {
      const roll = random.int(100);
      if (roll < 3) state = (["running", "paused", "shutoff", "crashed"] as const)[random.int(4)]!;
      if (roll >= 3 && roll < 8) frozen = !frozen;
      if (state === "running" && !frozen) cpu += 1 + random.int(50);
      let observation: VmObservation = { kind: "status", state, cpuTimeMs: cpu, virtualization: "full" };
      if (roll === 98) observation = { kind: "failed", error: "down" };
      if (roll === 99) observation = { kind: "missing" };
      samples.push({ atMs: index * config.vmPollIntervalMs, observation });
    }
    const filtered = judgedFiltered(samples);
    t.deepEqual(filtered.healths, judgedEach(samples).healths, `run ${run}`);
    totalSamples += samples.length;
    totalDelivered += filtered.delivered;
  }
  t.true(totalDelivered < totalSamples * 0.6, `delivered ${totalDelivered} of ${totalSamples}`);
});

test("the sample filter holds back a steady running vm after two samples, and hands the held sample over before a frozen one", (t) => {
  const running = (atMs: number, cpuTimeMs: number): TimedObservation => ({ atMs, observation: { kind: "status", state: "running", cpuTimeMs, virtualization: "para" } });
  let memory = initialVmSampleMemory;
  const delivered: number[][] = [];
  for (const [atMs, cpu] of [[0, 10], [500, 20], [1000, 30], [1500, 40], [2000, 40], [2500, 40]] as const) {
    const decision = filterVmSample(memory, running(atMs, cpu));
    memory = decision.memory;
    delivered.push(decision.deliver.map((sample) => sample.atMs));
  }
  t.deepEqual(delivered, [[0], [500], [], [], [1500, 2000], [2500]], "the cpu stood still from 1500 ms: that sample is what times the hang");
});

for (const vm of [fullVm, paraVm]) {
  test(`polled by host, ${vm.virtualization}-virt: crash by the event within 50 ms, hang within vmHangAfterMs plus one poll, and recovery`, (t) => {
    const { world, hypervisors, healthsSince, firstReportAt } = vmSimWorld({ seed: 11, vms: [vm], polledByHost: true });
    world.runFor(5_000);
    t.deepEqual(healthsSince(vm.vmId, "vm", 0), ["running"]);
    const hangAt = world.now();
    hypervisors.hangVm("h1", vm.vmId);
    world.runFor(vmHangBoundMs + 1_000);
    const hungAt = firstReportAt(vm.vmId, "vm", "hung", hangAt);
    t.not(hungAt, undefined);
    t.true(hungAt! - hangAt >= config.vmHangAfterMs - config.vmPollIntervalMs, "not before the cpu stood still long enough");
    t.true(hungAt! - hangAt <= vmHangBoundMs, `hang detected after ${hungAt! - hangAt} ms`);
    const unhangAt = world.now();
    hypervisors.unhangVm("h1", vm.vmId);
    world.runFor(1_000);
    t.deepEqual(healthsSince(vm.vmId, "vm", unhangAt), ["running"]);
    world.runFor(77);
    const crashAt = world.now();
    hypervisors.crashVm("h1", vm.vmId);
    world.runFor(2_000);
    const crashedAt = firstReportAt(vm.vmId, "vm", "crashed", crashAt);
    t.true(crashedAt !== undefined && crashedAt - crashAt < 50, `crash detected after ${crashedAt! - crashAt} ms`);
    t.deepEqual(healthsSince(vm.vmId, "vm", crashAt), ["crashed"]);
  });
}

test("polled by host: pause, unexpected shut-off and a desired stop are judged as with a timer per vm; steady vms cost one list per interval and no monitor event", (t) => {
  const vms = [fullVm, paraVm, { ...fullVm, vmId: "full2" }, { ...paraVm, vmId: "para2" }];
  const { world, hypervisors, healthsSince, watches, pollers, reports } = vmSimWorld({ seed: 12, vms, polledByHost: true });
  world.runFor(1_000);
  const lonePolls = [...watches.values()].map((watch) => watch.vm.host.getSnapshot()!.context.polls);
  const listsBefore = pollers[0]!.polls;
  world.runFor(60_000);
  t.is(reports.filter((report) => report.level === "vm").length, vms.length, "only the first reports");
  const lists = pollers[0]!.polls - listsBefore;
  t.true(lists >= 119 && lists <= 121, `${lists} list calls in 60 s`);
  t.deepEqual(
    [...watches.values()].map((watch) => watch.vm.host.getSnapshot()!.context.polls),
    lonePolls,
    "a steady vm is polled alone only at start (and for its start event)",
  );
  const pauseAt = world.now();
  hypervisors.pauseVm("h1", fullVm.vmId);
  world.runFor(5_000);
  hypervisors.resumeVm("h1", fullVm.vmId);
  world.runFor(2_000);
  t.deepEqual(healthsSince(fullVm.vmId, "vm", pauseAt), ["paused", "running"]);
  const shutAt = world.now();
  hypervisors.shutdownFromGuest("h1", paraVm.vmId);
  world.runFor(1_000);
  watches.get(paraVm.vmId)!.setDesired("stopped");
  world.runFor(1_000);
  t.deepEqual(healthsSince(paraVm.vmId, "vm", shutAt), ["shutoff", "stopped"]);
  t.deepEqual(healthsSince("full2", "vm", 100), [], "the other vms saw nothing");
});

type ListAnswer = HypervisorOutcome<readonly VmStatus[]> | "silence";

function listingHypervisor(clock: NodeClock, answer: () => ListAnswer): Hypervisor {
  const unused = () => {
    throw new Error("not used");
  };
  return {
    driver: "scripted",
    supportsLiveMigration: false,
    list: (done) => {
      const outcome = answer();
      if (outcome !== "silence") clock.setTimeout(() => done(outcome), 1);
    },
    status: (vmId, done) => {
      const outcome = answer();
      if (outcome === "silence") return;
      clock.setTimeout(() => done(outcome.ok ? { ok: true, value: outcome.value.find((status) => status.vmId === vmId) } : outcome), 1);
    },
    define: unused,
    start: unused,
    stop: unused,
    reset: unused,
    pause: unused,
    resume: unused,
    guestPing: unused,
    onEvent: () => ({ unsubscribe: () => {} }),
  };
}

test("polled by host: a list that fails or never answers makes every vm unreachable after vmUnreachableAfterPolls polls; answers bring them back", (t) => {
  let mode: "ok" | "silent" | "failing" = "ok";
  let cpu = 0;
  const world = new SimWorld({
    seed: 1,
    clusterId: "t",
    extraPorts: (context) => ({
      hypervisor: listingHypervisor(context.clock, () => {
        cpu += 10;
        if (mode === "silent") return "silence";
        if (mode === "failing") return { ok: false, reason: "unavailable", error: "libvirtd is down" };
        return { ok: true, value: ["vm1", "vm2"].map((vmId) => ({ vmId, state: "running" as const, virtualization: "full" as const, cpuTimeMs: cpu })) };
      }),
    }),
  });
  const reports: VmHealthReport[] = [];
  world.addNode("h1", (ports) => {
    const poller = createVmHostPoller({ clock: ports.clock, hypervisor: ports.hypervisor!, metrics: ports.metrics, pollIntervalMs: 500, unreachableAfterPolls: 3 });
    const monitors = ["vm1", "vm2"].map((vmId) => startVmMonitor(ports, { vmId, desired: "running", poller, onReport: (report) => reports.push(report) }));
    return {
      stop: () => {
        for (const monitor of monitors) monitor.dispose();
        poller.dispose();
      },
    };
  });
  const healths = () => reports.map((report) => `${report.vmId} ${report.health}`);
  world.runFor(2_000);
  t.deepEqual(healths(), ["vm1 running", "vm2 running"]);
  for (const failure of ["silent", "failing"] as const) {
    reports.length = 0;
    mode = failure;
    world.runFor(1_000);
    t.deepEqual(healths(), [], `${failure}: not after one or two polls`);
    world.runFor(1_000);
    t.deepEqual(healths(), ["vm1 unreachable", "vm2 unreachable"], failure);
    mode = "ok";
    // an abandoned list is re-sent only after vmUnreachableAfterPolls more ticks
    world.runFor(2_000);
    t.deepEqual(healths(), ["vm1 unreachable", "vm2 unreachable", "vm1 running", "vm2 running"], `${failure}: back`);
  }
});

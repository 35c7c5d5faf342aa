import test from "ava";
import type { Hypervisor, HypervisorOutcome, VmStatus } from "../../actors/ports/hypervisor.ts";
import { startVmMonitor } from "../../actors/vm/vmMonitorActor.ts";
import { defaultVmMonitorConfig, judgeVm, initialVmProgress, vmMonitorConfigProblem } from "../../machines/vm/vmHealth.ts";
import type { VmHealthReport } from "../../machines/vm/vmMonitor.ts";
import type { NodeClock } from "../../sim/nodeClock.ts";
import { SimWorld } from "../../sim/world.ts";

type StatusAnswer = HypervisorOutcome<VmStatus | undefined> | "silence";

/** A hypervisor whose status answers come from the test (on the node's clock), to drive the monitor's failure paths. */
function scriptedHypervisor(clock: NodeClock, answer: () => StatusAnswer): Hypervisor {
  const unused = () => {
    throw new Error("not used by the vm monitor");
  };
  return {
    driver: "scripted",
    supportsLiveMigration: false,
    list: unused,
    status: (_vmId, done) => {
      const outcome = answer();
      if (outcome !== "silence") clock.setTimeout(() => done(outcome), 1);
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

function monitorWorld(answer: () => StatusAnswer) {
  const world = new SimWorld({
    seed: 1,
    clusterId: "t",
    extraPorts: (context) => ({ hypervisor: scriptedHypervisor(context.clock, answer) }),
  });
  const reports: VmHealthReport[] = [];
  world.addNode("h1", (ports) => {
    const monitor = startVmMonitor(ports, { vmId: "vm1", desired: "running", onReport: (report) => reports.push(report) });
    return { stop: () => monitor.dispose() };
  });
  return { world, reports };
}

const running = (cpuTimeMs: number): StatusAnswer => ({ ok: true, value: { vmId: "vm1", state: "running", virtualization: "full", cpuTimeMs } });

test("a hypervisor that stops answering makes the vm unreachable after vmUnreachableAfterPolls polls, and answers bring it back", (t) => {
  let mode: "ok" | "silent" | "failing" = "ok";
  let cpu = 0;
  const { world, reports } = monitorWorld(() => {
    cpu += 10;
    if (mode === "silent") return "silence";
    if (mode === "failing") return { ok: false, reason: "unavailable", error: "libvirtd is down" };
    return running(cpu);
  });
  world.runFor(2_000);
  mode = "silent";
  world.runFor(defaultVmMonitorConfig.vmPollIntervalMs * (defaultVmMonitorConfig.vmUnreachableAfterPolls + 1));
  mode = "ok";
  world.runFor(2_000);
  mode = "failing";
  world.runFor(defaultVmMonitorConfig.vmPollIntervalMs * (defaultVmMonitorConfig.vmUnreachableAfterPolls + 1));
  mode = "ok";
  world.runFor(2_000);
  t.deepEqual(
    reports.map((report) => report.health),
    ["running", "unreachable", "running", "unreachable", "running"],
  );
  t.regex(reports[3]!.detail, /libvirtd is down/);
});

test("answers that make no sense count as failed polls, never as a status", (t) => {
  const { world, reports } = monitorWorld(() => ({ ok: true, value: { vmId: "vm1", state: "running", virtualization: "full", cpuTimeMs: Number.NaN } }));
  world.runFor(5_000);
  t.deepEqual(reports.map((report) => report.health), ["unreachable"]);
  t.regex(reports[0]!.detail, /invalid cpu time/);
});

test("a vm the hypervisor does not know is missing; one that restarts (cpu time going back) is not hung", (t) => {
  let answer: StatusAnswer = { ok: true, value: undefined };
  const { world, reports } = monitorWorld(() => answer);
  world.runFor(1_000);
  answer = running(5_000);
  world.runFor(1_000);
  answer = running(10);
  world.runFor(1_000);
  t.deepEqual(reports.map((report) => report.health), ["missing", "running"]);
});

test("judgeVm: cpu progress, the hang threshold, and config bounds", (t) => {
  const config = defaultVmMonitorConfig;
  const first = judgeVm("unknown", initialVmProgress, { kind: "status", state: "running", cpuTimeMs: 100, virtualization: "para" }, 1_000, "running", config);
  t.is(first.health, "running");
  const still = judgeVm(first.health, first.progress, { kind: "status", state: "running", cpuTimeMs: 100, virtualization: "para" }, 1_000 + config.vmHangAfterMs - 1, "running", config);
  t.is(still.health, "running", "not a millisecond early");
  const hung = judgeVm(still.health, still.progress, { kind: "status", state: "running", cpuTimeMs: 100, virtualization: "para" }, 1_000 + config.vmHangAfterMs, "running", config);
  t.is(hung.health, "hung");
  t.is(judgeVm("running", first.progress, { kind: "status", state: "shutoff", cpuTimeMs: 0, virtualization: "para" }, 2_000, "stopped", config).health, "stopped");
  t.is(vmMonitorConfigProblem(config), undefined);
  t.regex(vmMonitorConfigProblem({ ...config, vmHangAfterMs: 10 }) ?? "", /vmHangAfterMs/);
  t.regex(vmMonitorConfigProblem({ ...config, vmUnreachableAfterPolls: 0 }) ?? "", /vmUnreachableAfterPolls/);
});

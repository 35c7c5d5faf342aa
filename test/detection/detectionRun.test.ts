import test from "ava";
import { defaultVmMonitorConfig } from "../../machines/vm/vmHealth.ts";
import { detectionGoalMs, runDetectionScenario, summarizeDetections, type DetectionRunOptions } from "../../sim/detection/detectionRun.ts";

// The code path of bench/detectionSim.ts (issue 4's 1,000-host benchmark), on a cluster small enough for every test run.
const small: DetectionRunOptions = { seed: 4, hosts: 16, hostCrashes: 3, vmCrashes: 6, guestHangs: 6, vmHangs: 3 };
/** The issue sets no goal for a VM hang: CPU time frozen for vmHangAfterMs, seen by the next poll. */
const vmHangBoundMs = defaultVmMonitorConfig.vmHangAfterMs + defaultVmMonitorConfig.vmPollIntervalMs + 50;

test("one run with host crashes, VM crashes, guest hangs and VM hangs: each fault is detected where it must be acted on, within its goal, and nothing else is", (t) => {
  const result = runDetectionScenario(small);
  t.is(result.vmsPlaced, 24, "1 and 2 VMs on alternate hosts");
  t.is(result.vmsReadyAtStart, result.vmsPlaced, "every VM reported running and its guest alive before the faults");
  t.is(result.faultsNotInjected, 0);
  t.is(result.outcomes.length, 3 + 6 + 6 + 3);
  for (const outcome of result.outcomes) {
    t.not(outcome.detectedAtMs, undefined, `${outcome.kind} of ${outcome.target} detected`);
    const latencyMs = outcome.detectedAtMs! - outcome.faultAtMs;
    t.true(latencyMs > 0 && latencyMs <= (detectionGoalMs[outcome.kind] ?? vmHangBoundMs), `${outcome.kind} of ${outcome.target}: ${latencyMs.toFixed(0)} ms`);
  }
  // A host is declared only after its lease could have run out, never sooner.
  t.true(summarizeDetections(result.outcomes, "host-crash").p50Ms >= 1_000);
  const virtualizations = new Set(result.outcomes.filter((outcome) => outcome.kind !== "host-crash").map((outcome) => outcome.virtualization));
  t.deepEqual([...virtualizations].sort(), ["full", "para"], "VM faults on both kinds of virtualization");
  t.is(result.otherHostDeclarations, 0);
  t.is(result.unjustifiedDeclarations, 0);
  t.is(result.vmFalseAlarms, 0);
});

test("the same seed gives the same run", (t) => {
  const options: DetectionRunOptions = { ...small, hosts: 8, hostCrashes: 1, vmCrashes: 2, guestHangs: 2, standIn: true };
  const first = runDetectionScenario(options);
  const second = runDetectionScenario(options);
  t.deepEqual(first, second);
  t.true(first.outcomes.every((outcome) => outcome.detectedAtMs !== undefined), "the stand-in proposes the crashed host failed");
});

test("without hypervisor events a VM crash is still seen, by the host's batched poll within one poll interval", (t) => {
  const result = runDetectionScenario({ seed: 9, hosts: 8, hostCrashes: 0, vmCrashes: 6, guestHangs: 0, hypervisorEvents: false });
  const crashes = summarizeDetections(result.outcomes, "vm-crash");
  t.is(crashes.detected, 6);
  t.true(crashes.maxMs <= defaultVmMonitorConfig.vmPollIntervalMs + 10, `max ${crashes.maxMs.toFixed(0)} ms`);
  // With events the crash is known within milliseconds; only the poll can take this long.
  t.true(crashes.maxMs > 20, `max ${crashes.maxMs.toFixed(0)} ms`);
  t.is(result.vmFalseAlarms, 0);
});

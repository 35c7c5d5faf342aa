/**
 * The false-alarm soak of issue 4 as ava tests: `defaultSoakMs` of simulated
 * time per fault, or `HARING_DETECTION_SOAK_MS` (3600000 for the hour), 100
 * hosts, 3 monitors, default timings. A long run goes in serial steps of
 * `soakStepMs` on one cluster, each asserting that nothing was declared so
 * far: the run is one continuous simulation, while ava sees a test finish
 * every few seconds (its timeout counts inactivity) and a failure names the
 * step it happened in. One fault per test file, so ava runs them in parallel.
 */
import test from "ava";
import { DetectionCluster } from "../../sim/detection/detectionCluster.ts";
import { falseAlarmScenarioDescriptions, installFalseAlarmScenario, type FalseAlarmScenarioName } from "../../sim/detection/faultScenarios.ts";

/**
 * What CI runs: the hour issue 4 asks for, per fault. The five hours cost
 * ~500 CPU seconds (docs/benchmarks.md), about 4–5 minutes of the two cores
 * while the other test files wait. For a quick local run set
 * `HARING_DETECTION_SOAK_MS=20000`.
 */
export const defaultSoakMs = 3_600_000;
export const maxSoakMs = 24 * 3_600_000;
export const soakStepMs = 300_000;

export function soakDurationMs(): number {
  const text = process.env.HARING_DETECTION_SOAK_MS;
  if (text === undefined || text === "") return defaultSoakMs;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 1_000 || value > maxSoakMs) {
    throw new RangeError(`HARING_DETECTION_SOAK_MS must be a whole number of ms in [1000, ${maxSoakMs}], got ${JSON.stringify(text)}`);
  }
  return value;
}

function minutes(ms: number): string {
  return `${(ms / 60_000).toFixed(ms % 60_000 === 0 ? 0 : 1)} min`;
}

/** Registers the serial steps of one fault's soak in the calling test file. */
export function falseAlarmSoak(scenario: FalseAlarmScenarioName, seed: number): void {
  const durationMs = soakDurationMs();
  const steps = Math.ceil(durationMs / soakStepMs);
  let cluster: DetectionCluster | undefined;
  let faultFromMs = 0;
  for (let step = 1; step <= steps; step++) {
    const doneMs = Math.min(durationMs, step * soakStepMs);
    const last = step === steps;
    test.serial(`no false alarm: ${falseAlarmScenarioDescriptions[scenario]}; ${minutes(doneMs)} of ${minutes(durationMs)}`, (t) => {
      if (cluster === undefined) {
        cluster = new DetectionCluster({ seed, hosts: 100, monitors: 3 });
        faultFromMs = cluster.termStartWaitMs() + 500;
        installFalseAlarmScenario(cluster, scenario, faultFromMs);
      }
      cluster.world.runUntil(faultFromMs + doneMs);
      t.deepEqual(cluster.hostFailedProposals(), []);
      t.deepEqual(cluster.leaseLosses(), []);
      t.deepEqual(cluster.watchdogs.resets(), []);
      if (!last) return;
      const counters = cluster.leader.host.getSnapshot()?.context.core.counters;
      let targetSwitches = 0;
      for (const hostId of cluster.hostIds) targetSwitches += cluster.hostAgent(hostId) === undefined ? 0 : (cluster.sender(hostId).getSnapshot()?.context.switches ?? 0);
      t.log(JSON.stringify({ scenario, simulatedMs: durationMs, suspicions: counters?.suspicions ?? 0, refutations: counters?.refutations ?? 0, targetSwitches }));
      if (scenario !== "loss-5pct") t.true(targetSwitches > 0, "the fault moved hosts to other monitors");
    });
  }
}

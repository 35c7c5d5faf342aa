/**
 * False alarms over one simulated hour (issue 4): 100 hosts, 3 monitors,
 * default timings, under each fault of sim/detection/faultScenarios.ts. CI
 * runs the same hour as tests (test/detection/falseAlarms*.test.ts, one file
 * per fault); this runs it as one process per scenario, two at a time, and
 * prints the table of docs/failure-detection.md with wall and CPU seconds.
 *
 *   npx tsx bench/detectionSoak.ts                         # all five, 1 h each
 *   npx tsx bench/detectionSoak.ts --minutes 10 --only loss-5pct
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { DetectionCluster } from "../sim/detection/detectionCluster.ts";
import {
  falseAlarmScenarioDescriptions,
  falseAlarmScenarioNames,
  runFalseAlarmScenario,
  type FalseAlarmOutcome,
  type FalseAlarmScenarioName,
} from "../sim/detection/faultScenarios.ts";

const maxMinutes = 24 * 60;
const parallelRuns = 2;

function textArgument(name: string): string | undefined {
  const index = process.argv.indexOf(name);
  return index < 0 ? undefined : process.argv[index + 1];
}

function minutesArgument(): number {
  const text = textArgument("--minutes");
  if (text === undefined) return 60;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 1 || value > maxMinutes) throw new RangeError(`--minutes takes a whole number in [1, ${maxMinutes}]`);
  return value;
}

function isScenario(name: string): name is FalseAlarmScenarioName {
  return (falseAlarmScenarioNames as readonly string[]).includes(name);
}

if (process.argv.includes("--child")) {
  const name = textArgument("--scenario") ?? "";
  if (!isScenario(name)) throw new RangeError(`unknown scenario ${name}`);
  const startedAt = performance.now();
  const cpuAtStart = process.cpuUsage();
  const { outcome } = runFalseAlarmScenario(() => new DetectionCluster({ seed: 7, hosts: 100, monitors: 3 }), name, minutesArgument() * 60_000);
  const cpu = process.cpuUsage(cpuAtStart);
  process.stdout.write(`${JSON.stringify({ ...outcome, wallS: (performance.now() - startedAt) / 1_000, cpuS: (cpu.user + cpu.system) / 1e6 })}\n`);
} else {
  const minutes = minutesArgument();
  const only = textArgument("--only");
  if (only !== undefined && !isScenario(only)) throw new RangeError(`--only takes one of ${falseAlarmScenarioNames.join(", ")}`);
  const names = only === undefined ? [...falseAlarmScenarioNames] : [only];
  const script = fileURLToPath(import.meta.url);
  const results: Array<FalseAlarmOutcome & { wallS: number; cpuS: number }> = [];
  const runOne = (name: FalseAlarmScenarioName) =>
    new Promise<void>((resolve, reject) => {
      const child = spawn(process.execPath, ["--import", "tsx", script, "--child", "--scenario", name, "--minutes", String(minutes)], { stdio: ["ignore", "pipe", "inherit"] });
      let output = "";
      child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
      child.on("exit", (code) => {
        if (code !== 0) return reject(new Error(`${name} exited with ${code}`));
        results.push(JSON.parse(output.trim().split("\n").at(-1)!) as FalseAlarmOutcome & { wallS: number; cpuS: number });
        process.stderr.write(`${name} done\n`);
        resolve();
      });
    });
  const queue = [...names];
  await Promise.all(
    Array.from({ length: Math.min(parallelRuns, queue.length) }, async () => {
      for (let name = queue.shift(); name !== undefined; name = queue.shift()) await runOne(name);
    }),
  );
  results.sort((a, b) => names.indexOf(a.scenario) - names.indexOf(b.scenario));
  console.log(`| fault (100 hosts, 3 monitors, ${minutes} simulated min) | failure declarations | leases lost | watchdog resets | suspicions (refuted) | monitor switches | wall s | CPU s |`);
  console.log(`|---|---:|---:|---:|---:|---:|---:|---:|`);
  for (const result of results) {
    console.log(
      `| ${falseAlarmScenarioDescriptions[result.scenario]} | ${result.hostFailedProposals} | ${result.leaseLosses} | ${result.watchdogResets} | ${result.suspicions} (${result.refutations}) | ${result.targetSwitches} | ${result.wallS.toFixed(0)} | ${result.cpuS.toFixed(0)} |`,
    );
  }
}

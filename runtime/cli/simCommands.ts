import { statSync } from "node:fs";
import type { Command } from "commander";
import { runHeartbeatCluster, heartbeatClusterLimits } from "../../sim/runs/heartbeatCluster.ts";
import { runScenario, type ScenarioResult } from "../../sim/scenario/runScenario.ts";
import { writeTimeline } from "../../sim/scenario/timeline.ts";
import { parseBoundedInteger } from "./arguments.ts";
import { registerSimFuzzCommand } from "./simFuzzCommand.ts";
import type { CliOutput } from "./main.ts";
import { exitCodes, UsageError } from "./usageError.ts";

interface SimRunOptions {
  seed?: string;
  hosts?: string;
  monitors?: string;
  durationS?: string;
  json?: boolean;
  update?: boolean;
  timeline?: string;
}

const maxSeed = 2 ** 32 - 1;

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function scenarioJson(result: ScenarioResult) {
  const { timeline: _timeline, ...rest } = result;
  return rest;
}

function runScenarios(directories: readonly string[], options: SimRunOptions, output: CliOutput): number {
  for (const option of ["hosts", "monitors", "durationS"] as const) {
    if (options[option] !== undefined) {
      throw new UsageError(`--${option === "durationS" ? "duration-s" : option} applies to the embedded run only`, "a scenario's size and duration are in its cluster.json");
    }
  }
  if (options.timeline !== undefined && directories.length > 1) {
    throw new UsageError("--timeline takes one scenario at a time", "run the scenarios one by one to get a timeline each");
  }
  for (const directory of directories) {
    if (!isDirectory(directory)) throw new UsageError(`no scenario directory at ${directory}`, "a scenario is a directory with cluster.json, commands and expected.log (see scenarios/)");
  }
  const seed = options.seed === undefined ? undefined : parseBoundedInteger("--seed", options.seed, 0, maxSeed);
  const results: ScenarioResult[] = [];
  for (const directory of directories) {
    const result = runScenario(directory, { seed, update: options.update === true });
    results.push(result);
    if (options.timeline !== undefined) writeTimeline(result, options.timeline);
    if (options.json) continue;
    if (directories.length === 1) output.out(result.log);
    if (result.diff !== "") output.out(`\n${result.diff}`);
    for (const failure of result.failures) output.err(`haring: ${result.name}: ${failure}\n`);
    output.out(`${result.ok ? "ok" : "FAILED"} ${result.name} seed ${result.seed} expected.log ${result.expectedLog}\n`);
  }
  if (options.json) output.out(`${JSON.stringify(results.length === 1 ? scenarioJson(results[0]!) : results.map(scenarioJson), null, 2)}\n`);
  const failed = results.filter((result) => !result.ok);
  if (failed.length > 0) {
    output.err(`hint: replay with --seed ${failed[0]!.seed}; accept a reviewed change of behaviour with --update\n`);
    return exitCodes.failed;
  }
  return exitCodes.ok;
}

function runEmbedded(options: SimRunOptions, output: CliOutput): number {
  if (options.update) throw new UsageError("--update applies to scenario runs only", "give a scenario directory, e.g. haring sim run scenarios/monitor-crash --update");
  if (options.timeline !== undefined) throw new UsageError("--timeline applies to scenario runs only", "give a scenario directory");
  const limits = heartbeatClusterLimits;
  const seed = parseBoundedInteger("--seed", options.seed ?? "1", 0, maxSeed);
  const hosts = parseBoundedInteger("--hosts", options.hosts ?? "50", 1, limits.maxHosts);
  const monitors = parseBoundedInteger("--monitors", options.monitors ?? "3", 1, limits.maxMonitors);
  const durationS = parseBoundedInteger("--duration-s", options.durationS ?? "20", 1, limits.maxDurationS);
  const result = runHeartbeatCluster({ seed, hosts, monitors, durationMs: durationS * 1_000 });
  if (options.json) {
    output.out(`${JSON.stringify(result.summary, null, 2)}\n`);
  } else {
    output.out(result.transcript);
    output.out(`\n${result.summaryText}\n`);
  }
  if (!result.ok) {
    output.err(`haring: the run broke an invariant: ${result.failures.join("; ")}\nhint: replay with --seed ${seed}\n`);
    return exitCodes.failed;
  }
  return exitCodes.ok;
}

export function registerSimCommands(program: Command, output: CliOutput, setExitCode: (code: number) => void): void {
  const sim = program.command("sim").description("deterministic cluster simulations");
  const limits = heartbeatClusterLimits;
  sim
    .command("run")
    .description(
      "run scenario directories (cluster.json, commands, expected.log) and diff their logs; " +
        "without one, the embedded default: hosts heartbeating monitors under loss and a monitor crash",
    )
    .argument("[scenario-dirs...]", "scenario directories, e.g. scenarios/monitor-crash")
    .option("--seed <n>", "seed of the run; the same seed prints the same bytes (default: the scenario's, or 1)")
    .option("--hosts <n>", `embedded run: simulated hosts (1-${limits.maxHosts}, default 50)`)
    .option("--monitors <n>", `embedded run: monitor servers (1-${limits.maxMonitors}, default 3)`)
    .option("--duration-s <n>", `embedded run: virtual seconds (1-${limits.maxDurationS}, default 20)`)
    .option("--update", "scenario runs: rewrite expected.log with this run's log (only for the scenario's own seed and a passing run)")
    .option("--timeline <file>", "scenario run: write a self-contained HTML timeline of the run")
    .option("--json", "print JSON instead of the log")
    .action((directories: string[], options: SimRunOptions) => {
      setExitCode(directories.length > 0 ? runScenarios(directories, options, output) : runEmbedded(options, output));
    });
  registerSimFuzzCommand(sim, output, setExitCode);
}

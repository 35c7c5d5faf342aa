import type { Command } from "commander";
import { acceptorGrowthProblem, acceptorShrinkProblem } from "../../machines/paxos/acceptorSet.ts";
import { maxAcceptors } from "../../machines/paxos/config.ts";
import { paxosFuzzLimits, runPaxosFuzz } from "../../sim/paxos/paxosFuzz.ts";
import { fuzzScenarioLimits } from "../../sim/fuzz/fuzzScenario.ts";
import { runSystemFuzz, saveFuzzScenario, systemFuzzLimits } from "../../sim/fuzz/systemFuzz.ts";
import { parseBoundedInteger } from "./arguments.ts";
import type { CliOutput } from "./main.ts";
import { exitCodes, UsageError } from "./usageError.ts";

const maxStartSeed = 2 ** 32 - 1;
const maxViewHosts = 50;

interface FuzzOptions {
  seeds: string;
  startSeed: string;
  replay?: string;
  controllers: string;
  hosts?: string;
  view?: boolean;
  diskLossPercent?: string;
  chunkedTransfers?: boolean;
  bootstrapGate?: boolean;
  removeControllers?: string;
  addControllers?: string;
  save?: string;
  json?: boolean;
}

/**
 * `haring sim fuzz`: random clusters and fault schedules from consecutive
 * seeds (after TigerBeetle's VOPR), safety checked throughout and liveness
 * after the world is made whole. By default the whole system (every scenario
 * component: heartbeats, Paxos, detection, hypervisors, guests, the manager);
 * `--view` fuzzes the replicated view alone (controllers and host learners).
 * A failing seed is printed with the command that replays it; `--save DIR`
 * writes each failing run as a scenario directory for `haring sim run`.
 */
export function registerSimFuzzCommand(sim: Command, output: CliOutput, setExitCode: (code: number) => void): void {
  sim
    .command("fuzz")
    .description("random clusters and fault schedules from seeds; safety throughout, liveness after heal; prints failing seeds")
    .option("--seeds <n>", `how many seeds (1-${systemFuzzLimits.maxSeeds})`, "100")
    .option("--start-seed <n>", "first seed", "1")
    .option("--replay <seed>", "run this one seed (same as --start-seed SEED --seeds 1)")
    .option("--hosts <n>", `hosts per run (whole system: 1-${fuzzScenarioLimits.maxHosts}, default drawn per seed; --view: 0-${maxViewHosts}, default 3)`)
    .option("--view", "fuzz the replicated view alone (Paxos controllers and host learners)")
    .option("--controllers <n>", "controllers per run with --view (1-9)", "3")
    .option("--disk-loss-percent <n>", "with --view: percent of controller crashes that also lose the disk (0-100; one rejoin at a time)")
    .option("--chunked-transfers", "with --view: move snapshots, promises and rejoin states in small chunks")
    .option("--bootstrap-gate", "with --view: every controller starts as a controller process does, its empty disks through the bootstrap gate with bootstrap set (not with --add-controllers)")
    .option("--add-controllers <n>", "with --view: add n controllers to the acceptor set during each run, one stopped old controller at a time, then each on an empty disk, as `haring acceptors grow` does")
    .option("--remove-controllers <n>", "with --view: remove n controllers from the acceptor set during each run, one stopped controller at a time, as `haring acceptors shrink` does (1 to controllers - 1)")
    .option("--save <dir>", "write each failing run as a scenario directory under DIR")
    .option("--json", "print a JSON result")
    .action((options: FuzzOptions) => {
      const replay = options.replay === undefined ? undefined : parseBoundedInteger("--replay", options.replay, 0, maxStartSeed);
      const seeds = replay === undefined ? parseBoundedInteger("--seeds", options.seeds, 1, Math.min(paxosFuzzLimits.maxSeeds, systemFuzzLimits.maxSeeds)) : 1;
      const startSeed = replay ?? parseBoundedInteger("--start-seed", options.startSeed, 0, maxStartSeed);
      if (!options.view && (options.diskLossPercent !== undefined || options.chunkedTransfers || options.bootstrapGate || options.removeControllers !== undefined || options.addControllers !== undefined)) {
        throw new UsageError("--disk-loss-percent, --chunked-transfers, --bootstrap-gate, --remove-controllers and --add-controllers apply to --view only", "haring sim fuzz --view --disk-loss-percent 25 --chunked-transfers");
      }
      if (options.view) runViewFuzz(options, seeds, startSeed, output, setExitCode);
      else runWholeSystemFuzz(options, seeds, startSeed, output, setExitCode);
    });
}

function runViewFuzz(options: FuzzOptions, seeds: number, startSeed: number, output: CliOutput, setExitCode: (code: number) => void): void {
  const controllers = parseBoundedInteger("--controllers", options.controllers, 1, 9);
  const hosts = options.hosts === undefined ? 3 : parseBoundedInteger("--hosts", options.hosts, 0, maxViewHosts);
  const diskLossPercent = options.diskLossPercent === undefined ? 0 : parseBoundedInteger("--disk-loss-percent", options.diskLossPercent, 0, 100);
  const chunkedTransfers = options.chunkedTransfers === true;
  if (options.removeControllers !== undefined && controllers < 2) throw new UsageError("--remove-controllers needs 2 or more controllers", "haring sim fuzz --view --controllers 5 --remove-controllers 1");
  const removeControllers = options.removeControllers === undefined ? 0 : parseBoundedInteger("--remove-controllers", options.removeControllers, 1, controllers - 1);
  if (removeControllers > 0) {
    const ids = Array.from({ length: controllers }, (_, index) => `c${index + 1}`);
    const problem = acceptorShrinkProblem(ids, ids.slice(removeControllers));
    if (problem !== null) throw new UsageError(`--remove-controllers ${removeControllers} with ${controllers} controllers: ${problem}`, "haring sim fuzz --view --controllers 5 --remove-controllers 1");
  }
  if (removeControllers > 0 && options.addControllers !== undefined) throw new UsageError("--remove-controllers and --add-controllers: one set change per run", "haring sim fuzz --view --controllers 3 --add-controllers 2");
  if (options.addControllers !== undefined && controllers === 9) throw new UsageError("--add-controllers needs fewer than 9 controllers", "haring sim fuzz --view --controllers 3 --add-controllers 2");
  const addControllers = options.addControllers === undefined ? 0 : parseBoundedInteger("--add-controllers", options.addControllers, 1, 9 - controllers);
  if (addControllers > 0) {
    const ids = Array.from({ length: controllers + addControllers }, (_, index) => `c${index + 1}`);
    const problem = acceptorGrowthProblem(ids.slice(0, controllers), ids, maxAcceptors);
    if (problem !== null) throw new UsageError(`--add-controllers ${addControllers} with ${controllers} controllers: ${problem}`, "haring sim fuzz --view --controllers 3 --add-controllers 2");
  }
  const bootstrapGate = options.bootstrapGate === true;
  if (bootstrapGate && addControllers > 0) throw new UsageError("--bootstrap-gate: not with --add-controllers", "haring sim fuzz --view --bootstrap-gate --controllers 5 --remove-controllers 1");
  const result = runPaxosFuzz({ seeds, startSeed, controllers, hosts, diskLossPercent, chunkedTransfers, removeControllers, addControllers, bootstrapGate });
  if (options.json) {
    output.out(`${JSON.stringify({ ok: result.ok, seeds: result.seeds, failedSeeds: result.failedSeeds, failures: result.failures, totals: result.totals }, null, 2)}\n`);
  } else {
    output.out(`${result.summaryText}\n`);
  }
  for (const failure of result.failures) output.err(`haring: ${failure}\n`);
  if (!result.ok) {
    const faults = `${diskLossPercent > 0 ? ` --disk-loss-percent ${diskLossPercent}` : ""}${chunkedTransfers ? " --chunked-transfers" : ""}${removeControllers > 0 ? ` --remove-controllers ${removeControllers}` : ""}${addControllers > 0 ? ` --add-controllers ${addControllers}` : ""}${bootstrapGate ? " --bootstrap-gate" : ""}`;
    output.err(`hint: replay with haring sim fuzz --view --replay ${result.failedSeeds[0]} --controllers ${controllers} --hosts ${hosts}${faults}\n`);
    setExitCode(exitCodes.failed);
  }
}

function runWholeSystemFuzz(options: FuzzOptions, seeds: number, startSeed: number, output: CliOutput, setExitCode: (code: number) => void): void {
  const hosts = options.hosts === undefined ? undefined : parseBoundedInteger("--hosts", options.hosts, 1, fuzzScenarioLimits.maxHosts);
  const result = runSystemFuzz({ seeds, startSeed, hosts });
  const saved = options.save === undefined ? [] : result.failedScenarios.map((generated) => saveFuzzScenario(generated, options.save!));
  if (options.json) {
    output.out(
      `${JSON.stringify(
        { ok: result.ok, seeds: result.seeds, startSeed, capabilities: result.capabilities, failedSeeds: result.failedSeeds, failures: result.failures, saved, totals: result.totals },
        null,
        2,
      )}\n`,
    );
  } else {
    output.out(`${result.summaryText}\n`);
  }
  for (const failure of result.failures) output.err(`haring: ${failure}\n`);
  for (const directory of saved) output.err(`haring: saved ${directory} (replay: haring sim run ${directory})\n`);
  if (!result.ok) {
    const hostsFlag = hosts === undefined ? "" : ` --hosts ${hosts}`;
    output.err(`hint: replay with haring sim fuzz --replay ${result.failedSeeds[0]}${hostsFlag} [--save DIR]\n`);
    setExitCode(exitCodes.failed);
  }
}

import type { Command } from "commander";
import { paxosFuzzLimits, runPaxosFuzz } from "../../sim/paxos/paxosFuzz.ts";
import { parseBoundedInteger } from "./arguments.ts";
import type { CliOutput } from "./main.ts";
import { exitCodes } from "./usageError.ts";

const maxStartSeed = 2 ** 32 - 1;
const maxHosts = 50;

/**
 * `haring sim fuzz`: random fault schedules from consecutive seeds, safety
 * checked throughout and liveness after healing. Today it fuzzes the
 * replicated view (controllers and host learners under partitions, crashes,
 * loss, duplication, reordering, pauses and skew); a failing seed is printed,
 * and `--start-seed S --seeds 1` replays it.
 */
export function registerSimFuzzCommand(sim: Command, output: CliOutput, setExitCode: (code: number) => void): void {
  sim
    .command("fuzz")
    .description("random clusters and fault schedules from seeds; safety throughout, liveness after heal; prints failing seeds")
    .option("--seeds <n>", `how many seeds (1-${paxosFuzzLimits.maxSeeds})`, "100")
    .option("--start-seed <n>", "first seed; with --seeds 1 this replays one seed", "1")
    .option("--controllers <n>", "controllers per run (1-9)", "3")
    .option("--hosts <n>", `host learners per run (0-${maxHosts})`, "3")
    .option("--json", "print a JSON result")
    .action((options: { seeds: string; startSeed: string; controllers: string; hosts: string; json?: boolean }) => {
      const seeds = parseBoundedInteger("--seeds", options.seeds, 1, paxosFuzzLimits.maxSeeds);
      const startSeed = parseBoundedInteger("--start-seed", options.startSeed, 0, maxStartSeed);
      const controllers = parseBoundedInteger("--controllers", options.controllers, 1, 9);
      const hosts = parseBoundedInteger("--hosts", options.hosts, 0, maxHosts);
      const result = runPaxosFuzz({ seeds, startSeed, controllers, hosts });
      if (options.json) {
        output.out(`${JSON.stringify({ ok: result.ok, seeds: result.seeds, failedSeeds: result.failedSeeds, failures: result.failures, totals: result.totals }, null, 2)}\n`);
      } else {
        output.out(`${result.summaryText}\n`);
      }
      for (const failure of result.failures) output.err(`haring: ${failure}\n`);
      if (!result.ok) {
        output.err(`hint: replay with haring sim fuzz --start-seed ${result.failedSeeds[0]} --seeds 1 --controllers ${controllers} --hosts ${hosts}\n`);
        setExitCode(exitCodes.failed);
      }
    });
}

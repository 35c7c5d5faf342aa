import type { Command } from "commander";
import { runHeartbeatCluster, heartbeatClusterLimits } from "../../sim/runs/heartbeatCluster.ts";
import { parseBoundedInteger } from "./arguments.ts";
import type { CliOutput } from "./main.ts";
import { exitCodes } from "./usageError.ts";

export function registerSimCommands(program: Command, output: CliOutput, setExitCode: (code: number) => void): void {
  const sim = program.command("sim").description("deterministic cluster simulations");
  const limits = heartbeatClusterLimits;
  sim
    .command("run")
    .description("run the embedded default simulation: hosts heartbeating monitors under loss and a monitor crash")
    .option("--seed <n>", "seed of the run; the same seed prints the same bytes", "1")
    .option("--hosts <n>", `simulated hosts (1-${limits.maxHosts})`, "50")
    .option("--monitors <n>", `monitor servers (1-${limits.maxMonitors})`, "3")
    .option("--duration-s <n>", `virtual seconds to simulate (1-${limits.maxDurationS})`, "20")
    .option("--json", "print a JSON summary instead of the log")
    .action((options: { seed: string; hosts: string; monitors: string; durationS: string; json?: boolean }) => {
      const seed = parseBoundedInteger("--seed", options.seed, 0, 2 ** 32 - 1);
      const hosts = parseBoundedInteger("--hosts", options.hosts, 1, limits.maxHosts);
      const monitors = parseBoundedInteger("--monitors", options.monitors, 1, limits.maxMonitors);
      const durationS = parseBoundedInteger("--duration-s", options.durationS, 1, limits.maxDurationS);
      const result = runHeartbeatCluster({ seed, hosts, monitors, durationMs: durationS * 1_000 });
      if (options.json) {
        output.out(`${JSON.stringify(result.summary, null, 2)}\n`);
      } else {
        output.out(result.transcript);
        output.out(`\n${result.summaryText}\n`);
      }
      if (!result.ok) {
        output.err(`haring: the run broke an invariant: ${result.failures.join("; ")}\nhint: replay with --seed ${seed}\n`);
        setExitCode(exitCodes.failed);
      }
    });
}

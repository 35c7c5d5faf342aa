import type { Command } from "commander";
import { nodeMain } from "../node/nodeMain.ts";

/**
 * `haring node --config FILE`: one node process — a controller (Paxos, the
 * failure detector and the HA manager), a host (host agent, VM actors, view
 * learner, command executor and VM supervisor, watchdog) or a monitor —
 * chosen by the config's `role` (runtime/node/nodeConfig.ts;
 * examples/ has one of each). Every wrong field is reported (exit 2); exit 3
 * when it cannot start; 1 when it fails while running; 0 after SIGTERM/SIGINT.
 */
export function registerNodeCommand(program: Command, setExitCode: (code: number) => void): void {
  program
    .command("node")
    .description("run one node process (controller, host or monitor, by the config's role) until SIGTERM/SIGINT")
    .requiredOption("--config <file>", "the node's JSON config file (see examples/)")
    .action(async (options: { config: string }) => {
      // A node that ran exits the process when it stops: a stray timer must not keep it alive (stderr is synchronous for files and pipes).
      setExitCode(await nodeMain(["--config", options.config], { exitProcessWhenStopped: true }));
    });
}

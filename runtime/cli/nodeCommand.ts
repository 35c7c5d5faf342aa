import type { Command } from "commander";
import { main as runControllerMain } from "../controller/main.ts";

/**
 * `haring node --config FILE`: one node process. Today a node is a controller
 * (Paxos acceptor, proposer and learner; see docs/paxos.md); the config file's
 * fields are checked one by one and every wrong one is reported (exit 2).
 */
export function registerNodeCommand(program: Command, setExitCode: (code: number) => void): void {
  program
    .command("node")
    .description("run one controller node process until SIGTERM/SIGINT (config: a JSON file, see docs/paxos.md)")
    .requiredOption("--config <file>", "the node's JSON config file")
    .action(async (options: { config: string }) => {
      setExitCode(await runControllerMain(["--config", options.config]));
    });
}

/**
 * `haring acceptors grow <dataDir> --to c1,c2,c3,c4,c5 [--from c1,c2,c3]`: adds controllers to the acceptor set
 * recorded in one stopped controller's Paxos log (runtime/node/acceptorGrowth.ts; docs/paxos.md, "Adding
 * controllers"). Exit 0 when the log names the new set, 1 when the change is refused (nothing is written), 3 when the
 * directory cannot be used.
 */
import type { Command } from "commander";
import { AcceptorGrowthRefused, growAcceptorSet } from "../node/acceptorGrowth.ts";
import type { CliOutput } from "./main.ts";
import { exitCodes } from "./usageError.ts";

const idList = (text: string): string[] => text.split(",").map((id) => id.trim());

export function registerAcceptorsCommand(program: Command, output: CliOutput, setExitCode: (code: number) => void): void {
  const acceptors = program.command("acceptors").description("change the acceptor set recorded in a stopped controller's Paxos log (only adding controllers)");
  acceptors
    .command("grow")
    .description("record a larger acceptor set in one stopped controller's log; run it on every controller of the cluster, then start the added ones on empty data directories")
    .argument("<dataDir>", "the stopped controller's data directory (its config's dataDir)")
    .requiredOption("--to <ids>", "the new set, comma-separated: every controller of the old set and the added ones")
    .option("--from <ids>", "the set the log was written with, for a log from before the set was recorded")
    .action(async (dataDir: string, options: { to: string; from?: string }) => {
      try {
        const grown = await growAcceptorSet(dataDir, idList(options.to), options.from === undefined ? undefined : idList(options.from));
        output.out(
          `${grown.controllerId}: its Paxos log now names the acceptors ${grown.to.join(", ")} (was ${grown.from.join(", ")})\n` +
            `next: the same on every other controller of ${grown.from.join(", ")}; then "controllerIds": ${JSON.stringify(grown.to)} in every controller's and host's config; ` +
            `then start the added controllers on empty data directories, one at a time, each after the previous one logged paxos.rejoined\n`,
        );
        setExitCode(exitCodes.ok);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        output.err(`haring: nothing written: ${message}\n`);
        setExitCode(error instanceof AcceptorGrowthRefused ? exitCodes.failed : exitCodes.environment);
      }
    });
}

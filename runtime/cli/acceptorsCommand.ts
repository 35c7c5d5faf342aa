/**
 * `haring acceptors grow <dataDir> --to c1,…,c5 [--from c1,c2,c3]` and `haring acceptors shrink <dataDir> --to c1,c2
 * [--from c1,c2,c3]`: add controllers to, or remove them from, the acceptor set recorded in one stopped controller's
 * Paxos log (runtime/node/acceptorSetStep.ts; docs/paxos.md, "Adding controllers" and "Removing controllers"). Exit 0
 * when the log names the new set, 1 when the change is refused (nothing is written), 3 when the directory cannot be
 * used.
 */
import type { Command } from "commander";
import { AcceptorSetStepRefused, growAcceptorSet, shrinkAcceptorSet, type AcceptorSetStep } from "../node/acceptorSetStep.ts";
import type { CliOutput } from "./main.ts";
import { exitCodes } from "./usageError.ts";

const idList = (text: string): string[] => text.split(",").map((id) => id.trim());

const nextAfterGrowth = (step: AcceptorSetStep): string =>
  `next: the same on every other controller of ${step.from.join(", ")}; then "controllerIds": ${JSON.stringify(step.to)} in every controller's and host's config; ` +
  `then start the added controllers on empty data directories, one at a time, each after the previous one logged paxos.caught-up\n`;

const nextAfterShrink = (step: AcceptorSetStep): string => {
  const removed = step.from.filter((id) => !step.to.includes(id));
  return (
    `next: start ${step.controllerId} with "controllerIds": ${JSON.stringify(step.to)}; then the same on every other controller of ${step.to.join(", ")}, one at a time, each after the previous one is back; ` +
    `then stop ${removed.join(" and ")} for good and move ${removed.length > 1 ? "their data directories" : "its data directory"} aside; then the new list in every host's config; remove more only after all of that\n`
  );
};

export function registerAcceptorsCommand(program: Command, output: CliOutput, setExitCode: (code: number) => void): void {
  const acceptors = program.command("acceptors").description("change the acceptor set recorded in a stopped controller's Paxos log (add or remove controllers)");
  const step = (name: string, description: string, toHelp: string, change: typeof growAcceptorSet, next: (step: AcceptorSetStep) => string): void => {
    acceptors
      .command(name)
      .description(description)
      .argument("<dataDir>", "the stopped controller's data directory (its config's dataDir)")
      .requiredOption("--to <ids>", toHelp)
      .option("--from <ids>", "the set the log was written with, for a log from before the set was recorded")
      .action(async (dataDir: string, options: { to: string; from?: string }) => {
        try {
          const done = await change(dataDir, idList(options.to), options.from === undefined ? undefined : idList(options.from));
          output.out(`${done.controllerId}: its Paxos log now names the acceptors ${done.to.join(", ")} (was ${done.from.join(", ")})\n${next(done)}`);
          setExitCode(exitCodes.ok);
        } catch (error) {
          const message = error instanceof Error ? error.message : String(error);
          output.err(`haring: nothing written: ${message}\n`);
          setExitCode(error instanceof AcceptorSetStepRefused ? exitCodes.failed : exitCodes.environment);
        }
      });
  };
  step(
    "grow",
    "record a larger acceptor set in one stopped controller's log; run it on every controller of the cluster, then start the added ones on empty data directories",
    "the new set, comma-separated: every controller of the old set and the added ones",
    growAcceptorSet,
    nextAfterGrowth,
  );
  step(
    "shrink",
    "record a smaller acceptor set in one stopped controller's log; run it on every controller that stays, then stop the removed ones for good",
    "the new set, comma-separated: the old set without the removed controller",
    shrinkAcceptorSet,
    nextAfterShrink,
  );
}

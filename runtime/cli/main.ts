import { Command, CommanderError } from "commander";
import { registerGuestAgentCommand } from "./guestAgentCommand.ts";
import { registerInspectCommand } from "./inspectCommand.ts";
import { registerAcceptorsCommand } from "./acceptorsCommand.ts";
import { registerMaintenanceCommands } from "./maintenanceCommands.ts";
import { registerNodeCommand } from "./nodeCommand.ts";
import { registerSimCommands } from "./simCommands.ts";
import { registerUpCommand } from "./upCommand.ts";
import { exitCodes, UsageError } from "./usageError.ts";
import { registerViewCommand } from "./viewCommand.ts";
import { registerVmCommands } from "./vmCommands.ts";

export interface CliOutput {
  out(text: string): void;
  err(text: string): void;
}

const processOutput: CliOutput = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

/** Runs the CLI and returns the exit code; never throws. */
export async function main(argv: readonly string[], output: CliOutput = processOutput): Promise<number> {
  let exitCode: number = exitCodes.ok;
  const program = new Command("haring")
    .description("High-availability runtime for virtualization clusters")
    .version("0.1.0", "-V, --version")
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      writeOut: (text) => output.out(text),
      // commander's own messages become our one-line form below
      writeErr: () => {},
    });
  registerSimCommands(program, output, (code) => {
    exitCode = code;
  });
  registerNodeCommand(program, (code) => {
    exitCode = code;
  });
  registerGuestAgentCommand(program, output);
  registerUpCommand(program, output, (code) => {
    exitCode = code;
  });
  const setExitCode = (code: number): void => {
    exitCode = code;
  };
  registerVmCommands(program, output, setExitCode);
  registerMaintenanceCommands(program, output, setExitCode);
  registerViewCommand(program, output, setExitCode);
  registerInspectCommand(program, output, setExitCode);
  registerAcceptorsCommand(program, output, setExitCode);

  try {
    await program.parseAsync([...argv], { from: "user" });
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === "commander.helpDisplayed" || error.code === "commander.version" || error.code === "commander.help") {
        return exitCodes.ok;
      }
      if (error.code === "commander.executeSubCommandAsync") return exitCodes.environment;
      const message = error.message.replace(/^error:\s*/i, "").split("\n")[0];
      output.err(`haring: ${message}\nhint: run 'haring --help' to see the commands and options\n`);
      return exitCodes.usage;
    }
    if (error instanceof UsageError) {
      output.err(`haring: ${error.message}\nhint: ${error.hint}\n`);
      return exitCodes.usage;
    }
    const message = error instanceof Error ? error.message : String(error);
    output.err(`haring: ${message}\n`);
    return exitCodes.environment;
  }
}

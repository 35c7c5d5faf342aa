import type { Command } from "commander";
import { parseGuestCheckSpecs, guestCheckSpecHelp } from "../guestAgent/checkSpec.ts";
import { runGuestAgent } from "../guestAgent/main.ts";
import { parseBoundedInteger } from "./arguments.ts";
import { natsUrlList } from "./clusterConnection.ts";
import type { CliOutput } from "./main.ts";
import { UsageError } from "./usageError.ts";

const maxIntervalMs = 3_600_000;

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function asUsageError<T>(option: string, parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (error instanceof RangeError) throw new UsageError(`${option}: ${error.message}`, `see 'haring guest-agent --help'`);
    throw error;
  }
}

/** `haring guest-agent`: runs inside a VM and heartbeats the cluster over NATS until SIGINT/SIGTERM. */
export function registerGuestAgentCommand(program: Command, output: CliOutput): void {
  program
    .command("guest-agent")
    .description("run inside a VM: heartbeat the cluster over NATS, with optional application checks")
    .requiredOption("--vm <id>", "this VM's id in the cluster")
    .requiredOption("--cluster <id>", "the cluster id")
    .requiredOption("--nats <urls>", "NATS server URL(s), comma-separated")
    .option("--heartbeat-interval-ms <n>", "heartbeat interval", "250")
    .option("--check-interval-ms <n>", "application check interval", "2000")
    .option("--check-timeout-ms <n>", "timeout of one application check", "1000")
    .option("--check <spec>", `application check, repeatable: ${guestCheckSpecHelp}`, collect, [])
    .action(
      async (options: {
        vm: string;
        cluster: string;
        nats: string;
        heartbeatIntervalMs: string;
        checkIntervalMs: string;
        checkTimeoutMs: string;
        check: string[];
      }) => {
        const natsServers = natsUrlList(options.nats);
        const checks = asUsageError("--check", () => parseGuestCheckSpecs(options.check));
        const runOptions = {
          vmId: options.vm,
          clusterId: options.cluster,
          natsServers,
          heartbeatIntervalMs: parseBoundedInteger("--heartbeat-interval-ms", options.heartbeatIntervalMs, 1, maxIntervalMs),
          checkIntervalMs: parseBoundedInteger("--check-interval-ms", options.checkIntervalMs, 1, maxIntervalMs),
          checkTimeoutMs: parseBoundedInteger("--check-timeout-ms", options.checkTimeoutMs, 1, maxIntervalMs),
          checks,
          stopOnProcessSignals: true,
        };
        let run: Awaited<ReturnType<typeof runGuestAgent>>;
        try {
          run = await runGuestAgent(runOptions);
        } catch (error) {
          // runGuestAgent checks every option before connecting and reports a wrong one as a RangeError
          if (error instanceof RangeError) throw new UsageError(error.message, "see 'haring guest-agent --help'");
          throw error;
        }
        output.err(`haring guest-agent: heartbeating as ${run.nodeId} for vm ${options.vm}\n`);
        await run.finished;
      },
    );
}

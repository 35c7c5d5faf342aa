/**
 * `haring node --config FILE`: one node process of any role, from one JSON
 * config (nodeConfig.ts). It runs until SIGTERM or SIGINT and returns its
 * exit code (runningNode.ts): 0 after a clean stop, 1 when it failed while
 * running, 2 for a wrong command line or config (one line per problem, each
 * naming its field), 3 when it could not start (unreadable config file, NATS
 * unreachable, data directory in use, hypervisor or watchdog unusable).
 * Logs are JSON lines on stderr.
 */
import { readFileSync } from "node:fs";
import { configPathFromArgs, runController } from "../controller/main.ts";
import { runHostNode } from "./hostNode.ts";
import { runMonitorNode } from "./monitorNode.ts";
import { parseNodeConfigText, type NodeConfig } from "./nodeConfig.ts";
import { nodeExitCodes, type RunNodeOptions, type RunningNode } from "./runningNode.ts";

export interface NodeMainOptions extends RunNodeOptions {
  /** Problems and start failures (default: stderr). */
  readonly errorLine?: (line: string) => void;
  /** Stop on SIGTERM/SIGINT (default true). */
  readonly stopOnSignals?: boolean;
  /** Once a node has stopped, or failed to start, end the process with its exit code (a stray timer or a NATS client still trying must not keep it alive). */
  readonly exitProcessWhenStopped?: boolean;
}

/** Starts the node a validated config describes. */
export async function startNode(node: NodeConfig, options: RunNodeOptions = {}): Promise<RunningNode> {
  switch (node.role) {
    case "controller":
      return runController(node.config, node.paxos, options);
    case "host":
      return runHostNode(node.config, options);
    case "monitor":
      return runMonitorNode(node.config, options);
  }
}

export async function nodeMain(argv: readonly string[], options: NodeMainOptions = {}): Promise<number> {
  const errorLine = options.errorLine ?? ((line: string) => process.stderr.write(line));
  const usage = (problems: readonly string[], code: number = nodeExitCodes.usage): number => {
    for (const problem of problems) errorLine(`haring node: ${problem}\n`);
    errorLine('hint: haring node --config FILE; the file is JSON with "role": "controller", "host" or "monitor" (see examples/ and docs/failure-detection.md)\n');
    return code;
  };
  const args = configPathFromArgs(argv);
  if (!args.ok) return usage([args.problem]);
  let text: string;
  try {
    text = readFileSync(args.path, "utf8");
  } catch (error) {
    return usage([`cannot read ${args.path}: ${error instanceof Error ? error.message : String(error)}`], nodeExitCodes.environment);
  }
  const parsed = parseNodeConfigText(text);
  if (!parsed.ok) return usage(parsed.problems.map((problem) => `${args.path}: ${problem}`));
  let running: RunningNode;
  try {
    running = await startNode(parsed.node, options);
  } catch (error) {
    errorLine(`haring node: cannot start the ${parsed.node.role}: ${error instanceof Error ? error.message : String(error)}\n`);
    if (options.exitProcessWhenStopped === true) process.exit(nodeExitCodes.environment);
    return nodeExitCodes.environment;
  }
  if (options.stopOnSignals !== false) {
    const onSignal = () => void running.stop();
    process.once("SIGTERM", onSignal);
    process.once("SIGINT", onSignal);
  }
  const code = await running.finished;
  if (options.exitProcessWhenStopped === true) process.exit(code);
  return code;
}

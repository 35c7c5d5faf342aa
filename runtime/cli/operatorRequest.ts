/**
 * One operator request from the command line: connect, ask the leading
 * controller (actors/operator/operatorClient.ts: bounded attempts, follows
 * `not-leader`), print the answer and set the exit code:
 *
 * - 0: committed;
 * - 1: refused (admission control names the shortfall), or rejected by the
 *   view (an unknown VM, a host that is not up …): nothing changed;
 * - 3: no NATS, no leading controller within the bounds, or no outcome (it
 *   may still apply: the same command with the printed `--request-id` is safe
 *   to run again, the view applies one request id once).
 */
import { randomBytes } from "node:crypto";
import type { Command } from "commander";
import { requestOperator, type OperatorClientResult } from "../../actors/operator/operatorClient.ts";
import { maxOperatorRequestIdLength, type OperatorRequest } from "../../actors/operator/operatorMessages.ts";
import { addClusterOptions, checkClusterOptions, connectToCluster, type CheckedClusterOptions, type ClusterConnection, type ClusterOptions } from "./clusterConnection.ts";
import type { CliOutput } from "./main.ts";
import { exitCodes, UsageError } from "./usageError.ts";

const requestIdPattern = new RegExp(`^[A-Za-z0-9_-]{1,${maxOperatorRequestIdLength}}$`);

export interface OperatorCommandOptions extends ClusterOptions {
  json?: boolean;
  requestId?: string;
}

/** The options every operator command takes. */
export function addOperatorOptions(command: Command): Command {
  return addClusterOptions(command)
    .option("--json", "print the answer as one JSON object")
    .option("--request-id <id>", `this request's id (1-${maxOperatorRequestIdLength} of [A-Za-z0-9_-]; default: random); the same id is applied at most once`);
}

export interface CheckedOperatorOptions extends CheckedClusterOptions {
  readonly json: boolean;
  readonly requestId: string;
}

export function checkOperatorOptions(options: OperatorCommandOptions): CheckedOperatorOptions {
  const cluster = checkClusterOptions(options);
  const requestId = options.requestId ?? randomBytes(8).toString("hex");
  if (!requestIdPattern.test(requestId)) throw new UsageError(`--request-id must be 1-${maxOperatorRequestIdLength} of [A-Za-z0-9_-], got ${JSON.stringify(requestId.slice(0, 80))}`, "leave it out for a random one");
  return { ...cluster, json: options.json === true, requestId };
}

export function askLeader(connection: ClusterConnection, request: OperatorRequest): Promise<OperatorClientResult> {
  return new Promise((resolve) => requestOperator(connection.ports, request, resolve));
}

/** Sends `request`, prints what came back (`committed` as `done`), and returns the exit code. */
export async function runOperatorRequest(options: CheckedOperatorOptions, request: OperatorRequest, done: string, output: CliOutput, afterCommit?: (connection: ClusterConnection) => Promise<number>): Promise<number> {
  let connection: ClusterConnection;
  try {
    connection = await connectToCluster(options);
  } catch (error) {
    output.err(`haring: ${error instanceof Error ? error.message : String(error)}\nhint: is NATS running there? haring up prints its URL (--nats)\n`);
    return exitCodes.environment;
  }
  try {
    const result = await askLeader(connection, request);
    if (options.json) output.out(`${JSON.stringify(result.ok ? { ok: true, controller: result.controllerId, ...result.reply } : { ok: false, error: result.error, requestId: request.requestId })}\n`);
    if (!result.ok) {
      if (!options.json) output.err(`haring: ${result.error}\nhint: check --nats and --cluster (${options.clusterId}), and that the controllers run\n`);
      return exitCodes.environment;
    }
    const { reply, controllerId } = result;
    switch (reply.kind) {
      case "committed":
        if (!options.json) output.out(`${done} (committed at slot ${reply.slot} by ${controllerId})\n`);
        return afterCommit === undefined ? exitCodes.ok : await afterCommit(connection);
      case "rejected":
        if (!options.json) output.err(`haring: the view refused it at slot ${reply.slot}: ${reply.reason}\n`);
        return exitCodes.failed;
      case "refused":
        if (!options.json) output.err(`haring: ${controllerId} refused it: ${reply.reason}\n`);
        return exitCodes.failed;
      case "no-outcome":
        if (!options.json) output.err(`haring: not known whether it was applied: ${reply.reason}\nhint: run it again with --request-id ${request.requestId} (applied at most once)\n`);
        return exitCodes.environment;
      case "invalid":
      case "not-leader":
        if (!options.json) output.err(`haring: ${controllerId} answered ${reply.kind}${"reason" in reply ? `: ${reply.reason}` : ""}\n`);
        return exitCodes.failed;
    }
  } finally {
    await connection.close();
  }
}

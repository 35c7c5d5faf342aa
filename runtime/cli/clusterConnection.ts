/**
 * What the operator commands (`haring vm …`, `haring host …`, `haring view`)
 * share: their `--nats` and `--cluster` options, checked, and a short-lived
 * NATS connection with the ports they need (network and clock for the
 * operator client, JetStream KV for the view mirror). Requests go out from
 * `cliSenderId`, the same for every run, so the view command id of a request
 * (`op-cli-<requestId>`) is the same when it is run again with the same
 * `--request-id`.
 */
import { randomBytes } from "node:crypto";
import type { Command } from "commander";
import type { OperatorClientPorts } from "../../actors/operator/operatorClient.ts";
import { isValidId } from "../../actors/subjects.ts";
import { NatsNetwork } from "../natsNetwork.ts";
import { NatsStream } from "../natsStream.ts";
import { realClock } from "../realClock.ts";
import { UsageError } from "./usageError.ts";

/** How long a command waits for a first NATS connection before giving up. */
export const cliConnectTimeoutMs = 5_000;
/** Each JetStream request (the view mirror's reads). */
export const cliStreamApiTimeoutMs = 5_000;
export const defaultNatsUrl = "nats://127.0.0.1:4222";
export const defaultClusterId = "local";
export const cliSenderId = "cli";

export interface ClusterOptions {
  nats: string;
  cluster: string;
}

export function addClusterOptions(command: Command): Command {
  return command
    .option("--nats <urls>", "NATS server URL(s), comma-separated (haring up prints its own)", defaultNatsUrl)
    .option("--cluster <id>", "cluster id", defaultClusterId);
}

export interface CheckedClusterOptions {
  readonly natsUrls: readonly string[];
  readonly clusterId: string;
}

/** `--nats`: comma-separated server URLs, at least one. */
export function natsUrlList(raw: string): string[] {
  const natsUrls = raw
    .split(",")
    .map((url) => url.trim())
    .filter((url) => url.length > 0);
  if (natsUrls.length === 0) throw new UsageError("--nats needs at least one server URL", `for example --nats ${defaultNatsUrl}`);
  return natsUrls;
}

export function checkClusterOptions(options: ClusterOptions): CheckedClusterOptions {
  const natsUrls = natsUrlList(options.nats);
  if (!isValidId(options.cluster)) throw new UsageError(`--cluster must be 1-64 of [A-Za-z0-9_-], got ${JSON.stringify(options.cluster.slice(0, 80))}`, `for example --cluster ${defaultClusterId}`);
  return { natsUrls, clusterId: options.cluster };
}

export interface ClusterConnection {
  readonly ports: OperatorClientPorts;
  readonly stream: NatsStream;
  close(): Promise<void>;
}

export async function connectToCluster(options: CheckedClusterOptions): Promise<ClusterConnection> {
  let network: NatsNetwork;
  try {
    network = await NatsNetwork.connect({ servers: options.natsUrls, name: `haring-${options.clusterId}-${cliSenderId}-${randomBytes(4).toString("hex")}`, firstConnectTimeoutMs: cliConnectTimeoutMs, singleAttempt: true });
  } catch (error) {
    throw new Error(`no NATS server reachable at ${options.natsUrls.join(", ")}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const stream = new NatsStream(network.connection, { apiTimeoutMs: cliStreamApiTimeoutMs });
  return {
    ports: { nodeId: cliSenderId, clusterId: options.clusterId, network, clock: realClock },
    stream,
    async close() {
      await stream.close().catch(() => undefined);
      await network.close().catch(() => undefined);
    },
  };
}

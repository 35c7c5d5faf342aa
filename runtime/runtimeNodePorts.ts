import { randomInt } from "node:crypto";
import type { NodePorts } from "../actors/ports/nodePorts.ts";
import { createSeededRandom } from "../actors/seededRandom.ts";
import { isValidId } from "../actors/subjects.ts";
import { FileStorage } from "./fileStorage.ts";
import { JsonLog } from "./jsonLog.ts";
import { MetricsRegistry } from "./metricsRegistry.ts";
import { NatsNetwork } from "./natsNetwork.ts";
import { realClock } from "./realClock.ts";

export interface RuntimeNodeOptions {
  readonly nodeId: string;
  readonly clusterId: string;
  readonly natsServers: string | readonly string[];
  readonly dataDirectory: string;
  /** A fixed seed for reproducible runs; a random one otherwise. */
  readonly seed?: number;
  readonly logLine?: (line: string) => void;
}

export interface RuntimeNode {
  readonly ports: NodePorts;
  readonly network: NatsNetwork;
  readonly metrics: MetricsRegistry;
  close(): Promise<void>;
}

/** Fills one node's ports with the real things: NATS, the real clock, files with fsync, JSON logs. */
export async function connectRuntimeNode(options: RuntimeNodeOptions): Promise<RuntimeNode> {
  for (const [kind, id] of [["node", options.nodeId], ["cluster", options.clusterId]] as const) {
    if (!isValidId(id)) throw new RangeError(`invalid ${kind} id ${JSON.stringify(id)}: use 1-64 of [A-Za-z0-9_-]`);
  }
  const network = await NatsNetwork.connect({ servers: options.natsServers, name: `haring-${options.clusterId}-${options.nodeId}` });
  const metrics = new MetricsRegistry();
  const ports: NodePorts = {
    nodeId: options.nodeId,
    clusterId: options.clusterId,
    network,
    clock: realClock,
    random: createSeededRandom(options.seed ?? randomInt(0, 2 ** 31)),
    storage: new FileStorage(options.dataDirectory),
    log: new JsonLog(options.nodeId, options.logLine),
    metrics,
  };
  return { ports, network, metrics, close: () => network.close() };
}

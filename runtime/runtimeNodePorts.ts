import { randomInt } from "node:crypto";
import type { NodePorts } from "../actors/ports/nodePorts.ts";
import { createSeededRandom } from "../actors/seededRandom.ts";
import { isValidId } from "../actors/subjects.ts";
import { FileStorage } from "./fileStorage.ts";
import { JsonLog } from "./jsonLog.ts";
import { MetricsRegistry } from "./metricsRegistry.ts";
import { NatsNetwork } from "./natsNetwork.ts";
import { NatsStream } from "./natsStream.ts";
import { realClock } from "./realClock.ts";
import { startEventLoopStallWatch } from "./eventLoopStallWatch.ts";
import { fastCrc32 } from "./nativeCrc32.ts";

/** JetStream replicas of the streams and buckets a node creates: 1 on a single nats-server, 3 on a NATS cluster. */
export type StreamReplicas = 1 | 3;

export interface RuntimeNodeOptions {
  readonly nodeId: string;
  readonly clusterId: string;
  readonly natsServers: string | readonly string[];
  readonly dataDirectory: string;
  /** A fixed seed for reproducible runs; a random one otherwise. */
  readonly seed?: number;
  readonly logLine?: (line: string) => void;
  /** Replicas for what this node's group communication creates (default 1); every node of a cluster must use the same. */
  readonly streamReplicas?: StreamReplicas;
  /** Timeout of each JetStream API request (default: natsStream.ts's). */
  readonly streamApiTimeoutMs?: number;
}

export interface RuntimeNode {
  readonly ports: NodePorts;
  readonly network: NatsNetwork;
  /** The Stream port (`ports.stream`): JetStream on the same connection as the network. */
  readonly stream: NatsStream;
  readonly streamReplicas: StreamReplicas;
  readonly metrics: MetricsRegistry;
  /** Runs synchronous work this process does on purpose while it can do nothing else; a stall it causes is logged as expected (eventLoopStallWatch.ts). */
  attributeStall<T>(activity: string, work: () => T): T;
  /** Stops the stream's consumers and watchers, then closes the connection. */
  close(): Promise<void>;
}

/** Fills one node's ports with the real things: NATS and JetStream, the real clock, files with fsync, JSON logs. */
export async function connectRuntimeNode(options: RuntimeNodeOptions): Promise<RuntimeNode> {
  for (const [kind, id] of [["node", options.nodeId], ["cluster", options.clusterId]] as const) {
    if (!isValidId(id)) throw new RangeError(`invalid ${kind} id ${JSON.stringify(id)}: use 1-64 of [A-Za-z0-9_-]`);
  }
  const streamReplicas = options.streamReplicas ?? 1;
  if (streamReplicas !== 1 && streamReplicas !== 3) throw new RangeError(`streamReplicas must be 1 or 3, got ${String(streamReplicas)}`);
  const network = await NatsNetwork.connect({ servers: options.natsServers, name: `haring-${options.clusterId}-${options.nodeId}` });
  const metrics = new MetricsRegistry();
  const log = new JsonLog(options.nodeId, options.logLine);
  const stream = new NatsStream(network.connection, {
    ...(options.streamApiTimeoutMs !== undefined ? { apiTimeoutMs: options.streamApiTimeoutMs } : {}),
    onError: (context, message) => log.write("warn", "stream.error", { context, message: message.slice(0, 400) }),
  });
  const ports: NodePorts = {
    nodeId: options.nodeId,
    clusterId: options.clusterId,
    network,
    stream,
    clock: realClock,
    random: createSeededRandom(options.seed ?? randomInt(0, 2 ** 31)),
    storage: new FileStorage(options.dataDirectory),
    log,
    metrics,
    checksum: fastCrc32,
  };
  // Every node process reports its own event-loop stalls: they explain elections and fences that no fault caused.
  const stallWatch = startEventLoopStallWatch({ log, metrics });
  return {
    ports,
    network,
    stream,
    streamReplicas,
    metrics,
    attributeStall: (activity, work) => stallWatch.attribute(activity, work),
    close: async () => {
      stallWatch.stop();
      await stream.close().catch(() => undefined);
      await network.close();
    },
  };
}

/** Real node ports (NATS, JetStream, files, real clock) for group communication tests and the benchmark. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NodePorts } from "../../actors/ports/nodePorts.ts";
import { NatsStream } from "../../runtime/natsStream.ts";
import { connectRuntimeNode, type RuntimeNode } from "../../runtime/runtimeNodePorts.ts";

export interface RealNode {
  readonly ports: NodePorts;
  readonly stream: NatsStream;
  readonly runtime: RuntimeNode;
  /** Closes the connection (a crash from the cluster's point of view); the data directory stays. */
  close(): Promise<void>;
}

export const streamErrors: string[] = [];

export async function connectRealNode(nodeId: string, servers: string | readonly string[], dataDirectory: string, clusterId = "gc"): Promise<RealNode> {
  const runtime = await connectRuntimeNode({ nodeId, clusterId, natsServers: servers, dataDirectory, seed: 1, logLine: () => undefined });
  const stream = new NatsStream(runtime.network.connection, { apiTimeoutMs: 2_000, onError: (context, message) => streamErrors.push(`${nodeId} ${context}: ${message}`) });
  return {
    ports: { ...runtime.ports, stream },
    stream,
    runtime,
    close: async () => {
      await stream.close();
      await runtime.close();
    },
  };
}

export function tempDirectory(prefix: string): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

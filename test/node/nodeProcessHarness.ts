/**
 * What a test of `haring node` processes needs: a nats-server on free
 * loopback ports, a temp directory for configs and data, node processes
 * started from a config (written there, with the cluster id, the server and
 * a fast status file) and all of it killed and removed at the end; and
 * `waitFor`, polling a condition against the wall clock (the processes run
 * on it).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { main } from "../../runtime/cli/main.ts";
import { startNatsServer, type NatsServer } from "../../runtime/natsServer.ts";
import { startNodeProcess, writeNodeConfig, type NodeProcess } from "../../runtime/node/nodeProcess.ts";

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls every `pollMs` until `condition` holds or `timeoutMs` passed; the last answer of `condition`. */
export async function waitFor(condition: () => boolean, timeoutMs: number, pollMs = 50): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (condition()) return true;
    await sleep(pollMs);
  }
  return condition();
}

export interface SimHostSpec {
  readonly hostId: string;
  readonly vms: readonly { readonly vmId: string; readonly vcpus: number; readonly memoryMiB: number }[];
  readonly capacity: { readonly cpu: number; readonly memoryMiB: number };
}

export interface NodeProcessHarness {
  readonly server: NatsServer;
  readonly directory: string;
  readonly processes: readonly NodeProcess[];
  start(config: Record<string, unknown> & { readonly nodeId: string }): NodeProcess;
  /** Controllers (bootstrapping, each with a monitor) and hosts on the sim hypervisor, each monitored by every controller. */
  startSimCluster(
    controllerIds: readonly string[],
    hosts: readonly SimHostSpec[],
    controllerConfig?: Record<string, unknown>,
  ): { readonly controllers: readonly NodeProcess[]; readonly hosts: ReadonlyMap<string, NodeProcess> };
  /** Kills every node process, stops nats-server, removes the directory. */
  close(): Promise<void>;
}

export async function startNodeProcessHarness(clusterId: string): Promise<NodeProcessHarness> {
  const directory = mkdtempSync(join(tmpdir(), `haring-${clusterId}-`));
  const server = await startNatsServer();
  const processes: NodeProcess[] = [];
  const start = (config: Record<string, unknown> & { readonly nodeId: string }): NodeProcess => {
    const { configPath, dataDir } = writeNodeConfig(directory, { clusterId, natsUrls: [server.url], statusIntervalMs: 100, streamReplicas: 1, ...config });
    const node = startNodeProcess(config.nodeId, configPath, dataDir);
    processes.push(node);
    return node;
  };
  return {
    server,
    directory,
    processes,
    start,
    startSimCluster(controllerIds, hosts, controllerConfig = {}) {
      const controllers = controllerIds.map((nodeId) => start({ role: "controller", nodeId, controllerIds, bootstrap: true, monitor: true, ...controllerConfig }));
      const hostNodes = new Map(
        hosts.map((host) => [
          host.hostId,
          start({ role: "host", nodeId: host.hostId, controllerIds, monitorIds: controllerIds, hypervisor: { driver: "sim", vms: host.vms }, capacity: host.capacity }),
        ]),
      );
      return { controllers, hosts: hostNodes };
    },
    async close() {
      await Promise.all(processes.map((node) => node.kill("SIGKILL", 5_000)));
      await server.stop();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

/** `haring <argv> --nats <the harness's server> --cluster <clusterId>` run in this process: exit code and what it printed. */
export function haringCli(harness: () => NodeProcessHarness | undefined, clusterId: string) {
  return async (...argv: string[]): Promise<{ readonly code: number; readonly out: string; readonly err: string }> => {
    let out = "";
    let err = "";
    const code = await main([...argv, "--nats", harness()!.server.url, "--cluster", clusterId], { out: (text) => (out += text), err: (text) => (err += text) });
    return { code, out, err };
  };
}

/** A harness for the whole test file: started before its first test, closed after its last; the getter gives it to the tests. */
export function useNodeProcessHarness(test: { before(run: () => Promise<void>): void; after: { always(run: () => Promise<void>): void } }, clusterId: string): () => NodeProcessHarness {
  let harness: NodeProcessHarness | undefined;
  test.before(async () => {
    harness = await startNodeProcessHarness(clusterId);
  });
  test.after.always(async () => {
    await harness?.close();
  });
  return () => {
    if (!harness) throw new Error("the node process harness has not started");
    return harness;
  };
}

/**
 * A whole cluster on this machine as separate processes (`haring up`): a
 * nats-server with JetStream, three controllers (each with the failure
 * detector, a heartbeat monitor and the HA manager, mirroring the view into
 * the `haring-view` KV bucket while it leads) and N hosts on the `sim`
 * hypervisor, every node a `haring node --config` process with its config,
 * data directory and log file under one directory. Each host registers its
 * VMs in the view; the leader's manager starts them, and restarts them on the
 * other hosts when a host dies. Group communication uses one nats-server, so
 * `streamReplicas` is 1.
 *
 * `stop()` stops the hosts first (each fences itself: its VMs off), then the
 * controllers (each writes its final view to `<dir>/<id>/view.json`), then
 * nats-server; it is safe to call twice or after a failed start.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { defaultViewBucket } from "../../actors/view/viewKvMirror.ts";
import { startNatsServer, type NatsServer } from "../natsServer.ts";
import { startNodeProcess, writeNodeConfig, type NodeProcess } from "./nodeProcess.ts";

export const localControllerIds = ["c1", "c2", "c3"] as const;
export const maxLocalHosts = 50;
export const maxLocalVmsPerHost = 20;

export interface LocalClusterOptions {
  readonly directory: string;
  readonly clusterId: string;
  readonly hosts: number;
  readonly vmsPerHost: number;
}

export interface LocalCluster {
  readonly directory: string;
  readonly natsUrl: string;
  readonly natsMonitorUrl: string;
  readonly viewBucket: string;
  readonly controllers: readonly NodeProcess[];
  readonly hosts: readonly NodeProcess[];
  /** Resolves once every node process logged that it started; rejects with the first that did not. */
  readonly ready: Promise<void>;
  stop(): Promise<void>;
}

export async function startLocalCluster(options: LocalClusterOptions): Promise<LocalCluster> {
  if (!Number.isSafeInteger(options.hosts) || options.hosts < 1 || options.hosts > maxLocalHosts) throw new RangeError(`hosts must be within [1, ${maxLocalHosts}]`);
  if (!Number.isSafeInteger(options.vmsPerHost) || options.vmsPerHost < 0 || options.vmsPerHost > maxLocalVmsPerHost) {
    throw new RangeError(`vms per host must be within [0, ${maxLocalVmsPerHost}]`);
  }
  mkdirSync(options.directory, { recursive: true });
  const natsDirectory = join(options.directory, "nats");
  mkdirSync(natsDirectory, { recursive: true });
  const server: NatsServer = await startNatsServer({ storeDir: natsDirectory });
  const nodes: NodeProcess[] = [];
  const start = (config: Record<string, unknown> & { nodeId: string }): NodeProcess => {
    const { configPath, dataDir } = writeNodeConfig(options.directory, { clusterId: options.clusterId, natsUrls: [server.url], streamReplicas: 1, ...config });
    const node = startNodeProcess(config.nodeId, configPath, dataDir, { logFile: join(options.directory, `${config.nodeId}.log`) });
    nodes.push(node);
    return node;
  };
  const controllerIds = [...localControllerIds];
  // Admission control keeps room for one host failure; a one-host cluster has none to keep, and would admit no running VM.
  const manager = { hostFailuresToTolerate: options.hosts > 1 ? 1 : 0 };
  const controllers = controllerIds.map((nodeId) => start({ role: "controller", nodeId, controllerIds, bootstrap: true, kvMirror: true, detector: true, monitor: true, manager }));
  const hosts = Array.from({ length: options.hosts }, (_, index) => {
    const nodeId = `h${index + 1}`;
    const vms = Array.from({ length: options.vmsPerHost }, (_, vm) => ({ vmId: `${nodeId}-vm${vm + 1}`, virtualization: vm % 2 === 0 ? "full" : "para", vcpus: 2, memoryMiB: 2_048 }));
    return start({ role: "host", nodeId, controllerIds, monitorIds: controllerIds, hypervisor: { driver: "sim", vms }, capacity: { cpu: 32, memoryMiB: 131_072 } });
  });
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      await Promise.all(hosts.map((node) => node.kill("SIGTERM")));
      await Promise.all(controllers.map((node) => node.kill("SIGTERM")));
      await server.stop();
    })());
  const ready = Promise.all(nodes.map((node) => node.ready)).then(() => undefined);
  ready.catch(() => {});
  return {
    directory: options.directory,
    natsUrl: server.url,
    natsMonitorUrl: server.monitorUrl,
    viewBucket: defaultViewBucket,
    controllers,
    hosts,
    ready,
    stop,
  };
}

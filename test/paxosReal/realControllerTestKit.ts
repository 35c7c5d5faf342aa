/**
 * What the tests of controller processes over a real nats-server share: the
 * resources a test file starts (released in its `after.always`), a small
 * command to propose, and the controllers' JSON log lines by event.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createPaxosConfig } from "../../machines/paxos/config.ts";
import type { ViewCommand } from "../../machines/view/viewCommands.ts";
import { startLocalControllers, type LocalControllers, type LocalControllersSpec } from "../../runtime/controller/localControllers.ts";
import { connectViewClient, type ViewClient } from "../../runtime/controller/viewClient.ts";
import { startNatsServer, type NatsServer } from "../../runtime/natsServer.ts";

export interface RealClusterResources {
  nats?: NatsServer;
  cluster?: LocalControllers;
  client?: ViewClient;
  baseDir?: string;
}

/** Closes the client, stops the controllers and the server, removes the directory: whatever of it was started. */
export async function releaseRealCluster(resources: RealClusterResources): Promise<void> {
  await resources.client?.close().catch(() => undefined);
  await resources.cluster?.stopAll();
  await resources.nats?.stop();
  if (resources.baseDir) rmSync(resources.baseDir, { recursive: true, force: true });
}

/**
 * Waits until one controller leads with the lease and every controller votes. A controller whose process
 * reached its bootstrap gate late takes the rejoin path even at the first start (docs/paxos.md, "Bootstrap")
 * and needs every other controller to fence it; killing one before it is done leaves a majority without state
 * until that one is back (a loaded machine showed it twice). Tests that kill a controller start from here.
 */
export async function waitForLeaderAndEveryVote(cluster: LocalControllers, controllerIds: readonly string[], timeoutMs = 30_000): Promise<void> {
  await cluster.waitFor(
    "a leader holding the lease, and every controller voting",
    (statuses) => cluster.leader() !== undefined && controllerIds.every((id) => statuses.get(id)?.acceptorMode === "voting"),
    timeoutMs,
  );
}

/**
 * The start most tests here share: a nats-server, the controller processes in a fresh directory (status every
 * 50 ms, no HA manager: its F would enter the view and admission control refuse VMs without hosts), once one leads
 * and every one votes, and a view client. Everything is recorded in `resources` for `releaseRealCluster`.
 */
export async function startRealClusterWithClient(
  resources: RealClusterResources,
  options: {
    readonly clusterId: string;
    readonly dirPrefix: string;
    readonly controllerIds: readonly string[];
    readonly maxProposeAttempts: number;
    readonly spec?: Partial<LocalControllersSpec>;
  },
): Promise<{ readonly cluster: LocalControllers; readonly client: ViewClient }> {
  const { clusterId, controllerIds } = options;
  const nats = (resources.nats = await startNatsServer());
  const baseDir = (resources.baseDir = mkdtempSync(join(tmpdir(), options.dirPrefix)));
  const cluster = (resources.cluster = startLocalControllers({ clusterId, controllerIds, natsUrls: [nats.url], baseDir, statusIntervalMs: 50, manager: false, ...options.spec }));
  await waitForLeaderAndEveryVote(cluster, controllerIds);
  const client = (resources.client = await connectViewClient({
    clusterId,
    nodeId: "test-client",
    natsUrls: [nats.url],
    paxos: createPaxosConfig(controllerIds),
    clientLimits: { retryAfterMs: 100, maxRetryDelayMs: 400, maxProposeAttempts: options.maxProposeAttempts },
  }));
  return { cluster, client };
}

/** A VM of 1 CPU and 256 MiB, its id the command's too. */
export const addSmallVm = (id: string): ViewCommand => ({ id, type: "vm.add", vmId: id, resources: { cpu: 1, memoryMiB: 256 }, priority: "medium", rules: { affinity: [], antiAffinity: [] }, desiredState: "running" });

/** The JSON log lines a controller printed (its output tail, or part of it) with this event. */
export function logEvents(output: string, event: string): Record<string, unknown>[] {
  return output
    .split("\n")
    .filter((line) => line.includes(`"${event}"`))
    .flatMap((line) => {
      try {
        return [JSON.parse(line) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
}

import test from "ava";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defaultFailureDetectorConfig } from "../../machines/detection/detectionConfig.ts";
import { leaderMsCovering } from "../../machines/detection/leaseArithmetic.ts";
import { createPaxosConfig } from "../../machines/paxos/config.ts";
import type { ControllerStatusFile } from "../../runtime/controller/main.ts";
import { connectViewClient, type ViewClient } from "../../runtime/controller/viewClient.ts";
import { startNatsServer, type NatsServer } from "../../runtime/natsServer.ts";
import type { HostStatus } from "../../runtime/node/hostNode.ts";
import { startNodeProcess, writeNodeConfig, type NodeProcess } from "../../runtime/node/nodeProcess.ts";

/**
 * Recovery with the production processes: nats-server, three controllers
 * (Paxos, failure detector, monitor and HA manager each) and three hosts on
 * the `sim` driver, every one a `haring node --config` process. Each host's
 * VMs come into the view from its config and are started by the manager
 * through command multicast; then one host is killed with SIGKILL, and its
 * VMs must be placed on the others in the view and run there — never on two
 * live hosts at once (read from each host's status.json: the sim driver's
 * power states).
 */
const clusterId = "recovery";
const controllerIds = ["c1", "c2", "c3"];
const hostIds = ["h1", "h2", "h3"];
const vmsOf = (hostId: string) => [`${hostId}-a`, `${hostId}-b`];

let server: NatsServer;
const directory = mkdtempSync(join(tmpdir(), "haring-recovery-"));
const processes: NodeProcess[] = [];
let viewClient: ViewClient | undefined;

test.before(async () => {
  server = await startNatsServer();
});

test.after.always(async () => {
  await Promise.all(processes.map((node) => node.kill("SIGKILL", 5_000)));
  await viewClient?.close();
  await server?.stop();
  rmSync(directory, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(condition: () => boolean, timeoutMs: number, whileWaiting: () => void = () => {}): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    whileWaiting();
    if (condition()) return true;
    await sleep(50);
  }
  return condition();
}

function start(config: Record<string, unknown> & { nodeId: string }): NodeProcess {
  const { configPath, dataDir } = writeNodeConfig(directory, { clusterId, natsUrls: [server.url], statusIntervalMs: 100, streamReplicas: 1, ...config });
  const node = startNodeProcess(config.nodeId, configPath, dataDir);
  processes.push(node);
  return node;
}

test("haring node processes: a host killed with SIGKILL has its VMs placed on the other hosts by the manager and running there, never on two live hosts", async (t) => {
  const controllers = controllerIds.map((nodeId) => start({ role: "controller", nodeId, controllerIds, bootstrap: true, kvMirror: false, monitor: true }));
  const hosts = new Map(
    hostIds.map((nodeId) => [
      nodeId,
      start({
        role: "host",
        nodeId,
        controllerIds,
        monitorIds: controllerIds,
        hypervisor: { driver: "sim", vms: vmsOf(nodeId).map((vmId) => ({ vmId, vcpus: 2, memoryMiB: 2_048 })) },
        capacity: { cpu: 16, memoryMiB: 65_536 },
      }),
    ]),
  );
  await Promise.all(processes.map((node) => node.ready));
  t.true(await waitFor(() => controllers.some((controller) => controller.status<ControllerStatusFile>()?.holdsLease === true), 15_000), "a controller holds the Paxos lease");
  const firstLeaseAt = Date.now();
  viewClient = await connectViewClient({ clusterId, nodeId: "view-reader", natsUrls: [server.url], paxos: createPaxosConfig(controllerIds), logLine: () => {} });
  const view = () => viewClient!.view();
  const status = (hostId: string) => hosts.get(hostId)!.status<HostStatus>();
  const runningOn = (hostId: string): string[] =>
    Object.entries(status(hostId)?.powerStates ?? {})
      .filter(([, state]) => state === "running")
      .map(([vmId]) => vmId);

  // Every VM is running on the host whose config lists it: added, placed and started by the manager, not by the host.
  const allVms = hostIds.flatMap(vmsOf);
  const startedAtHome = await waitFor(() => hostIds.every((hostId) => vmsOf(hostId).every((vmId) => view().vms.get(vmId)?.placement?.hostId === hostId && runningOn(hostId).includes(vmId))), 20_000);
  t.true(startedAtHome, `every VM placed and running on its own host: ${JSON.stringify(hostIds.map((hostId) => [hostId, status(hostId)?.placedHere, runningOn(hostId)]))}`);
  if (!startedAtHome) return;
  t.true(
    controllers.some((controller) => controller.logs.some((line) => line.event === "manager.host-command" && line.action === "start" && line.host === "h3")),
    "the starts came from a manager",
  );
  for (const vmId of allVms) t.is(view().vms.get(vmId)?.desiredState, "running");

  // A new leader declares nothing before grants of an earlier one could have run out: kill only after that.
  const termStartWaitMs = leaderMsCovering(
    defaultFailureDetectorConfig.authorityValidForMs + defaultFailureDetectorConfig.hostLeaseMs + defaultFailureDetectorConfig.maxIsolationDelayMs,
    defaultFailureDetectorConfig.maxClockRateErrorPpm,
  );
  await sleep(Math.max(0, firstLeaseAt + termStartWaitMs + 200 - Date.now()));

  const victim = hosts.get("h3")!;
  const epochsBefore = new Map(vmsOf("h3").map((vmId) => [vmId, view().vms.get(vmId)!.placement!.epoch]));
  await victim.kill("SIGKILL");
  const killedAt = Date.now();
  const survivors = ["h1", "h2"];
  const doubles = new Set<string>();
  const checkNoDouble = () => {
    const seen = new Map<string, string>();
    for (const hostId of survivors) {
      for (const vmId of runningOn(hostId)) {
        if (seen.has(vmId)) doubles.add(`${vmId} on ${seen.get(vmId)} and ${hostId}`);
        seen.set(vmId, hostId);
      }
    }
  };
  const recovered = await waitFor(
    () =>
      vmsOf("h3").every((vmId) => {
        const placement = view().vms.get(vmId)?.placement;
        return placement != null && survivors.includes(placement.hostId) && runningOn(placement.hostId).includes(vmId);
      }),
    15_000,
    checkNoDouble,
  );
  t.log(`kill -9 h3 → its VMs running elsewhere within ${Date.now() - killedAt} ms`);
  t.true(recovered, `h3's VMs placed on h1/h2 and running there: ${JSON.stringify(vmsOf("h3").map((vmId) => [vmId, view().vms.get(vmId)?.placement]))}, running ${JSON.stringify(survivors.map((hostId) => [hostId, runningOn(hostId)]))}`);
  t.is(view().hosts.get("h3")?.state, "failed");
  for (const vmId of vmsOf("h3")) t.true(view().vms.get(vmId)!.placement!.epoch > epochsBefore.get(vmId)!, `${vmId} moved at a new placement epoch`);
  // Keep watching a little: a late or repeated start must not make a second copy.
  await waitFor(() => false, 1_000, checkNoDouble);
  t.deepEqual([...doubles], [], "no VM ran on two live hosts");
  for (const hostId of survivors) for (const vmId of vmsOf(hostId)) t.true(runningOn(hostId).includes(vmId), `${vmId} still runs on ${hostId}`);
  t.is(new Set(survivors.flatMap(runningOn)).size, allVms.length, "all six VMs run, each once");
  t.true(
    await waitFor(() => survivors.every((hostId) => runningOn(hostId).every((vmId) => status(hostId)?.vms[vmId] === "running")), 3_000),
    "the hosts' VM actors (the supervisor's, for VMs placed there) see every moved VM running",
  );
  t.true(
    controllers.some((controller) => controller.logs.some((line) => line.event === "detector.proposal" && line.type === "host-failed" && line.host === "h3")),
    "the failure came from the detector",
  );
});

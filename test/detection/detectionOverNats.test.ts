import test from "ava";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defaultFailureDetectorConfig } from "../../machines/detection/detectionConfig.ts";
import { leaderMsCovering } from "../../machines/detection/leaseArithmetic.ts";
import { createPaxosConfig } from "../../machines/paxos/config.ts";
import { connectViewClient, type ViewClient } from "../../runtime/controller/viewClient.ts";
import type { ControllerStatusFile } from "../../runtime/controller/main.ts";
import { startNatsServer, type NatsServer } from "../../runtime/natsServer.ts";
import type { HostStatus } from "../../runtime/node/hostNode.ts";
import { watchdogMagicCloseByte } from "../../runtime/watchdogDevice.ts";
import { startNodeProcess, writeNodeConfig, type NodeProcess } from "../../runtime/node/nodeProcess.ts";

/**
 * The production entry, `haring node --config FILE`, for every role over a
 * real nats-server: three controllers (Paxos on file storage, each running the
 * failure detector), two monitor processes and two host processes (the `sim`
 * hypervisor; each host's watchdog is a plain file standing in for
 * /dev/watchdog). The hosts register themselves through their view learners.
 * A failure counts when the view has committed it (read by a learner in this
 * process).
 */
const clusterId = "procs";
const controllerIds = ["c1", "c2", "c3"];
const monitorIds = ["m1", "m2"];
// A watchdog counts whole seconds, so the cluster allows 1 s from a lease's end to the host's reset.
const detection = { maxIsolationDelayMs: 1_000 };
const detectorConfig = { ...defaultFailureDetectorConfig, ...detection };

let server: NatsServer;
const directory = mkdtempSync(join(tmpdir(), "haring-procs-"));
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

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (condition()) return true;
    await sleep(20);
  }
  return condition();
}

function start(config: Record<string, unknown> & { nodeId: string }): NodeProcess {
  const { configPath, dataDir } = writeNodeConfig(directory, { clusterId, natsUrls: [server.url], statusIntervalMs: 100, detection, ...config });
  const node = startNodeProcess(config.nodeId, configPath, dataDir);
  processes.push(node);
  return node;
}

const failureProposals = (node: NodeProcess) => node.logs.filter((line) => line.event === "detector.proposal" && line.type === "host-failed");
const lostLeases = (node: NodeProcess) => node.logs.filter((line) => line.event === "host.isolate" && line.reason !== "boot");

test("haring node processes: kill -9 of a monitor raises no false alarm; kill -9 of a host is committed failed; watchdog pets stop on a crash and end with V on a clean stop", async (t) => {
  const controllers = controllerIds.map((nodeId) => start({ role: "controller", nodeId, controllerIds, bootstrap: true, kvMirror: false }));
  const monitors = new Map(monitorIds.map((nodeId) => [nodeId, start({ role: "monitor", nodeId })]));
  const watchdogFiles = new Map(["h1", "h2"].map((hostId) => [hostId, join(directory, `${hostId}.watchdog`)]));
  for (const path of watchdogFiles.values()) writeFileSync(path, "");
  const host = (nodeId: string, vms: unknown[]) =>
    start({
      role: "host",
      nodeId,
      controllerIds,
      monitorIds,
      isolationResponse: "power-off",
      hypervisor: { driver: "sim", vms },
      watchdog: { device: watchdogFiles.get(nodeId)!, timeoutMs: 1_000, petIntervalMs: 100 },
      capacity: { cpu: 16, memoryMiB: 65_536 },
    });
  const survivor = host("h1", [{ vmId: "vm1", virtualization: "full", vcpus: 2, memoryMiB: 2_048 }]);
  const victim = host("h2", []);
  await Promise.all(processes.map((node) => node.ready));

  const leaseSeen = await waitFor(() => controllers.some((controller) => controller.status<ControllerStatusFile>()?.holdsLease === true), 15_000);
  const firstLeaseAt = Date.now();
  t.true(leaseSeen, "a controller holds the Paxos lease");
  viewClient = await connectViewClient({ clusterId, nodeId: "view-reader", natsUrls: [server.url], paxos: createPaxosConfig(controllerIds) });
  const viewState = (hostId: string) => viewClient!.view().hosts.get(hostId)?.state;
  const hostStatus = (node: NodeProcess) => node.status<HostStatus>();
  t.true(await waitFor(() => viewState("h1") === "up" && viewState("h2") === "up", 20_000), "both hosts registered themselves and are up in the view");
  t.true(await waitFor(() => [survivor, victim].every((node) => hostStatus(node)?.phase === "leased"), 5_000), "both hosts hold a lease");
  t.true(await waitFor(() => hostStatus(survivor)?.vms.vm1 === "running", 5_000), "h1's VM was started once it held a lease, and its VM actor sees it running");

  // A new leader declares nothing before grants of an earlier one could have run out: kill only after that.
  const termStartWaitMs = leaderMsCovering(detectorConfig.authorityValidForMs + detectorConfig.hostLeaseMs + detectorConfig.maxIsolationDelayMs, detectorConfig.maxClockRateErrorPpm);
  await sleep(Math.max(0, firstLeaseAt + termStartWaitMs + 200 - Date.now()));

  // Kill the monitor that a host is heartbeating right now.
  const targeted = hostStatus(survivor)?.monitor ?? "m1";
  await monitors.get(targeted)!.kill("SIGKILL");
  await sleep(3_000);
  t.deepEqual(controllers.flatMap(failureProposals), [], `no host declared failed after monitor ${targeted} died`);
  t.deepEqual([survivor, victim].flatMap(lostLeases), [], "no host lost its lease");
  t.true([survivor, victim].every((node) => hostStatus(node)?.phase === "leased"));
  t.is(hostStatus(survivor)?.vms.vm1, "running");

  const victimPetsBefore = readFileSync(watchdogFiles.get("h2")!, "utf8").length;
  t.true(victimPetsBefore > 10, `h2 petted its watchdog (${victimPetsBefore} bytes)`);
  await victim.kill("SIGKILL");
  const killedAt = Date.now();
  const bound = leaderMsCovering(detectorConfig.hostLeaseMs + detectorConfig.maxIsolationDelayMs, detectorConfig.maxClockRateErrorPpm);
  // Real timers and a loaded machine: allow scheduling slack on top of the configured bound.
  const slackMs = 1_500;
  t.true(await waitFor(() => viewState("h2") === "failed", bound + slackMs), "the killed host is committed failed");
  t.log(`kill -9 host → committed failed within ${Date.now() - killedAt} ms (bound ${bound} + slack ${slackMs})`);
  const proposals = controllers.flatMap(failureProposals);
  t.deepEqual(
    proposals.map((line) => line.host),
    ["h2"],
    "only the killed host",
  );
  t.true(Date.parse(String(proposals[0]!.ts)) - killedAt >= detectorConfig.hostLeaseMs - 50, "not proposed before its lease could have run out");
  const victimWatchdog = readFileSync(watchdogFiles.get("h2")!, "utf8");
  t.false(victimWatchdog.includes(watchdogMagicCloseByte), "a killed host leaves its watchdog armed: the kernel would reset it");
  t.is(viewState("h1"), "up");

  // A clean stop fences the host (its VM off), then disarms the watchdog with the magic close.
  t.is(await survivor.kill("SIGTERM"), 0);
  const survivorWatchdog = readFileSync(watchdogFiles.get("h1")!, "utf8");
  t.true(survivorWatchdog.length > 10, "h1 petted its watchdog");
  t.is(survivorWatchdog.at(-1), watchdogMagicCloseByte, "the magic close comes last");
  t.is(survivorWatchdog.indexOf(watchdogMagicCloseByte), survivorWatchdog.length - 1, "and only on the clean stop");
  t.true(survivor.logs.some((line) => line.event === "host.stopping-vms" && line.vms === 1), "its running VM was stopped first");

  const stopped = await Promise.all([...controllers, ...monitors.values()].map((node) => node.kill("SIGTERM")));
  t.deepEqual(
    stopped.filter((_, index) => index < controllers.length || [...monitors.keys()][index - controllers.length] !== targeted),
    [0, 0, 0, 0],
    "the others stop cleanly on SIGTERM",
  );
});

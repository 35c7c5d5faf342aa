import test from "ava";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createRejectionCounter } from "../../actors/codec/rejectionCounter.ts";
import { startGuestWatchdog } from "../../actors/guest/guestWatchdogActor.ts";
import { clusterSubjects } from "../../actors/subjects.ts";
import type { GuestHealthReport } from "../../machines/guest/guestWatchdog.ts";
import { runGuestAgent, type GuestAgentRun } from "../../runtime/guestAgent/main.ts";
import { parseGuestCheckSpecs } from "../../runtime/guestAgent/checkSpec.ts";
import { startNatsServer, type NatsServer } from "../../runtime/natsServer.ts";
import { connectRuntimeNode, type RuntimeNode } from "../../runtime/runtimeNodePorts.ts";

let server: NatsServer;
let hostNode: RuntimeNode;
const dataDirectory = mkdtempSync(join(tmpdir(), "haring-guest-test-"));
const agents: GuestAgentRun[] = [];

test.before(async () => {
  server = await startNatsServer();
  hostNode = await connectRuntimeNode({
    nodeId: "h1",
    clusterId: "test",
    natsServers: server.url,
    dataDirectory: join(dataDirectory, "h1"),
    seed: 1,
    logLine: () => {},
  });
});

test.after.always(async () => {
  await Promise.all(agents.map((agent) => agent.stop()));
  await hostNode?.close();
  await server?.stop();
  rmSync(dataDirectory, { recursive: true, force: true });
});

const waitMs = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (condition()) return true;
    await waitMs(10);
  }
  return condition();
}

async function listeningServer(): Promise<{ server: Server; port: number }> {
  const listener = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => listener.listen(0, "127.0.0.1", () => resolve()));
  const address = listener.address();
  if (address === null || typeof address === "string") throw new Error("no port");
  return { server: listener, port: address.port };
}

const heartbeatIntervalMs = 50;
const missed = 4;

test("the real guest agent against a real nats-server: alive, hung when it stops, recovered when it runs again, app check failures", async (t) => {
  const reports: GuestHealthReport[] = [];
  const watchdog = startGuestWatchdog(hostNode.ports, {
    vmId: "vm1",
    rejections: createRejectionCounter(hostNode.ports),
    // this node has no hypervisor: there is no guest-ping to confirm with, silence alone decides
    config: { guestHeartbeatIntervalMs: heartbeatIntervalMs, guestMissedHeartbeatsBeforeHung: missed, guestBootGraceMs: 10_000 },
    onReport: (report) => reports.push(report),
  });
  await hostNode.network.connection.flush();
  const web = await listeningServer();
  const agentOptions = {
    vmId: "vm1",
    clusterId: "test",
    natsServers: server.url,
    heartbeatIntervalMs,
    checkIntervalMs: 150,
    checkTimeoutMs: 100,
    checks: parseGuestCheckSpecs([`tcp:web:127.0.0.1:${web.port}`, "cmd:truth:true"]),
    logLine: () => {},
  };
  const healths = () => reports.map((report) => report.health);

  const first = await runGuestAgent(agentOptions);
  agents.push(first);
  t.true(await waitFor(() => healths().includes("alive"), 5_000), "alive once beats arrive");

  // garbage on the guest subject is counted and dropped, the watchdog carries on
  hostNode.network.publish(clusterSubjects("test").guest("vm1"), new Uint8Array([0xc1, 0x00, 0xff]));
  await waitMs(100);
  t.true(hostNode.metrics.value("haring_messages_rejected_total", { reason: "malformed", family: "guest" }) >= 1 ||
    hostNode.metrics.value("haring_messages_rejected_total", { reason: "truncated", family: "guest" }) >= 1);

  await new Promise<void>((resolve) => web.server.close(() => resolve()));
  t.true(await waitFor(() => healths().includes("app-failed"), 5_000), "a closed port fails the tcp check");
  t.deepEqual(reports.find((report) => report.health === "app-failed")!.failingChecks, ["web"]);

  const stoppedAt = Date.now();
  await first.stop();
  t.true(await waitFor(() => healths().includes("hung"), 5_000), "hung once the agent is silent");
  const hungAfterMs = Date.now() - stoppedAt;
  t.true(hungAfterMs >= heartbeatIntervalMs * (missed - 1), `not before the beats were missed (${hungAfterMs} ms)`);

  const second = await runGuestAgent({ ...agentOptions, checks: parseGuestCheckSpecs(["cmd:truth:true"]) });
  agents.push(second);
  t.true(await waitFor(() => healths().at(-1) === "alive", 5_000), "recovered when the agent beats again");
  t.not(reports.at(-1)!.bootId, reports.find((report) => report.health === "app-failed")!.bootId, "a new run of the agent");
  t.deepEqual(healths(), ["alive", "app-failed", "hung", "alive"]);
  await second.stop();
  watchdog.dispose();
});

test("runGuestAgent refuses bad options with one clear error before connecting", async (t) => {
  await t.throwsAsync(runGuestAgent({ vmId: "bad id", clusterId: "test", natsServers: server.url }), { instanceOf: RangeError, message: /vm id/ });
  await t.throwsAsync(runGuestAgent({ vmId: "vm2", clusterId: "test", natsServers: server.url, heartbeatIntervalMs: 1 }), {
    instanceOf: RangeError,
    message: /guestHeartbeatIntervalMs/,
  });
  const controller = new AbortController();
  const run = await runGuestAgent({ vmId: "vm3", clusterId: "test", natsServers: server.url, signal: controller.signal, logLine: () => {} });
  controller.abort();
  await run.finished;
  t.is(run.host.status, "stopped");
});

import test from "ava";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createRejectionCounter } from "../../actors/codec/rejectionCounter.ts";
import { startHeartbeatMonitor } from "../../actors/heartbeat/heartbeatMonitorActor.ts";
import { heartbeatAcksMetric, startHeartbeatSender } from "../../actors/heartbeat/heartbeatSenderActor.ts";
import { rendezvousOrder } from "../../machines/heartbeat/rendezvousOrder.ts";
import { startNatsServer, type NatsServer } from "../../runtime/natsServer.ts";
import { connectRuntimeNode, type RuntimeNode } from "../../runtime/runtimeNodePorts.ts";

let server: NatsServer;
const nodes: RuntimeNode[] = [];
const dataDirectory = mkdtempSync(join(tmpdir(), "haring-hb-"));

test.before(async () => {
  server = await startNatsServer();
});

test.after.always(async () => {
  await Promise.all(nodes.map((node) => node.close()));
  await server?.stop();
  rmSync(dataDirectory, { recursive: true, force: true });
});

async function node(nodeId: string): Promise<RuntimeNode> {
  const runtimeNode = await connectRuntimeNode({
    nodeId,
    clusterId: "test",
    natsServers: server.url,
    dataDirectory: join(dataDirectory, nodeId),
    seed: 7,
    logLine: () => {},
  });
  nodes.push(runtimeNode);
  return runtimeNode;
}

const waitMs = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (condition()) return true;
    await waitMs(20);
  }
  return condition();
}

test("the heartbeat pair runs over a real nats-server and fails over when the preferred monitor goes away", async (t) => {
  const monitorIds = ["m1", "m2"];
  const [preferred, fallback] = rendezvousOrder("h1", monitorIds) as [string, string];
  const monitorNodes = new Map<string, RuntimeNode>();
  const monitorHosts = new Map<string, ReturnType<typeof startHeartbeatMonitor>>();
  for (const monitorId of monitorIds) {
    const monitorNode = await node(monitorId);
    monitorNodes.set(monitorId, monitorNode);
    monitorHosts.set(monitorId, startHeartbeatMonitor(monitorNode.ports, { rejections: createRejectionCounter(monitorNode.ports) }));
  }
  // let the monitors' subscriptions reach the server before the first heartbeat
  await Promise.all([...monitorNodes.values()].map((monitorNode) => monitorNode.network.connection.flush()));

  const hostNode = await node("h1");
  const sender = startHeartbeatSender(hostNode.ports, {
    monitorIds,
    config: { heartbeatIntervalMs: 50, missedAcksBeforeSwitch: 2, driftBackAfterMs: 60_000 },
    ackTimeoutMs: 40,
    rejections: createRejectionCounter(hostNode.ports),
  });

  t.true(await waitFor(() => (sender.getSnapshot()?.context.acksReceived ?? 0) >= 5, 5_000), "acks arrive from the preferred monitor");
  t.is(sender.getSnapshot()?.context.switches, 0);
  t.true((monitorHosts.get(preferred)!.getSnapshot()?.context.heartbeatsAcked ?? 0) >= 5);
  t.is(monitorHosts.get(fallback)!.getSnapshot()?.context.heartbeatsAcked, 0);
  t.true(hostNode.metrics.value(heartbeatAcksMetric) >= 5);

  // the preferred monitor's process goes away: its subscription is gone, requests get no-responders
  monitorHosts.get(preferred)!.dispose();
  await monitorNodes.get(preferred)!.close();

  t.true(await waitFor(() => (sender.getSnapshot()?.context.switches ?? 0) >= 1, 5_000), "the host switches monitors");
  const ackedByFallbackBefore = monitorHosts.get(fallback)!.getSnapshot()?.context.heartbeatsAcked ?? 0;
  t.true(
    await waitFor(() => (monitorHosts.get(fallback)!.getSnapshot()?.context.heartbeatsAcked ?? 0) >= ackedByFallbackBefore + 5, 5_000),
    "the fallback monitor acks the host's heartbeats",
  );
  t.is(sender.getSnapshot()?.context.monitorOrder[sender.getSnapshot()!.context.targetIndex], fallback);
  sender.dispose();
});

/**
 * One host agent or monitor as its own OS process over a real nats-server,
 * for the real-process detection test and bench (kill -9 needs a process).
 * A `haring node --config` CLI will replace this; until then:
 *
 *   node --import tsx test/detection/detectionNodeProcess.ts --role monitor --id m1 \
 *        --nats nats://127.0.0.1:4222 --cluster test --data-dir /tmp/x [--monitors m1,m2,m3]
 *   node --import tsx test/detection/detectionNodeProcess.ts --role host --id h1 ... --monitors m1,m2,m3
 *   node --import tsx test/detection/detectionNodeProcess.ts --role hosts --id h --count 200 ...   (many hosts, one process)
 *
 * Prints one JSON line per event on stdout: `{"event":"ready"}` once connected,
 * `{"event":"isolated",...}` whenever a host applies its isolation response
 * (there are no VMs here: isolation is recorded only), and `{"event":"stats",...}`
 * every second (CPU time used by this process, machine events handled, events
 * dropped by full mailboxes so far).
 */
import { join } from "node:path";
import { createRejectionCounter } from "../../actors/codec/rejectionCounter.ts";
import type { IsolationResponder } from "../../actors/detection/hostIsolation.ts";
import { digestFailuresMetric, startHeartbeatMonitor } from "../../actors/heartbeat/heartbeatMonitorActor.ts";
import { startHeartbeatSender } from "../../actors/heartbeat/heartbeatSenderActor.ts";
import { defaultHostAgentConfig, defaultMonitorAgentConfig } from "../../machines/detection/detectionConfig.ts";
import { mailboxDroppedMetric } from "../../actors/actorHost.ts";
import { connectRuntimeNode, type RuntimeNode } from "../../runtime/runtimeNodePorts.ts";

const maxHostsPerProcess = 5_000;

function argument(name: string, fallback?: string): string {
  const index = process.argv.indexOf(`--${name}`);
  const value = index >= 0 ? process.argv[index + 1] : fallback;
  if (value === undefined) {
    process.stderr.write(`missing --${name}\nusage: detectionNodeProcess.ts --role monitor|host|hosts --id ID --nats URL --cluster ID --data-dir DIR --monitors m1,m2 [--count N]\n`);
    process.exit(2);
  }
  return value;
}

function emit(event: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ event, ...fields })}\n`);
}

const role = argument("role");
const id = argument("id");
const nats = argument("nats");
const clusterId = argument("cluster", "test");
const dataDirectory = argument("data-dir");
const monitorIds = argument("monitors", "m1,m2,m3").split(",");
const count = Number(argument("count", "1"));
if (!["monitor", "host", "hosts"].includes(role) || !Number.isSafeInteger(count) || count < 1 || count > maxHostsPerProcess) {
  process.stderr.write(`--role must be monitor, host or hosts; --count a whole number in [1, ${maxHostsPerProcess}]\n`);
  process.exit(2);
}

const nodes: RuntimeNode[] = [];
let handled = 0;

async function connect(nodeId: string): Promise<RuntimeNode> {
  const node = await connectRuntimeNode({ nodeId, clusterId, natsServers: nats, dataDirectory: join(dataDirectory, nodeId), logLine: () => {} });
  nodes.push(node);
  return node;
}

async function startHost(hostId: string): Promise<void> {
  const node = await connect(hostId);
  const isolation: IsolationResponder = {
    isolate: (request, done) => {
      emit("isolated", { hostId, reason: request.reason, incarnation: request.incarnation });
      setTimeout(done, 0);
    },
  };
  const sender = startHeartbeatSender(node.ports, {
    monitorIds,
    config: defaultHostAgentConfig,
    ackTimeoutMs: defaultHostAgentConfig.ackTimeoutMs,
    rejections: createRejectionCounter(node.ports),
    lease: { maxAcceptedLeaseMs: defaultHostAgentConfig.maxAcceptedLeaseMs, isolationResponse: "power-off", isolation },
  });
  sender.onSnapshot(() => handled++);
}

async function main(): Promise<void> {
  if (role === "monitor") {
    const node = await connect(id);
    const monitor = startHeartbeatMonitor(node.ports, { rejections: createRejectionCounter(node.ports), reporting: defaultMonitorAgentConfig });
    monitor.onSnapshot(() => handled++);
    await node.network.connection.flush();
  } else if (role === "host") {
    await startHost(id);
  } else {
    const started: Promise<void>[] = [];
    for (let index = 1; index <= count; index++) started.push(startHost(`${id}${index}`));
    await Promise.all(started);
  }
  emit("ready", { role, id, count });
  let lastCpu = process.cpuUsage();
  let lastAt = performance.now();
  setInterval(() => {
    const cpu = process.cpuUsage(lastCpu);
    const now = performance.now();
    const mailboxDropped = nodes.reduce((sum, node) => sum + node.metrics.total(mailboxDroppedMetric), 0);
    const digestFailures = nodes.reduce((sum, node) => sum + node.metrics.total(digestFailuresMetric), 0);
    emit("stats", { cpuShare: (cpu.user + cpu.system) / 1_000 / (now - lastAt), events: handled, mailboxDropped, digestFailures });
    handled = 0;
    lastCpu = process.cpuUsage();
    lastAt = now;
  }, 1_000).unref();
}

const shutdown = (): void => {
  void Promise.all(nodes.map((node) => node.close())).finally(() => process.exit(0));
};
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});

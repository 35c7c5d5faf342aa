import test from "ava";
import { execFileSync } from "node:child_process";
import { createReadStream, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createRejectionCounter } from "../../actors/codec/rejectionCounter.ts";
import type { IsolationRequest } from "../../actors/detection/hostIsolation.ts";
import { heartbeatMessages } from "../../actors/heartbeat/heartbeatMessages.ts";
import { startHeartbeatSender } from "../../actors/heartbeat/heartbeatSenderActor.ts";
import { clusterSubjects } from "../../actors/subjects.ts";
import { defaultHostAgentConfig } from "../../machines/detection/detectionConfig.ts";
import { MetricsRegistry } from "../../runtime/metricsRegistry.ts";
import { startNatsServer, type NatsServer } from "../../runtime/natsServer.ts";
import { realClock } from "../../runtime/realClock.ts";
import { connectRuntimeNode, type RuntimeNode } from "../../runtime/runtimeNodePorts.ts";
import { kernelWatchdogTimeoutMs, WatchdogDevice, watchdogPetsMetric, watchdogWriteFailuresMetric } from "../../runtime/watchdogDevice.ts";

const directory = mkdtempSync(join(tmpdir(), "haring-watchdog-"));
let server: NatsServer | undefined;
const nodes: RuntimeNode[] = [];
test.after.always(async () => {
  await Promise.all(nodes.map((node) => node.close()));
  await server?.stop();
  rmSync(directory, { recursive: true, force: true });
});

const silentLog = { write: () => {} };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function deviceFile(name: string): string {
  const path = join(directory, name);
  writeFileSync(path, "");
  return path;
}

test("pets are written at most once per pet interval, the device opens on the first pet, and only a clean close writes V", (t) => {
  let nowMs = 0;
  const metrics = new MetricsRegistry();
  const device = deviceFile("file-clean");
  const watchdog = new WatchdogDevice({ device, timeoutMs: 1_000, petIntervalMs: 100, now: () => nowMs, log: silentLog, metrics });
  t.false(watchdog.isOpen, "not armed before the agent is healthy");
  for (nowMs = 0; nowMs < 1_000; nowMs += 25) watchdog.pet();
  t.true(watchdog.isOpen);
  t.is(readFileSync(device, "utf8"), ".".repeat(10), "one pet per 100 ms of 40 calls");
  t.is(metrics.total(watchdogPetsMetric), 10);
  watchdog.close("clean");
  watchdog.pet();
  t.is(readFileSync(device, "utf8"), `${".".repeat(10)}V`, "V last, and nothing after the close");

  const abandoned = deviceFile("file-abandon");
  const crashed = new WatchdogDevice({ device: abandoned, timeoutMs: 1_000, petIntervalMs: 100, now: () => nowMs, log: silentLog, metrics: new MetricsRegistry() });
  crashed.pet();
  crashed.close("abandon");
  t.is(readFileSync(abandoned, "utf8"), ".", "an abandoned watchdog stays armed: no V");

  const never = deviceFile("file-never");
  const unused = new WatchdogDevice({ device: never, timeoutMs: 1_000, petIntervalMs: 100, now: () => nowMs, log: silentLog, metrics: new MetricsRegistry() });
  unused.close("clean");
  t.is(readFileSync(never, "utf8"), "", "a device never opened is never written");
});

test("a device that cannot be opened is counted and retried, never thrown", (t) => {
  let nowMs = 0;
  const metrics = new MetricsRegistry();
  const device = join(directory, "appears-later");
  const watchdog = new WatchdogDevice({ device, timeoutMs: 1_000, petIntervalMs: 100, now: () => nowMs, log: silentLog, metrics });
  t.notThrows(() => watchdog.pet());
  t.is(metrics.value(watchdogWriteFailuresMetric, { operation: "open" }), 1);
  writeFileSync(device, "");
  nowMs = 10;
  watchdog.pet();
  t.is(readFileSync(device, "utf8"), ".", "the next pet opens it");
});

test("the kernel's timeout is read from sysfs; a longer one than configured, or a device that cannot be written, is refused", (t) => {
  const sysfs = join(directory, "sysfs");
  mkdirSync(join(sysfs, "watchdog0"), { recursive: true });
  writeFileSync(join(sysfs, "watchdog0", "timeout"), "2\n");
  t.is(kernelWatchdogTimeoutMs("/dev/watchdog", sysfs), 2_000, "/dev/watchdog is watchdog0");
  t.is(kernelWatchdogTimeoutMs("/dev/watchdog1", sysfs), undefined);
  const device = deviceFile("sysfs-checked");
  const options = { device, petIntervalMs: 100, now: () => 0, log: silentLog, metrics: new MetricsRegistry(), sysfsDirectory: sysfs };
  // A file named like the device stands in for it; its sysfs entry is the fake one above.
  const named = join(directory, "watchdog");
  writeFileSync(named, "");
  t.regex(new WatchdogDevice({ ...options, device: named, timeoutMs: 1_000 }).startupProblem() ?? "", /kernel's timeout for .*watchdog is 2000 ms, longer than watchdog\.timeoutMs 1000/);
  t.is(new WatchdogDevice({ ...options, device: named, timeoutMs: 2_000 }).startupProblem(), undefined);
  t.is(new WatchdogDevice({ ...options, timeoutMs: 1_000 }).startupProblem(), undefined, "no sysfs entry (a FIFO or a file): nothing to compare");
  t.regex(new WatchdogDevice({ ...options, device: join(directory, "missing"), timeoutMs: 1_000 }).startupProblem() ?? "", /cannot write to the watchdog device .*missing/);
});

test("through a FIFO standing in for the device: the pet bytes arrive, then V and the end on a clean close", async (t) => {
  const fifo = join(directory, "watchdog.fifo");
  execFileSync("mkfifo", [fifo]);
  let received = "";
  const reader = createReadStream(fifo, { encoding: "utf8" });
  reader.on("data", (chunk) => (received += chunk));
  const ended = new Promise<void>((resolve) => reader.on("end", () => resolve()));
  const watchdog = new WatchdogDevice({ device: fifo, timeoutMs: 1_000, petIntervalMs: 20, now: () => realClock.now(), log: silentLog, metrics: new MetricsRegistry() });
  // Until the reader has the FIFO open, opening fails (non-blocking) and is retried on the next pet.
  const deadline = Date.now() + 5_000;
  while (received.length < 5 && Date.now() < deadline) {
    watchdog.pet();
    await sleep(25);
  }
  t.true(received.length >= 5, `pets arrived (${received.length})`);
  t.regex(received, /^\.+$/);
  watchdog.close("clean");
  await ended;
  t.is(received.at(-1), "V");
});

test("a host agent pets while it holds a lease, and stops the moment it isolates (the kernel would then reset the machine)", async (t) => {
  server = await startNatsServer();
  const connect = async (nodeId: string) => {
    const node = await connectRuntimeNode({ nodeId, clusterId: "wd", natsServers: server!.url, dataDirectory: join(directory, nodeId), logLine: () => {} });
    nodes.push(node);
    return node;
  };
  const monitor = await connect("m1");
  const host = await connect("h1");
  // A monitor stand-in that grants a lease to every heartbeat until told to go quiet.
  let granting = true;
  monitor.network.subscribe(clusterSubjects("wd").heartbeat("m1"), (message) => {
    const ping = heartbeatMessages.decode(message.data, ["hb.ping"]);
    if (!granting || !ping.ok || message.reply === undefined) return;
    const { hostId, sequence } = ping.message.body;
    monitor.network.publish(message.reply, heartbeatMessages.encode("hb.ack", "m1", `ack-${sequence}`, { monitorId: "m1", hostId, sequence, leaseMs: 1_100, grant: "lease" }));
  });
  await monitor.network.connection.flush();

  const device = deviceFile("agent");
  const watchdog = new WatchdogDevice({ device, timeoutMs: 1_000, petIntervalMs: 50, now: () => realClock.now(), log: silentLog, metrics: new MetricsRegistry() });
  const isolations: IsolationRequest[] = [];
  // The VMs never finish stopping: the agent stays isolating.
  const sender = startHeartbeatSender(host.ports, {
    monitorIds: ["m1"],
    config: defaultHostAgentConfig,
    ackTimeoutMs: defaultHostAgentConfig.ackTimeoutMs,
    rejections: createRejectionCounter(host.ports),
    lease: {
      maxAcceptedLeaseMs: 1_100,
      isolationResponse: "power-off",
      watchdog,
      isolation: { isolate: (request, done) => (isolations.push(request), request.reason === "boot" && setTimeout(done, 0)) },
    },
  });
  const phase = () => sender.getSnapshot()?.context.phase;
  const deadline = Date.now() + 5_000;
  while (phase() !== "leased" && Date.now() < deadline) await sleep(20);
  t.is(phase(), "leased");
  const leasedAt = readFileSync(device, "utf8").length;
  await sleep(500);
  const petsWhileLeased = readFileSync(device, "utf8").length - leasedAt;
  t.true(petsWhileLeased >= 4, `petted while leased (${petsWhileLeased} in 500 ms)`);

  granting = false;
  const isolateDeadline = Date.now() + 3_000;
  while (phase() !== "isolating" && Date.now() < isolateDeadline) await sleep(10);
  t.is(phase(), "isolating", "the lease ran out");
  t.deepEqual(
    isolations.map((request) => request.reason),
    ["boot", "lease-expired"],
  );
  const atIsolation = readFileSync(device, "utf8");
  await sleep(600);
  t.is(readFileSync(device, "utf8"), atIsolation, "no pet while isolating");
  t.false(atIsolation.includes("V"));
  sender.dispose();
  watchdog.close("abandon");
});

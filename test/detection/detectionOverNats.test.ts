import test from "ava";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { createRejectionCounter } from "../../actors/codec/rejectionCounter.ts";
import { startDetectorOnController, type DetectorOnController } from "../../actors/detection/detectorOnController.ts";
import { startControllerActor, type ControllerActor } from "../../actors/paxos/controllerActor.ts";
import type { IsolationRequest } from "../../actors/detection/hostIsolation.ts";
import { startHeartbeatSender, type HeartbeatSenderHost } from "../../actors/heartbeat/heartbeatSenderActor.ts";
import { defaultDetectorTickMs, defaultFailureDetectorConfig, defaultHostAgentConfig } from "../../machines/detection/detectionConfig.ts";
import type { HostProposal } from "../../machines/detection/hostProposals.ts";
import { leaderMsCovering } from "../../machines/detection/leaseArithmetic.ts";
import { createPaxosConfig } from "../../machines/paxos/config.ts";
import { startNatsServer, type NatsServer } from "../../runtime/natsServer.ts";
import { connectRuntimeNode, type RuntimeNode } from "../../runtime/runtimeNodePorts.ts";

/**
 * Host agents, monitors and Paxos controllers over a real nats-server with
 * default timings. The three monitors and one host run as separate OS
 * processes (so they can be killed with SIGKILL); ten more hosts and three
 * controllers (Paxos with file storage, each with the failure detector
 * following its lease) run in this process over their own NATS connections.
 * A failure counts when the view has committed it.
 */
const nodeScript = fileURLToPath(new URL("./detectionNodeProcess.ts", import.meta.url));
const monitorIds = ["m1", "m2", "m3"];
const controllerIds = ["c1", "c2", "c3"];
const inProcessHosts = Array.from({ length: 10 }, (_, index) => `h${index + 1}`);
const processStartTimeoutMs = 20_000;

let server: NatsServer;
const dataDirectory = mkdtempSync(join(tmpdir(), "haring-detect-"));
const children: ChildProcess[] = [];
const nodes: RuntimeNode[] = [];

test.before(async () => {
  server = await startNatsServer();
});

test.after.always(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  await Promise.all(nodes.map((node) => node.close()));
  await server?.stop();
  rmSync(dataDirectory, { recursive: true, force: true });
});

interface NodeProcess {
  readonly child: ChildProcess;
  readonly events: Array<Record<string, unknown>>;
  readonly ready: Promise<void>;
}

function startProcess(role: "monitor" | "host", id: string): NodeProcess {
  const child = spawn(process.execPath, ["--import", "tsx", nodeScript, "--role", role, "--id", id, "--nats", server.url, "--cluster", "test", "--data-dir", dataDirectory, "--monitors", monitorIds.join(",")], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  const events: Array<Record<string, unknown>> = [];
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => {
    if (stderr.length < 4_096) stderr += chunk.toString();
  });
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${id} not ready within ${processStartTimeoutMs} ms: ${stderr}`)), processStartTimeoutMs);
    createInterface({ input: child.stdout! }).on("line", (line) => {
      const event = JSON.parse(line) as Record<string, unknown>;
      events.push(event);
      if (event.event === "ready") {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on("exit", (code) => reject(new Error(`${id} exited with ${code}: ${stderr}`)));
  });
  return { child, events, ready };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (condition()) return true;
    await sleep(20);
  }
  return condition();
}

async function connect(nodeId: string): Promise<RuntimeNode> {
  const node = await connectRuntimeNode({ nodeId, clusterId: "test", natsServers: server.url, dataDirectory: join(dataDirectory, nodeId), logLine: () => {} });
  nodes.push(node);
  return node;
}

test("kill -9 of a monitor process raises no false alarm; kill -9 of a host process is committed failed within the lease bound", async (t) => {
  const proposals: Array<{ atMs: number; proposal: HostProposal }> = [];
  const controllers: ControllerActor[] = [];
  const detectors: DetectorOnController[] = [];
  let firstLeaseAt: number | undefined;
  for (const controllerId of controllerIds) {
    const node = await connect(controllerId);
    const controller = startControllerActor(node.ports, {
      config: createPaxosConfig(controllerIds),
      bootstrap: true,
      rejections: createRejectionCounter(node.ports),
      kvMirror: false,
    });
    controllers.push(controller);
    detectors.push(
      startDetectorOnController(node.ports, {
        controller,
        config: defaultFailureDetectorConfig,
        tickIntervalMs: defaultDetectorTickMs,
        rejections: createRejectionCounter(node.ports),
        onProposal: (proposal) => proposals.push({ atMs: Date.now(), proposal }),
      }),
    );
    await node.network.connection.flush();
  }
  const leaderWatch = setInterval(() => {
    if (firstLeaseAt === undefined && controllers.some((controller) => controller.holdsLease())) firstLeaseAt = Date.now();
  }, 5);
  const hostIds = [...inProcessHosts, "hx"];
  for (const hostId of hostIds) controllers[0]!.propose({ id: `register-${hostId}`, type: "host.register", hostId, capacity: { cpu: 64, memoryMiB: 262_144 } });

  const monitors = new Map(monitorIds.map((monitorId) => [monitorId, startProcess("monitor", monitorId)]));
  const killedHost = startProcess("host", "hx");
  await Promise.all([...monitors.values()].map((monitor) => monitor.ready));

  const isolations: IsolationRequest[] = [];
  const senders: HeartbeatSenderHost[] = [];
  for (const hostId of inProcessHosts) {
    const node = await connect(hostId);
    senders.push(
      startHeartbeatSender(node.ports, {
        monitorIds,
        config: defaultHostAgentConfig,
        ackTimeoutMs: defaultHostAgentConfig.ackTimeoutMs,
        rejections: createRejectionCounter(node.ports),
        lease: {
          maxAcceptedLeaseMs: defaultHostAgentConfig.maxAcceptedLeaseMs,
          isolationResponse: "power-off",
          isolation: { isolate: (request, done) => (isolations.push(request), setTimeout(done, 0)) },
        },
      }),
    );
  }
  await killedHost.ready;
  const viewState = (hostId: string) => controllers.find((controller) => controller.status === "running")?.view().hosts.get(hostId)?.state;
  t.true(await waitFor(() => senders.every((sender) => sender.getSnapshot()?.context.phase === "leased"), 5_000), "every host holds a lease");
  t.true(await waitFor(() => hostIds.every((hostId) => viewState(hostId) === "up"), 10_000), "the view has every host up");

  // A new leader declares nothing before grants of an earlier one could have run out: kill only after that.
  const termStartWaitMs = leaderMsCovering(
    defaultFailureDetectorConfig.authorityValidForMs + defaultFailureDetectorConfig.hostLeaseMs + defaultFailureDetectorConfig.maxIsolationDelayMs,
    defaultFailureDetectorConfig.maxClockRateErrorPpm,
  );
  await sleep(Math.max(0, (firstLeaseAt ?? Date.now()) + termStartWaitMs + 200 - Date.now()));

  monitors.get("m1")!.child.kill("SIGKILL");
  await sleep(3_000);
  t.deepEqual(proposals.filter((recorded) => recorded.proposal.type === "host-failed"), [], "no host declared failed after a monitor died");
  t.deepEqual(isolations.filter((isolation) => isolation.reason !== "boot"), [], "no host lost its lease");
  t.deepEqual(killedHost.events.filter((event) => event.event === "isolated" && event.reason !== "boot"), []);
  t.true(senders.every((sender) => sender.getSnapshot()?.context.phase === "leased"));

  killedHost.child.kill("SIGKILL");
  const killedAt = Date.now();
  const bound = leaderMsCovering(defaultFailureDetectorConfig.hostLeaseMs + defaultFailureDetectorConfig.maxIsolationDelayMs, defaultFailureDetectorConfig.maxClockRateErrorPpm);
  // Real timers and a loaded machine: allow scheduling slack on top of the configured bound.
  const slackMs = 1_000;
  t.true(await waitFor(() => viewState("hx") === "failed", bound + slackMs), "the killed host is committed failed");
  const committedAt = Date.now();
  const proposed = proposals.find((recorded) => recorded.proposal.hostId === "hx" && recorded.proposal.type === "host-failed")!;
  t.log(`kill -9 host → proposed failed in ${proposed.atMs - killedAt} ms, committed within ${committedAt - killedAt} ms (bound ${bound} + slack ${slackMs})`);
  t.true(proposed.atMs - killedAt >= defaultFailureDetectorConfig.hostLeaseMs, "not before its lease could have run out");
  t.deepEqual(
    proposals.filter((recorded) => recorded.proposal.type === "host-failed").map((recorded) => recorded.proposal.hostId),
    ["hx"],
    "no other host",
  );
  t.true(inProcessHosts.every((hostId) => viewState(hostId) === "up"));

  clearInterval(leaderWatch);
  for (const detector of detectors) detector.stop();
  for (const controller of controllers) controller.stop();
  for (const sender of senders) sender.dispose();
});

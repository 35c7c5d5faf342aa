/**
 * Host failure detection, haring versus serf (SWIM + Lifeguard), side by side
 * in one run on loopback:
 * - haring: a real nats-server and the production entry for every role —
 *   3 controllers (Paxos on file storage, each running the failure detector),
 *   3 monitors and 5 host agents as `haring node --config` processes (so they
 *   can be killed), plus 15 more host agents run in this process by the same
 *   code (runtime/node/hostNode.ts); the hosts register themselves, and a
 *   failure counts when the view has committed it (a view learner in this
 *   process);
 * - serf: 20 `serf agent` processes (Debian's serf, default `lan` profile);
 *   s1 runs a member-failed event handler that stamps the time.
 * Each round kills (SIGKILL) one haring host process and one serf agent at the
 * same moment and times crash → failure declared for each.
 *
 *   apt-get install -y serf nats-server
 *   npx tsx bench/detectionSerf.ts [--rounds 5]
 */
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defaultFailureDetectorConfig } from "../machines/detection/detectionConfig.ts";
import { leaderMsCovering } from "../machines/detection/leaseArithmetic.ts";
import { createPaxosConfig } from "../machines/paxos/config.ts";
import { connectViewClient } from "../runtime/controller/viewClient.ts";
import type { ControllerStatusFile } from "../runtime/controller/main.ts";
import { findFreePorts, startNatsServer } from "../runtime/natsServer.ts";
import { runHostNode, type RunningHost } from "../runtime/node/hostNode.ts";
import { parseNodeConfig } from "../runtime/node/nodeConfig.ts";
import { startNodeProcess, writeNodeConfig, type NodeProcess } from "../runtime/node/nodeProcess.ts";

const agentCount = 20;
const monitorIds = ["m1", "m2", "m3"];
const controllerIds = ["c1", "c2", "c3"];
const clusterId = "bench";
const detectionTimeoutMs = 60_000;
const serfBinary = "/usr/bin/serf";

function argument(name: string, fallback: number): number {
  const index = process.argv.indexOf(name);
  if (index < 0) return fallback;
  const value = Number(process.argv[index + 1]);
  if (!Number.isSafeInteger(value) || value < 1 || value > 15) throw new RangeError(`${name} takes a whole number in [1, 15]`);
  return value;
}

const rounds = argument("--rounds", 5);
const children: ChildProcess[] = [];
const nodeProcesses: NodeProcess[] = [];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor<T>(probe: () => T | undefined, timeoutMs: number): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = probe();
    if (value !== undefined) return value;
    await sleep(10);
  }
  return probe();
}

async function main(): Promise<void> {
  if (!existsSync(serfBinary)) throw new Error("serf not found: apt-get install -y serf");
  const directory = mkdtempSync(join(tmpdir(), "haring-bench-serf-"));
  const server = await startNatsServer();
  try {
    // haring
    const common = { clusterId, natsUrls: [server.url], statusIntervalMs: 100 };
    const startNode = (config: Record<string, unknown> & { nodeId: string }): NodeProcess => {
      const { configPath, dataDir } = writeNodeConfig(directory, { ...common, ...config });
      const node = startNodeProcess(config.nodeId, configPath, dataDir);
      nodeProcesses.push(node);
      return node;
    };
    const hostConfig = (nodeId: string) => ({ ...common, role: "host", nodeId, controllerIds, monitorIds, capacity: { cpu: 64, memoryMiB: 262_144 }, statusIntervalMs: 0 });
    const controllers = controllerIds.map((nodeId) => startNode({ role: "controller", nodeId, controllerIds, bootstrap: true, kvMirror: false }));
    for (const nodeId of monitorIds) startNode({ role: "monitor", nodeId });
    const victims = Array.from({ length: rounds }, (_, index) => `hv${index + 1}`);
    const victimProcesses = new Map(victims.map((hostId) => [hostId, startNode(hostConfig(hostId))]));
    await Promise.all(nodeProcesses.map((node) => node.ready));
    const inProcessHosts: RunningHost[] = [];
    const hostIds = [...victims];
    for (let index = 1; index <= agentCount - rounds; index++) {
      const nodeId = `h${index}`;
      const parsed = parseNodeConfig({ ...hostConfig(nodeId), dataDir: join(directory, nodeId) });
      if (!parsed.ok || parsed.node.role !== "host") throw new Error(`host config: ${parsed.ok ? parsed.node.role : parsed.problems.join("; ")}`);
      inProcessHosts.push(await runHostNode(parsed.node.config, { logLine: () => {} }));
      hostIds.push(nodeId);
    }
    const viewClient = await connectViewClient({ clusterId, nodeId: "bench-view", natsUrls: [server.url], paxos: createPaxosConfig(controllerIds) });
    let leaderSince: number | undefined;
    const committedFailures = new Map<string, number>();
    const watch = setInterval(() => {
      if (leaderSince === undefined && controllers.some((controller) => controller.status<ControllerStatusFile>()?.holdsLease === true)) leaderSince = Date.now();
      for (const host of viewClient.view().hosts.values()) if (host.state === "failed" && !committedFailures.has(host.hostId)) committedFailures.set(host.hostId, Date.now());
    }, 5);

    // serf
    const failedLog = join(directory, "serf-failed.log");
    const handler = join(directory, "serf-failed.sh");
    writeFileSync(handler, `#!/bin/sh\nwhile read name rest; do echo "$(date +%s%3N) $name" >> ${failedLog}; done\n`);
    chmodSync(handler, 0o755);
    const ports = await findFreePorts(agentCount * 2);
    const serfAgents = new Map<string, ChildProcess>();
    for (let index = 0; index < agentCount; index++) {
      const name = `s${index + 1}`;
      const args = ["agent", `-node=${name}`, `-bind=127.0.0.1:${ports[index]}`, `-rpc-addr=127.0.0.1:${ports[agentCount + index]}`, "-log-level=err"];
      if (index > 0) args.push(`-join=127.0.0.1:${ports[0]}`);
      else args.push(`-event-handler=member-failed=${handler}`);
      const child = spawn(serfBinary, args, { stdio: "ignore" });
      children.push(child);
      serfAgents.set(name, child);
      if (index === 0) await sleep(300);
    }

    if ((await waitFor(() => (hostIds.every((hostId) => viewClient.view().hosts.get(hostId)?.state === "up") ? true : undefined), 30_000)) === undefined) {
      throw new Error("not every haring host came up in the view");
    }
    const termStartWaitMs = leaderMsCovering(
      defaultFailureDetectorConfig.authorityValidForMs + defaultFailureDetectorConfig.hostLeaseMs + defaultFailureDetectorConfig.maxIsolationDelayMs,
      defaultFailureDetectorConfig.maxClockRateErrorPpm,
    );
    // Both systems settle: haring past its term-start wait, serf's gossip converged.
    await sleep(Math.max(5_000, (leaderSince ?? Date.now()) + termStartWaitMs + 1_000 - Date.now()));
    const viewHosts = viewClient.view().hosts;
    if (!hostIds.every((hostId) => viewHosts.get(hostId)?.state === "up")) throw new Error("not every haring host is up in the view");

    const rows: Array<{ round: number; haringMs: number | undefined; serfMs: number | undefined }> = [];
    for (let round = 1; round <= rounds; round++) {
      const hostId = `hv${round}`;
      const serfName = `s${agentCount - round + 1}`;
      const killedAt = Date.now();
      void victimProcesses.get(hostId)!.kill("SIGKILL");
      serfAgents.get(serfName)!.kill("SIGKILL");
      const haringAt = await waitFor(() => committedFailures.get(hostId), detectionTimeoutMs);
      const serfAt = await waitFor(() => {
        if (!existsSync(failedLog)) return undefined;
        const line = readFileSync(failedLog, "utf8").split("\n").find((entry) => entry.endsWith(` ${serfName}`));
        return line === undefined ? undefined : Number(line.split(" ")[0]);
      }, detectionTimeoutMs);
      rows.push({ round, haringMs: haringAt === undefined ? undefined : haringAt - killedAt, serfMs: serfAt === undefined ? undefined : serfAt - killedAt });
      process.stderr.write(`round ${round}: haring ${rows.at(-1)!.haringMs} ms, serf ${rows.at(-1)!.serfMs} ms\n`);
      await sleep(2_000);
    }
    clearInterval(watch);
    await Promise.all(inProcessHosts.map((host) => host.stop()));
    await viewClient.close();
    await Promise.all(nodeProcesses.map((node) => node.kill("SIGTERM")));

    const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
    const haring = rows.map((row) => row.haringMs ?? Number.NaN);
    const serf = rows.map((row) => row.serfMs ?? Number.NaN);
    console.log(`| round | haring kill -9 → failure committed (ms) | serf kill -9 → member-failed (ms) |`);
    console.log(`|---:|---:|---:|`);
    for (const row of rows) console.log(`| ${row.round} | ${row.haringMs ?? "not detected"} | ${row.serfMs ?? "not detected"} |`);
    console.log(`| median | ${median(haring)} | ${median(serf)} |`);
    console.log(`\n${agentCount} agents each on loopback, node ${process.version}; haring ÷ serf (medians) = ${(median(haring) / median(serf)).toFixed(2)} (goal ≤ 0.3)`);
  } finally {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await Promise.all(nodeProcesses.map((node) => node.kill("SIGKILL", 5_000)));
    await server.stop();
    rmSync(directory, { recursive: true, force: true });
  }
}

await main();

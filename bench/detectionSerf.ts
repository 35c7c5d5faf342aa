/**
 * Host failure detection, haring versus serf (SWIM + Lifeguard), side by side
 * in one run on loopback:
 * - haring: a real nats-server, 3 monitor processes, 20 host agents (15 in one
 *   process, 5 in their own processes so they can be killed) and 3 Paxos
 *   controllers with the failure detector in this process; a failure counts
 *   when the view has committed it;
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
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { createRejectionCounter } from "../actors/codec/rejectionCounter.ts";
import { startDetectorOnController, type DetectorOnController } from "../actors/detection/detectorOnController.ts";
import { startControllerActor, type ControllerActor } from "../actors/paxos/controllerActor.ts";
import { defaultDetectorTickMs, defaultFailureDetectorConfig } from "../machines/detection/detectionConfig.ts";
import { leaderMsCovering } from "../machines/detection/leaseArithmetic.ts";
import { createPaxosConfig } from "../machines/paxos/config.ts";
import { findFreePorts, startNatsServer } from "../runtime/natsServer.ts";
import { connectRuntimeNode } from "../runtime/runtimeNodePorts.ts";

const nodeScript = fileURLToPath(new URL("../test/detection/detectionNodeProcess.ts", import.meta.url));
const agentCount = 20;
const monitorIds = ["m1", "m2", "m3"];
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

function startNodeProcess(args: readonly string[]): { child: ChildProcess; ready: Promise<void> } {
  const child = spawn(process.execPath, ["--import", "tsx", nodeScript, ...args], { stdio: ["ignore", "pipe", "inherit"] });
  children.push(child);
  const ready = new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on("line", (line) => {
      if (line.includes('"ready"')) resolve();
    });
    child.on("exit", (code) => reject(new Error(`node process ${args.join(" ")} exited with ${code}`)));
  });
  return { child, ready };
}

async function main(): Promise<void> {
  if (!existsSync(serfBinary)) throw new Error("serf not found: apt-get install -y serf");
  const directory = mkdtempSync(join(tmpdir(), "haring-bench-serf-"));
  const server = await startNatsServer();
  try {
    // haring
    const controllerIds = ["c1", "c2", "c3"];
    const controllers: ControllerActor[] = [];
    const detectors: DetectorOnController[] = [];
    const closers: Array<() => Promise<void>> = [];
    let leaderSince: number | undefined;
    for (const controllerId of controllerIds) {
      const node = await connectRuntimeNode({ nodeId: controllerId, clusterId: "bench", natsServers: server.url, dataDirectory: join(directory, controllerId), logLine: () => {} });
      closers.push(() => node.close());
      const controller = startControllerActor(node.ports, { config: createPaxosConfig(controllerIds), bootstrap: true, rejections: createRejectionCounter(node.ports), kvMirror: false });
      controllers.push(controller);
      detectors.push(
        startDetectorOnController(node.ports, {
          controller,
          config: defaultFailureDetectorConfig,
          tickIntervalMs: defaultDetectorTickMs,
          rejections: createRejectionCounter(node.ports),
        }),
      );
    }
    const committedFailures = new Map<string, number>();
    const watch = setInterval(() => {
      if (leaderSince === undefined && controllers.some((controller) => controller.holdsLease())) leaderSince = Date.now();
      const view = controllers.find((controller) => controller.status === "running")?.view();
      for (const host of view?.hosts.values() ?? []) if (host.state === "failed" && !committedFailures.has(host.hostId)) committedFailures.set(host.hostId, Date.now());
    }, 5);
    const common = ["--nats", server.url, "--cluster", "bench", "--data-dir", directory, "--monitors", monitorIds.join(",")];
    const started = monitorIds.map((monitorId) => startNodeProcess(["--role", "monitor", "--id", monitorId, ...common]));
    const victims = Array.from({ length: rounds }, (_, index) => `hv${index + 1}`);
    const hostIds = [...victims, ...Array.from({ length: agentCount - rounds }, (_, index) => `h${index + 1}`)];
    for (const hostId of hostIds) controllers[0]!.propose({ id: `register-${hostId}`, type: "host.register", hostId, capacity: { cpu: 64, memoryMiB: 262_144 } });
    const victimProcesses = new Map(victims.map((hostId) => [hostId, startNodeProcess(["--role", "host", "--id", hostId, ...common])]));
    started.push(startNodeProcess(["--role", "hosts", "--id", "h", "--count", String(agentCount - rounds), ...common]), ...victimProcesses.values());

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

    await Promise.all(started.map((process) => process.ready));
    const termStartWaitMs = leaderMsCovering(
      defaultFailureDetectorConfig.authorityValidForMs + defaultFailureDetectorConfig.hostLeaseMs + defaultFailureDetectorConfig.maxIsolationDelayMs,
      defaultFailureDetectorConfig.maxClockRateErrorPpm,
    );
    // Both systems settle: haring past its term-start wait, serf's gossip converged.
    await sleep(Math.max(5_000, (leaderSince ?? Date.now()) + termStartWaitMs + 1_000 - Date.now()));
    const viewHosts = controllers[0]!.view().hosts;
    if (!hostIds.every((hostId) => viewHosts.get(hostId)?.state === "up")) throw new Error("not every haring host is up in the view");

    const rows: Array<{ round: number; haringMs: number | undefined; serfMs: number | undefined }> = [];
    for (let round = 1; round <= rounds; round++) {
      const hostId = `hv${round}`;
      const serfName = `s${agentCount - round + 1}`;
      const killedAt = Date.now();
      victimProcesses.get(hostId)!.child.kill("SIGKILL");
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
    for (const detector of detectors) detector.stop();
    for (const controller of controllers) controller.stop();
    await Promise.all(closers.map((close) => close()));

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
    await server.stop();
    rmSync(directory, { recursive: true, force: true });
  }
}

await main();

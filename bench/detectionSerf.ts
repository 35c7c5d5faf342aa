/**
 * Host failure detection, haring versus serf (SWIM + Lifeguard), side by side
 * in one run on loopback:
 * - haring: a real nats-server, 3 monitor processes, 20 host agents (15 in one
 *   process, 5 in their own processes so they can be killed) and the leader's
 *   detector in this process (a leader stand-in: it records the proposal; the
 *   Paxos commit is not wired yet, see docs/failure-detection.md);
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
import { startFailureDetector } from "../actors/detection/failureDetectorActor.ts";
import { defaultDetectorTickMs, defaultFailureDetectorConfig } from "../machines/detection/detectionConfig.ts";
import { leaderMsCovering } from "../machines/detection/leaseArithmetic.ts";
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
    const proposals = new Map<string, number>();
    const leader = await connectRuntimeNode({ nodeId: "c1", clusterId: "bench", natsServers: server.url, dataDirectory: join(directory, "c1"), logLine: () => {} });
    const detector = startFailureDetector(leader.ports, {
      config: defaultFailureDetectorConfig,
      tickIntervalMs: defaultDetectorTickMs,
      rejections: createRejectionCounter(leader.ports),
      onProposal: (proposal) => {
        if (proposal.type === "host-failed" && !proposals.has(proposal.hostId)) proposals.set(proposal.hostId, Date.now());
      },
    });
    detector.setLeadership(true, Number.MAX_SAFE_INTEGER);
    const leaderSince = Date.now();
    const common = ["--nats", server.url, "--cluster", "bench", "--data-dir", directory, "--monitors", monitorIds.join(",")];
    const started = monitorIds.map((monitorId) => startNodeProcess(["--role", "monitor", "--id", monitorId, ...common]));
    const victims = Array.from({ length: rounds }, (_, index) => `hv${index + 1}`);
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
    await sleep(Math.max(5_000, leaderSince + termStartWaitMs + 1_000 - Date.now()));

    const rows: Array<{ round: number; haringMs: number | undefined; serfMs: number | undefined }> = [];
    for (let round = 1; round <= rounds; round++) {
      const hostId = `hv${round}`;
      const serfName = `s${agentCount - round + 1}`;
      const killedAt = Date.now();
      victimProcesses.get(hostId)!.child.kill("SIGKILL");
      serfAgents.get(serfName)!.kill("SIGKILL");
      const haringAt = await waitFor(() => proposals.get(hostId), detectionTimeoutMs);
      const serfAt = await waitFor(() => {
        if (!existsSync(failedLog)) return undefined;
        const line = readFileSync(failedLog, "utf8").split("\n").find((entry) => entry.endsWith(` ${serfName}`));
        return line === undefined ? undefined : Number(line.split(" ")[0]);
      }, detectionTimeoutMs);
      rows.push({ round, haringMs: haringAt === undefined ? undefined : haringAt - killedAt, serfMs: serfAt === undefined ? undefined : serfAt - killedAt });
      process.stderr.write(`round ${round}: haring ${rows.at(-1)!.haringMs} ms, serf ${rows.at(-1)!.serfMs} ms\n`);
      await sleep(2_000);
    }
    detector.stop();
    await leader.close();

    const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
    const haring = rows.map((row) => row.haringMs ?? Number.NaN);
    const serf = rows.map((row) => row.serfMs ?? Number.NaN);
    console.log(`| round | haring kill -9 → failure proposed (ms) | serf kill -9 → member-failed (ms) |`);
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

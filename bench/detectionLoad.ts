/**
 * Heartbeat cost over a real nats-server: how many hosts one monitor process
 * serves within half a core, and how many messages a host costs.
 *
 * One monitor process (`haring node --config` with `"role": "monitor"`: the
 * real monitor actor, reporting digests and granting leases; its CPU time and
 * mailbox drops read from its status.json), the leader's detector in this
 * process, and load-generator
 * processes standing in for hosts (bench/detectionLoadGenerator.ts: the same
 * pings, every 100 ms, without the host agent's machine). The host count is
 * raised step by step; each step reports the monitor's CPU share (its own
 * process CPU time over wall time, median of the measured seconds), the share
 * of pings answered with a lease, and the NATS messages per host per second
 * (from the server's /varz counters).
 *
 *   npx tsx bench/detectionLoad.ts                          # 250 … 4,000 hosts
 *   npx tsx bench/detectionLoad.ts --steps 500,1000,2000 --seconds 8
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { createRejectionCounter } from "../actors/codec/rejectionCounter.ts";
import { startFailureDetector } from "../actors/detection/failureDetectorActor.ts";
import { defaultDetectorTickMs, defaultFailureDetectorConfig } from "../machines/detection/detectionConfig.ts";
import { startNatsServer } from "../runtime/natsServer.ts";
import { connectRuntimeNode } from "../runtime/runtimeNodePorts.ts";
import type { MonitorStatus } from "../runtime/node/monitorNode.ts";
import { startNodeProcess, writeNodeConfig } from "../runtime/node/nodeProcess.ts";

const generatorScript = fileURLToPath(new URL("./detectionLoadGenerator.ts", import.meta.url));
const hostsPerGenerator = 1_500;
const warmUpSeconds = 2;
const maxStepHosts = 20_000;

function listArgument(name: string, fallback: number[]): number[] {
  const index = process.argv.indexOf(name);
  if (index < 0) return fallback;
  const values = (process.argv[index + 1] ?? "").split(",").map(Number);
  if (values.length === 0 || values.some((value) => !Number.isSafeInteger(value) || value < 1 || value > maxStepHosts)) {
    throw new RangeError(`${name} takes comma-separated whole numbers in [1, ${maxStepHosts}]`);
  }
  return values;
}

const steps = listArgument("--steps", [250, 500, 1_000, 2_000, 3_000, 4_000]);
const seconds = listArgument("--seconds", [6])[0]!;
const children: ChildProcess[] = [];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function startJsonProcess(script: string, args: readonly string[], onLine: (event: Record<string, unknown>) => void): { child: ChildProcess; ready: Promise<void> } {
  const child = spawn(process.execPath, ["--import", "tsx", script, ...args], { stdio: ["ignore", "pipe", "inherit"] });
  children.push(child);
  const ready = new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on("line", (line) => {
      const event = JSON.parse(line) as Record<string, unknown>;
      if (event.event === "ready") resolve();
      onLine(event);
    });
    child.on("exit", (code, signal) => signal === null && reject(new Error(`${script} exited with ${code}`)));
  });
  return { child, ready };
}

async function varz(monitorUrl: string): Promise<{ inMsgs: number; outMsgs: number }> {
  const response = await fetch(`${monitorUrl}/varz`);
  const body = (await response.json()) as { in_msgs: number; out_msgs: number };
  return { inMsgs: body.in_msgs, outMsgs: body.out_msgs };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? Number.NaN;

async function main(): Promise<void> {
  const directory = mkdtempSync(join(tmpdir(), "haring-bench-load-"));
  const server = await startNatsServer();
  try {
    const leader = await connectRuntimeNode({ nodeId: "c1", clusterId: "bench", natsServers: server.url, dataDirectory: join(directory, "c1"), logLine: () => {} });
    const detector = startFailureDetector(leader.ports, {
      config: defaultFailureDetectorConfig,
      tickIntervalMs: defaultDetectorTickMs,
      rejections: createRejectionCounter(leader.ports),
      onProposal: () => {},
    });
    detector.setLeadership(true, Number.MAX_SAFE_INTEGER);
    let monitorCpu: number[] = [];
    let monitorDropped = 0;
    const { configPath, dataDir } = writeNodeConfig(directory, { role: "monitor", clusterId: "bench", nodeId: "m1", natsUrls: [server.url], statusIntervalMs: 250 });
    const monitor = startNodeProcess("m1", configPath, dataDir);
    children.push(monitor.child);
    await monitor.ready;
    // The monitor's CPU share each second, from the CPU time in its status file.
    let lastSample: MonitorStatus | undefined;
    const sampler = setInterval(() => {
      const status = monitor.status<MonitorStatus>();
      if (status === undefined) return;
      if (process.env.HARING_BENCH_DEBUG) process.stderr.write(`monitor ${JSON.stringify(status)}\n`);
      if (lastSample !== undefined && status.atMs > lastSample.atMs) monitorCpu.push((status.cpuMs - lastSample.cpuMs) / (status.atMs - lastSample.atMs));
      monitorDropped = status.mailboxDropped;
      lastSample = status;
    }, 1_000);

    const rows: string[] = [];
    for (const hosts of steps) {
      const generators: ChildProcess[] = [];
      const load = { sent: 0, leased: 0, generatorCpu: [] as number[] };
      let measuring = false;
      const generatorCount = Math.ceil(hosts / hostsPerGenerator);
      const ready: Promise<void>[] = [];
      for (let index = 0; index < generatorCount; index++) {
        const share = Math.floor(hosts / generatorCount) + (index < hosts % generatorCount ? 1 : 0);
        const started = startJsonProcess(
          generatorScript,
          ["--nats", server.url, "--cluster", "bench", "--monitor", "m1", "--hosts", String(share), "--prefix", `s${hosts}g${index}-`],
          (event) => {
            if (event.event !== "load" || !measuring) return;
            load.sent += Number(event.sent);
            load.leased += Number(event.leased);
            load.generatorCpu.push(Number(event.cpuShare));
          },
        );
        generators.push(started.child);
        ready.push(started.ready);
      }
      await Promise.all(ready);
      await sleep(warmUpSeconds * 1_000);
      monitorCpu = [];
      const droppedBefore = monitorDropped;
      measuring = true;
      const before = await varz(server.monitorUrl);
      const startedAt = performance.now();
      await sleep(seconds * 1_000);
      const after = await varz(server.monitorUrl);
      const elapsedS = (performance.now() - startedAt) / 1_000;
      measuring = false;
      for (const generator of generators) generator.kill("SIGTERM");
      const row = {
        hosts,
        monitorCpu: median(monitorCpu),
        leasedShare: load.sent === 0 ? 0 : Math.min(1, load.leased / load.sent),
        generatorCpu: load.generatorCpu.length === 0 ? 0 : load.generatorCpu.reduce((sum, value) => sum + value, 0) / (load.generatorCpu.length / generatorCount),
        monitorMailboxDropped: monitorDropped - droppedBefore,
        natsInPerHost: (after.inMsgs - before.inMsgs) / elapsedS / hosts,
        natsOutPerHost: (after.outMsgs - before.outMsgs) / elapsedS / hosts,
      };
      process.stderr.write(`${JSON.stringify(row)}\n`);
      rows.push(
        `| ${hosts} | ${(row.monitorCpu * 100).toFixed(0)}% | ${(row.leasedShare * 100).toFixed(1)}% | ${row.monitorMailboxDropped} | ${(row.generatorCpu * 100).toFixed(0)}% | ${row.natsInPerHost.toFixed(1)} | ${row.natsOutPerHost.toFixed(1)} |`,
      );
      await sleep(1_500);
    }
    clearInterval(sampler);
    await monitor.kill("SIGTERM");
    detector.stop();
    await leader.close();
    console.log(`| hosts on one monitor | monitor CPU (share of one core) | pings answered with a lease in time | monitor mailbox drops | load generators' CPU (cores) | NATS msgs in per host per s | NATS msgs out per host per s |`);
    console.log(`|---:|---:|---:|---:|---:|---:|---:|`);
    for (const row of rows) console.log(row);
    console.log(`\n${seconds} s per step after ${warmUpSeconds} s warm-up; heartbeat every 100 ms; node ${process.version}, nats-server 2.9, ${(await import("node:os")).cpus().length} cores shared with the load generators and the server`);
  } finally {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await server.stop();
    rmSync(directory, { recursive: true, force: true });
  }
}

await main();

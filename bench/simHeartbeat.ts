/**
 * Simulator speed: N heartbeat actors (hosts) at 200 ms against 10 monitors,
 * 60 s of virtual time, 5% loss, one monitor crashed for the middle third.
 * Prints simulated-to-wall ratio and peak memory per size, next to a floor:
 * the same sender machine on the same virtual clock with no network, codec or
 * actor host (what xstate alone costs), measured in the same run.
 *
 *   npx tsx bench/simHeartbeat.ts                 # 1,000 and 10,000 hosts
 *   npx tsx bench/simHeartbeat.ts --hosts 2000 --duration-s 30
 *
 * Each case runs in its own process so peak RSS belongs to that case alone.
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { createActor } from "xstate";
import { defaultHeartbeatSenderConfig, heartbeatSenderMachine } from "../machines/heartbeat/heartbeatSender.ts";
import { runHeartbeatCluster } from "../sim/runs/heartbeatCluster.ts";
import { VirtualClock } from "../sim/virtualClock.ts";

const benchTimeoutMs = 30 * 60_000;

interface CaseResult {
  readonly name: string;
  readonly hosts: number;
  readonly virtualS: number;
  readonly wallS: number;
  /** CPU seconds of the whole process (GC threads too): a steadier figure than wall time on a shared machine. */
  readonly cpuS: number;
  readonly heartbeats: number;
  readonly peakRssMiB: number;
}

function argument(name: string, fallback: number): number {
  const index = process.argv.indexOf(name);
  if (index < 0) return fallback;
  const value = Number(process.argv[index + 1]);
  if (!Number.isSafeInteger(value) || value <= 0) throw new RangeError(`${name} takes a positive whole number`);
  return value;
}

function cpuSecondsSince(start: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1e6;
}

function peakRssMiB(): number {
  return process.resourceUsage().maxRSS / 1024;
}

function runFullCase(hosts: number, durationMs: number): CaseResult {
  const startedAt = performance.now();
  const cpuAtStart = process.cpuUsage();
  const result = runHeartbeatCluster({ seed: 1, hosts, monitors: 10, durationMs, transcriptLevel: "warn" });
  const wallS = (performance.now() - startedAt) / 1_000;
  if (!result.ok) throw new Error(`simulation broke an invariant: ${result.failures.join("; ")}`);
  return { name: "haring sim (network, codec, actor host)", hosts, virtualS: durationMs / 1_000, wallS, cpuS: cpuSecondsSince(cpuAtStart), heartbeats: result.summary.heartbeatsSent, peakRssMiB: peakRssMiB() };
}

function runFloorCase(hosts: number, durationMs: number): CaseResult {
  const clock = new VirtualClock();
  const xstateClock = { setTimeout: (callback: () => void, delayMs: number) => clock.schedule(delayMs, callback), clearTimeout: (handle: unknown) => clock.cancel(handle) };
  const actors: Array<ReturnType<typeof createActor<typeof heartbeatSenderMachine>>> = [];
  let heartbeats = 0;
  const machine = heartbeatSenderMachine.provide({
    actions: {
      sendHeartbeat: ({ self }, { sequence, monitorId }) => {
        heartbeats++;
        clock.schedule(0.5, () => self.send({ type: "heartbeat.acked", sequence, monitorId }));
      },
    },
  });
  const startedAt = performance.now();
  const cpuAtStart = process.cpuUsage();
  for (let index = 0; index < hosts; index++) {
    const actor = createActor(machine, { clock: xstateClock, input: { hostId: `h${index}`, monitorIds: ["m1", "m2", "m3"], config: defaultHeartbeatSenderConfig } });
    actors.push(actor);
    actor.start();
  }
  clock.runUntil(durationMs);
  const wallS = (performance.now() - startedAt) / 1_000;
  return { name: "floor: xstate sender alone", hosts, virtualS: durationMs / 1_000, wallS, cpuS: cpuSecondsSince(cpuAtStart), heartbeats, peakRssMiB: peakRssMiB() };
}

if (process.argv.includes("--child")) {
  const hosts = argument("--hosts", 1_000);
  const durationMs = argument("--duration-s", 60) * 1_000;
  const result = process.argv.includes("--floor") ? runFloorCase(hosts, durationMs) : runFullCase(hosts, durationMs);
  process.stdout.write(`${JSON.stringify(result)}\n`);
} else {
  const sizes = process.argv.includes("--hosts") ? [argument("--hosts", 1_000)] : [1_000, 10_000];
  const durationS = argument("--duration-s", 60);
  const script = fileURLToPath(import.meta.url);
  const rows: CaseResult[] = [];
  for (const hosts of sizes) {
    for (const floor of [false, true]) {
      const args = ["--import", "tsx", script, "--child", "--hosts", String(hosts), "--duration-s", String(durationS), ...(floor ? ["--floor"] : [])];
      const child = spawnSync(process.execPath, args, { encoding: "utf8", timeout: benchTimeoutMs, maxBuffer: 1 << 20 });
      if (child.status !== 0) throw new Error(`case hosts=${hosts} floor=${floor} failed: ${child.stderr}`);
      rows.push(JSON.parse(child.stdout.trim().split("\n").at(-1)!) as CaseResult);
      process.stderr.write(".");
    }
  }
  process.stderr.write("\n");
  console.log(`| case | hosts | virtual s | wall s | CPU s | simulated : real | heartbeats/s (wall) | peak RSS MiB |`);
  console.log(`|---|---:|---:|---:|---:|---:|---:|---:|`);
  for (const row of rows) {
    const ratio = row.virtualS / row.wallS;
    console.log(
      `| ${row.name} | ${row.hosts} | ${row.virtualS} | ${row.wallS.toFixed(1)} | ${row.cpuS.toFixed(1)} | ${ratio.toFixed(2)}× | ${Math.round(row.heartbeats / row.wallS)} | ${Math.round(row.peakRssMiB)} |`,
    );
  }
  console.log(`\nnode ${process.version}, ${(await import("node:os")).cpus()[0]?.model ?? "unknown cpu"}; goal: ≥ 10× at 10,000 hosts`);
}

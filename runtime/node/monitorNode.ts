/**
 * A monitor process (`haring node` with `"role": "monitor"`): the heartbeat
 * monitor actor (actors/heartbeat/heartbeatMonitorActor.ts) on the real
 * ports, answering `hb.<nodeId>`, reporting digests to the leader and
 * probing hosts it is asked to. It keeps nothing on disk (a restart is a new
 * boot, which the leader tells apart), but takes its data directory for its
 * lock, status.json and metrics.prom.
 */
import { mailboxDroppedMetric } from "../../actors/actorHost.ts";
import { createRejectionCounter } from "../../actors/codec/rejectionCounter.ts";
import { startHeartbeatMonitor } from "../../actors/heartbeat/heartbeatMonitorActor.ts";
import { promptClock } from "../controller/promptClock.ts";
import { connectLockedNode } from "./dataDirLock.ts";
import type { MonitorNodeConfig } from "./monitorConfig.ts";
import { startNodeStatusFile } from "./nodeStatusFile.ts";
import { nodeExitCodes, nodeLockFileName, type RunNodeOptions, type RunningNode } from "./runningNode.ts";

export interface MonitorStatus {
  readonly role: "monitor";
  readonly nodeId: string;
  readonly pid: number;
  readonly atMs: number;
  readonly status: string;
  readonly hostsHeard: number;
  readonly heartbeatsAcked: number;
  readonly leasesGranted: number;
  readonly grantsRefused: number;
  /** Whether it may grant leases now (the leader's authority has not run out). */
  readonly holdsAuthority: boolean;
  readonly digestsAcknowledged: number;
  readonly digestsFailed: number;
  readonly cpuMs: number;
  /** Events dropped by full actor mailboxes since the start (an overloaded monitor). */
  readonly mailboxDropped: number;
}

export async function runMonitorNode(config: MonitorNodeConfig, options: RunNodeOptions = {}): Promise<RunningNode> {
  const { runtime, releaseLock } = await connectLockedNode(config, { fileName: nodeLockFileName, holderKind: "monitor" }, options.logLine);
  const ports = { ...runtime.ports, clock: promptClock };
  const monitor = startHeartbeatMonitor(ports, { rejections: createRejectionCounter(ports), reporting: config.detection.monitor });
  await runtime.network.connection.flush();

  const statusNow = (): MonitorStatus => {
    const context = monitor.getSnapshot()?.context;
    const cpu = process.cpuUsage();
    return {
      role: "monitor",
      nodeId: config.nodeId,
      pid: process.pid,
      atMs: Math.round(ports.clock.now()),
      status: monitor.status,
      hostsHeard: context?.heard.size ?? 0,
      heartbeatsAcked: context?.heartbeatsAcked ?? 0,
      leasesGranted: context?.leasesGranted ?? 0,
      grantsRefused: context?.grantsRefused ?? 0,
      holdsAuthority: context?.authority != null && context.authority.untilMs > ports.clock.now(),
      digestsAcknowledged: context?.digestsAcknowledged ?? 0,
      digestsFailed: context?.digestsFailed ?? 0,
      cpuMs: Math.round((cpu.user + cpu.system) / 1_000),
      mailboxDropped: runtime.metrics.total(mailboxDroppedMetric),
    };
  };
  const statusFile = startNodeStatusFile(config.dataDir, config.statusIntervalMs, statusNow, runtime.metrics, ports.log);
  ports.log.write("info", "monitor.started", { pid: process.pid, dataDir: config.dataDir });

  let settle: (code: number) => void = () => {};
  const finished = new Promise<number>((resolve) => (settle = resolve));
  let stopping: Promise<number> | undefined;
  const stop = (): Promise<number> =>
    (stopping ??= (async () => {
      await statusFile.stop();
      monitor.dispose();
      statusFile.flush();
      await runtime.close().catch(() => undefined);
      releaseLock();
      ports.log.write("info", "monitor.stopped", { exitCode: nodeExitCodes.ok });
      settle(nodeExitCodes.ok);
      return nodeExitCodes.ok;
    })());
  return { finished, stop };
}

/**
 * `haring guest-agent`: the small process inside a VM that heartbeats over
 * NATS on `haring.<cluster>.guest.<vm>`, with optional application checks.
 * It needs no hypervisor channel, so the same binary serves fully and
 * para-virtualized guests.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startGuestAgent, type GuestAgentHost } from "../../actors/guest/guestAgentActor.ts";
import { isValidId } from "../../actors/subjects.ts";
import { defaultGuestAgentConfig, guestAgentConfigProblem, type GuestAgentConfig } from "../../machines/guest/guestAgent.ts";
import { guestChecksProblem, type GuestCheck } from "../../machines/guest/guestChecks.ts";
import { connectRuntimeNode } from "../runtimeNodePorts.ts";
import { createProcessCheckRunner } from "./checkRunner.ts";

export interface GuestAgentRunOptions {
  /** The VM this agent runs in, as the cluster names it. */
  readonly vmId: string;
  readonly clusterId: string;
  /** NATS server URL(s), e.g. `nats://10.0.0.1:4222`. */
  readonly natsServers: string | readonly string[];
  /** The sender id in messages; defaults to `guest-<vmId>` (or the VM id when that is too long). */
  readonly nodeId?: string;
  readonly heartbeatIntervalMs?: number;
  readonly checkIntervalMs?: number;
  readonly checkTimeoutMs?: number;
  /** See checkSpec.ts for the command-line form. */
  readonly checks?: readonly GuestCheck[];
  /** The agent keeps nothing worth keeping; a temp directory (removed on stop) when absent. */
  readonly dataDirectory?: string;
  /** JSON log lines; stderr when absent. */
  readonly logLine?: (line: string) => void;
  /** Stops the agent when aborted. */
  readonly signal?: AbortSignal;
  /** Stop on SIGINT/SIGTERM (what the CLI wants; not in tests). */
  readonly stopOnProcessSignals?: boolean;
}

export interface GuestAgentRun {
  readonly host: GuestAgentHost;
  readonly nodeId: string;
  /** Stops heartbeating and closes the NATS connection; safe to call twice. */
  stop(): Promise<void>;
  /** Settles once the agent has stopped (by stop(), the abort signal or a process signal). */
  readonly finished: Promise<void>;
}

/** Checks everything before connecting: a bad option is one clear RangeError. */
export function guestAgentConfigFrom(options: GuestAgentRunOptions): GuestAgentConfig {
  const config: GuestAgentConfig = {
    guestHeartbeatIntervalMs: options.heartbeatIntervalMs ?? defaultGuestAgentConfig.guestHeartbeatIntervalMs,
    guestCheckIntervalMs: options.checkIntervalMs ?? defaultGuestAgentConfig.guestCheckIntervalMs,
    guestCheckTimeoutMs: options.checkTimeoutMs ?? defaultGuestAgentConfig.guestCheckTimeoutMs,
  };
  const problem = guestAgentConfigProblem(config) ?? guestChecksProblem(options.checks ?? []);
  if (problem !== undefined) throw new RangeError(problem);
  return config;
}

export async function runGuestAgent(options: GuestAgentRunOptions): Promise<GuestAgentRun> {
  if (!isValidId(options.vmId)) throw new RangeError(`invalid vm id ${JSON.stringify(options.vmId)}: use 1-64 of [A-Za-z0-9_-]`);
  const config = guestAgentConfigFrom(options);
  const nodeId = options.nodeId ?? (isValidId(`guest-${options.vmId}`) ? `guest-${options.vmId}` : options.vmId);
  const ownedDirectory = options.dataDirectory === undefined ? mkdtempSync(join(tmpdir(), "haring-guest-")) : undefined;
  const removeDirectory = () => {
    if (ownedDirectory !== undefined) rmSync(ownedDirectory, { recursive: true, force: true });
  };
  let node;
  try {
    node = await connectRuntimeNode({
      nodeId,
      clusterId: options.clusterId,
      natsServers: options.natsServers,
      dataDirectory: options.dataDirectory ?? ownedDirectory!,
      ...(options.logLine ? { logLine: options.logLine } : {}),
    });
  } catch (error) {
    removeDirectory();
    throw error;
  }
  const runtimeNode = node;
  const host = startGuestAgent(runtimeNode.ports, {
    vmId: options.vmId,
    config,
    checks: options.checks ?? [],
    checkRunner: createProcessCheckRunner(),
  });
  runtimeNode.ports.log.write("info", "guest-agent.started", {
    vm: options.vmId,
    heartbeatIntervalMs: config.guestHeartbeatIntervalMs,
    checks: (options.checks ?? []).map((check) => check.name).join(","),
  });

  let resolveFinished!: () => void;
  const finished = new Promise<void>((resolve) => {
    resolveFinished = resolve;
  });
  let stopping: Promise<void> | undefined;
  const onProcessSignal = () => {
    void stop();
  };
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      options.signal?.removeEventListener("abort", onProcessSignal);
      if (options.stopOnProcessSignals) {
        process.off("SIGINT", onProcessSignal);
        process.off("SIGTERM", onProcessSignal);
      }
      host.dispose();
      runtimeNode.ports.log.write("info", "guest-agent.stopped", { vm: options.vmId });
      try {
        await runtimeNode.close();
      } finally {
        removeDirectory();
        resolveFinished();
      }
    })();
    return stopping;
  };
  if (options.signal?.aborted) await stop();
  else options.signal?.addEventListener("abort", onProcessSignal, { once: true });
  if (options.stopOnProcessSignals) {
    process.once("SIGINT", onProcessSignal);
    process.once("SIGTERM", onProcessSignal);
  }
  return { host, nodeId, stop, finished };
}

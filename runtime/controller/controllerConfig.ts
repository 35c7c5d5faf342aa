/**
 * The controller process's configuration file (JSON), validated field by
 * field: every wrong field gets its own one-line problem, and the process
 * refuses to start (exit 2) while there is any.
 *
 * ```json
 * {
 *   "clusterId": "demo",
 *   "nodeId": "c1",
 *   "controllerIds": ["c1", "c2", "c3"],
 *   "natsUrls": ["nats://127.0.0.1:4222"],
 *   "dataDir": "/var/lib/haring/c1",
 *   "bootstrap": true,
 *   "timing": { "heartbeatIntervalMs": 50, "electionTimeoutMs": 350 },
 *   "kvMirror": true,
 *   "statusIntervalMs": 200,
 *   "detector": true,
 *   "monitor": true,
 *   "detection": { "maxIsolationDelayMs": 1000 },
 *   "manager": { "hostFailuresToTolerate": 1 },
 *   "streamReplicas": 1
 * }
 * ```
 *
 * `role` may be given as "controller" (runtime/node/nodeConfig.ts reads the
 * other roles; a config without one is a controller's). `detector` (default
 * true) runs the host failure detector, active while this controller holds
 * the Paxos lease, which commits host failures to the view; `monitor`
 * (default false) also runs a heartbeat monitor named after this controller,
 * so hosts may list controller ids in their `monitorIds`. `detection` holds
 * the failure-detection timings (runtime/node/detectionSettings.ts): the
 * same on every node of the cluster. `manager` (runtime/node/managerSettings.ts;
 * default: on, with machines/manager/managerConfig.ts's defaults; `false`
 * turns it off) runs the HA manager, active only while this controller leads
 * with the lease, which places and starts VMs through command multicast.
 * `streamReplicas` (1 or 3, default 1) is the command stream's JetStream
 * replicas: 3 on a NATS cluster, the same on every controller and host.
 *
 * `bootstrap` allows this controller to create a brand-new cluster: on an
 * empty data directory it first asks the other controllers whether the
 * cluster ever ran (actors/paxos/bootstrapGate.ts) and becomes a voter at
 * once only if enough of them never ran either; otherwise, as without
 * `bootstrap`, an empty directory means "this controller lost its disk", and
 * it rejoins safely (quarantine, then a fence by the others; docs/paxos.md,
 * "Bootstrap"). So it may stay in the file for good. It is ignored once the
 * directory holds a log. `timing` overrides any of the
 * Paxos timings (machines/paxos/config.ts, and `controllerProcessTimings`
 * below); every controller of a cluster must use the same ones (the lease
 * arithmetic depends on it).
 */
import { isAbsolute } from "node:path";
import { readStreamReplicas } from "../node/commonFields.ts";
import { ObjectReader } from "../node/configFields.ts";
import { readManagerSettings, type ManagerSettings } from "../node/managerSettings.ts";
import { defaultDetectionSettings, readDetectionSettings, type DetectionSettings } from "../node/detectionSettings.ts";
import { controllerConfigProblems } from "../../actors/paxos/controllerActor.ts";
import { isValidId } from "../../actors/subjects.ts";
import { createPaxosConfig, defaultPaxosTimings, maxAcceptors, type PaxosConfig } from "../../machines/paxos/config.ts";

export const maxConfigFileBytes = 64 * 1024;
export const maxNatsUrls = 16;
export const maxStatusIntervalMs = 60_000;
export const defaultStatusIntervalMs = 200;

export type PaxosTimings = Omit<PaxosConfig, "acceptorIds">;

export interface ControllerProcessConfig {
  readonly clusterId: string;
  readonly nodeId: string;
  readonly controllerIds: readonly string[];
  readonly natsUrls: readonly string[];
  readonly dataDir: string;
  readonly bootstrap: boolean;
  readonly timing: Partial<PaxosTimings>;
  readonly kvMirror: boolean;
  /** How often `<dataDir>/status.json` is rewritten; 0 turns it off. */
  readonly statusIntervalMs: number;
  /** The seed of this process's Random port; random when absent. */
  readonly seed?: number;
  /** Runs the host failure detector (active only while this controller holds the lease). */
  readonly detector: boolean;
  /** Runs a heartbeat monitor named after this controller. */
  readonly monitor: boolean;
  readonly detection: DetectionSettings;
  /** The HA manager (active only while this controller leads with the lease) and its settings. */
  readonly manager: ManagerSettings;
  /** JetStream replicas of the command stream: 1 on one nats-server, 3 on a NATS cluster. */
  readonly streamReplicas: 1 | 3;
}

export type ConfigParse = { readonly ok: true; readonly config: ControllerProcessConfig; readonly paxos: PaxosConfig } | { readonly ok: false; readonly problems: readonly string[] };

/**
 * Where a controller process departs from the pure cores' defaults (docs/benchmarks-paxos.md):
 * - A leader with 2 or more slots in flight holds a batch that is not full until a slot is chosen:
 *   with 64 proposals in flight the slots carried 1.7 commands each (a durable write on every
 *   acceptor and a commit message per 1.7 commands), 10-30 with this.
 * - A new slot's accept goes to a bare majority (the leader and the follower it heard from last),
 *   the other follower getting it 1 ms later if the slot is still open: one durable write and two
 *   NATS messages fewer per slot; one command's commit took 0.15 ms less at the p50 and 12% less
 *   CPU, and the hedge took about 0.9 ms off the p99.
 * - A snapshot every 2,048 slots (2,048 retained): each one rewrites the log with the whole view
 *   (4 MB at 10,000 VMs), and every 512 commits that cost the commits around it a visible share
 *   of the disk and the CPUs (p99 5.0-7.6 → 4.4-5.0 ms in the benchmark).
 * The pure defaults stay as they were because the simulator's recorded scenario logs were made
 * without these; the Paxos sim tests run with them too (partialBatchHoldInSim, majorityAcceptsInSim).
 */
export const controllerProcessTimings: Partial<PaxosTimings> = { maxInFlightSlotsForPartialBatches: 2, acceptRecipientsBeyondMajority: 0, acceptHedgeMs: 1, snapshotEverySlots: 2_048, maxRetainedSlots: 2_048 };

const knownKeys = ["role", "clusterId", "nodeId", "controllerIds", "natsUrls", "dataDir", "bootstrap", "timing", "kvMirror", "statusIntervalMs", "seed", "detector", "monitor", "detection", "manager", "streamReplicas"];
const timingKeys = Object.keys(defaultPaxosTimings) as Array<keyof typeof defaultPaxosTimings>;

function describe(value: unknown): string {
  if (typeof value === "string") return value.length > 40 ? `a string of ${value.length} characters` : JSON.stringify(value);
  if (Array.isArray(value)) return `a list of ${value.length}`;
  if (value === null) return "null";
  return typeof value === "object" ? "an object" : String(value);
}

function isNatsUrl(value: unknown): value is string {
  if (typeof value !== "string" || value.length > 512) return false;
  try {
    const url = new URL(value);
    return (url.protocol === "nats:" || url.protocol === "tls:") && url.hostname.length > 0;
  } catch {
    return false;
  }
}

/** Validates a parsed JSON value; never throws. */
export function parseControllerConfig(value: unknown): ConfigParse {
  const problems: string[] = [];
  if (typeof value !== "object" || value === null || Array.isArray(value)) return { ok: false, problems: [`the config must be a JSON object, got ${describe(value)}`] };
  const raw = value as Record<string, unknown>;
  for (const key of Object.keys(raw)) if (!knownKeys.includes(key)) problems.push(`unknown field ${JSON.stringify(key.slice(0, 64))} (known: ${knownKeys.join(", ")})`);

  const id = (field: string): string => {
    const candidate = raw[field];
    if (typeof candidate === "string" && isValidId(candidate)) return candidate;
    problems.push(`${field} must be 1-64 of [A-Za-z0-9_-], got ${describe(candidate)}`);
    return "";
  };
  const clusterId = id("clusterId");
  const nodeId = id("nodeId");

  let controllerIds: string[] = [];
  const rawControllers = raw.controllerIds;
  if (!Array.isArray(rawControllers) || rawControllers.length < 1 || rawControllers.length > maxAcceptors) {
    problems.push(`controllerIds must list 1 to ${maxAcceptors} controller ids, got ${describe(rawControllers)}`);
  } else if (!rawControllers.every((entry) => typeof entry === "string" && isValidId(entry))) {
    problems.push("controllerIds must hold ids of 1-64 of [A-Za-z0-9_-]");
  } else if (new Set(rawControllers).size !== rawControllers.length) {
    problems.push("controllerIds contains a duplicate");
  } else {
    controllerIds = rawControllers as string[];
    if (nodeId !== "" && !controllerIds.includes(nodeId)) problems.push(`nodeId ${nodeId} is not in controllerIds (${controllerIds.join(", ")})`);
  }

  let natsUrls: string[] = [];
  const rawUrls = raw.natsUrls;
  if (!Array.isArray(rawUrls) || rawUrls.length < 1 || rawUrls.length > maxNatsUrls) problems.push(`natsUrls must list 1 to ${maxNatsUrls} URLs, got ${describe(rawUrls)}`);
  else if (!rawUrls.every(isNatsUrl)) problems.push(`natsUrls must be nats:// (or tls://) URLs, got ${describe(rawUrls.find((url) => !isNatsUrl(url)))}`);
  else natsUrls = rawUrls as string[];

  const dataDir = raw.dataDir;
  if (typeof dataDir !== "string" || !isAbsolute(dataDir) || dataDir.length > 4_096 || dataDir.includes("\0")) problems.push(`dataDir must be an absolute path, got ${describe(dataDir)}`);

  const flag = (field: string, fallback: boolean): boolean => {
    const candidate = raw[field];
    if (candidate === undefined) return fallback;
    if (typeof candidate === "boolean") return candidate;
    problems.push(`${field} must be true or false, got ${describe(candidate)}`);
    return fallback;
  };
  const bootstrap = flag("bootstrap", false);
  const kvMirror = flag("kvMirror", true);
  const detector = flag("detector", true);
  const monitor = flag("monitor", false);
  if (raw.role !== undefined && raw.role !== "controller") problems.push(`role must be "controller" here, got ${describe(raw.role)}`);
  const top = new ObjectReader(raw, "", problems);
  const detection = raw.detection === undefined ? defaultDetectionSettings : readDetectionSettings(top);
  const manager = readManagerSettings(top);
  const streamReplicas = readStreamReplicas(top);

  let statusIntervalMs = defaultStatusIntervalMs;
  if (raw.statusIntervalMs !== undefined) {
    const candidate = raw.statusIntervalMs;
    if (Number.isSafeInteger(candidate) && (candidate as number) >= 0 && (candidate as number) <= maxStatusIntervalMs) statusIntervalMs = candidate as number;
    else problems.push(`statusIntervalMs must be a whole number of ms in [0, ${maxStatusIntervalMs}], got ${describe(candidate)}`);
  }

  let seed: number | undefined;
  if (raw.seed !== undefined) {
    if (Number.isSafeInteger(raw.seed) && (raw.seed as number) >= 0) seed = raw.seed as number;
    else problems.push(`seed must be a whole number ≥ 0, got ${describe(raw.seed)}`);
  }

  const timing: Record<string, number> = {};
  const rawTiming = raw.timing;
  if (rawTiming !== undefined) {
    if (typeof rawTiming !== "object" || rawTiming === null || Array.isArray(rawTiming)) {
      problems.push(`timing must be an object of Paxos timings, got ${describe(rawTiming)}`);
    } else {
      for (const [key, entry] of Object.entries(rawTiming)) {
        if (!(timingKeys as string[]).includes(key)) problems.push(`timing.${key.slice(0, 64)} is not a Paxos timing (known: ${timingKeys.join(", ")})`);
        else if (!Number.isSafeInteger(entry) || (entry as number) < 0) problems.push(`timing.${key} must be a whole number ≥ 0, got ${describe(entry)}`);
        else timing[key] = entry as number;
      }
    }
  }

  const paxos = createPaxosConfig(controllerIds, { ...controllerProcessTimings, ...timing });
  if (controllerIds.length > 0 && nodeId !== "" && controllerIds.includes(nodeId)) {
    problems.push(...controllerConfigProblems(nodeId, paxos).map((problem) => `timing: ${problem}`));
  }
  if (problems.length > 0) return { ok: false, problems };
  const config: ControllerProcessConfig = {
    clusterId,
    nodeId,
    controllerIds,
    natsUrls,
    dataDir: dataDir as string,
    bootstrap,
    timing,
    kvMirror,
    statusIntervalMs,
    ...(seed !== undefined ? { seed } : {}),
    detector,
    monitor,
    detection,
    manager,
    streamReplicas,
  };
  return { ok: true, config, paxos };
}

/** Parses the text of a config file; never throws. */
export function parseControllerConfigText(text: string): ConfigParse {
  if (text.length > maxConfigFileBytes) return { ok: false, problems: [`the config file is larger than ${maxConfigFileBytes} bytes`] };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { ok: false, problems: [`the config file is not valid JSON: ${error instanceof Error ? error.message : String(error)}`] };
  }
  return parseControllerConfig(value);
}

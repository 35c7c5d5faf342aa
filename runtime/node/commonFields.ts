/** The fields every host and monitor config has (controllers have the same ones, read by controllerConfig.ts). */
import type { ObjectReader } from "./configFields.ts";

export const defaultNodeStatusIntervalMs = 1_000;
export const maxNodeStatusIntervalMs = 60_000;

export interface CommonNodeFields {
  readonly clusterId: string;
  readonly nodeId: string;
  readonly natsUrls: readonly string[];
  /** Lock, storage (host incarnations), status.json and metrics.prom. */
  readonly dataDir: string;
  /** How often status.json and metrics.prom are rewritten; 0 turns them off. */
  readonly statusIntervalMs: number;
  /** The seed of this process's Random port; random when absent. */
  readonly seed?: number;
}

export function readCommonFields(top: ObjectReader): CommonNodeFields {
  const clusterId = top.id("clusterId");
  const nodeId = top.id("nodeId");
  const natsUrls = top.natsUrls("natsUrls");
  const dataDir = top.absolutePath("dataDir") ?? "";
  const statusIntervalMs = top.integer("statusIntervalMs", 0, maxNodeStatusIntervalMs, defaultNodeStatusIntervalMs);
  const seed = top.optionalInteger("seed", 0, Number.MAX_SAFE_INTEGER);
  return { clusterId, nodeId, natsUrls, dataDir, statusIntervalMs, ...(seed !== undefined ? { seed } : {}) };
}

/**
 * `streamReplicas`: JetStream replicas of the command stream (group
 * communication): 1 on a single nats-server, 3 on a 3-server NATS cluster
 * (what production needs: nats-server 2.9 syncs to disk only every minute,
 * docs/group-communication.md). Every controller and host of a cluster must
 * use the same number: each ensures the stream with its own.
 */
export function readStreamReplicas(top: ObjectReader): 1 | 3 {
  const value = top.raw.streamReplicas;
  if (value === undefined) return 1;
  if (value === 1 || value === 3) return value;
  top.problem("streamReplicas", `must be 1 (one nats-server) or 3 (a NATS cluster), got ${typeof value === "string" ? JSON.stringify(value.slice(0, 40)) : String(value)}`);
  return 1;
}

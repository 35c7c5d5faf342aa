/**
 * The recovery manager's settings, with their defaults and the reasons for
 * them (docs/recovery.md compares them with vSphere HA and Proxmox HA).
 * Config comes from files and the network, so `managerConfigProblems` checks
 * every field before the manager reads any.
 */
import { maxHostFailuresToTolerate, maxRecordedRecoveriesPerKind } from "../view/viewTypes.ts";

export interface ManagerConfig {
  /**
   * Admission control keeps room to restart every VM after this many host failures. The view's F is the
   * one applied; this one is proposed when the view has none (docs/recovery.md, "Admission control: where").
   */
  readonly hostFailuresToTolerate: number;
  /** Start attempts of one VM on one target host before it is relocated. */
  readonly maxStartAttempts: number;
  readonly startRetryBaseMs: number;
  readonly startRetryMaxMs: number;
  /** A start (or stop, or migration) with no result after this long counts as failed. */
  readonly hostCommandTimeoutMs: number;
  /** Starts in flight per target host; the rest wait, higher priority first. */
  readonly maxConcurrentRestartsPerHost: number;
  /** Restarts in place of a crashed VM per window; one more crash relocates it. Counted from the view's record, so across leader changes. */
  readonly maxRestartsPerWindow: number;
  readonly restartWindowMs: number;
  /** A guest reported hung is reset only if still hung this long after the report. */
  readonly guestHangGraceMs: number;
  readonly maxResetsPerWindow: number;
  readonly resetWindowMs: number;
  /**
   * A committed failure the manager has no `leaseExpiresByMs` for (declared under an earlier leader, or
   * by an operator) is acted on only this long after the manager first saw it: a new detector term waits
   * the same bound ((A + L + W)' in docs/failure-detection.md) before it declares anything.
   */
  readonly undeclaredFailureWaitMs: number;
  /** A placement proposal with no outcome and no commit after this long may be proposed again. */
  readonly proposalTimeoutMs: number;
  /** VMs that fit nowhere are planned again at least this often (and at once when a host comes up or a VM goes). */
  readonly pendingRetryIntervalMs: number;
  /** Bounds on the work of one step, so one event cannot flood Paxos or the hosts. */
  readonly maxProposalsInFlight: number;
  readonly maxHostCommandsPerStep: number;
}

export const defaultManagerConfig: ManagerConfig = {
  hostFailuresToTolerate: 1,
  maxStartAttempts: 5,
  startRetryBaseMs: 200,
  startRetryMaxMs: 10_000,
  hostCommandTimeoutMs: 30_000,
  maxConcurrentRestartsPerHost: 32,
  maxRestartsPerWindow: 3,
  restartWindowMs: 600_000,
  guestHangGraceMs: 1_000,
  maxResetsPerWindow: 3,
  resetWindowMs: 3_600_000,
  undeclaredFailureWaitMs: 3_100,
  proposalTimeoutMs: 5_000,
  pendingRetryIntervalMs: 5_000,
  maxProposalsInFlight: 4_096,
  maxHostCommandsPerStep: 4_096,
};

const limits: Record<keyof ManagerConfig, readonly [number, number]> = {
  hostFailuresToTolerate: [0, maxHostFailuresToTolerate],
  maxStartAttempts: [1, 100],
  startRetryBaseMs: [1, 3_600_000],
  startRetryMaxMs: [1, 3_600_000],
  hostCommandTimeoutMs: [1, 3_600_000],
  maxConcurrentRestartsPerHost: [1, 10_000],
  // The view records at most this many of each (so a new leader counts the whole window).
  maxRestartsPerWindow: [0, maxRecordedRecoveriesPerKind],
  restartWindowMs: [1, 86_400_000],
  guestHangGraceMs: [0, 3_600_000],
  maxResetsPerWindow: [0, maxRecordedRecoveriesPerKind],
  resetWindowMs: [1, 86_400_000],
  undeclaredFailureWaitMs: [0, 3_600_000],
  proposalTimeoutMs: [1, 3_600_000],
  pendingRetryIntervalMs: [1, 3_600_000],
  maxProposalsInFlight: [1, 1_000_000],
  maxHostCommandsPerStep: [1, 1_000_000],
};

/** Every problem with `config` (one per field), empty when it is usable. Never throws. */
export function managerConfigProblems(config: unknown): string[] {
  if (typeof config !== "object" || config === null || Array.isArray(config)) return ["manager config must be an object"];
  const record = config as Record<string, unknown>;
  const problems: string[] = [];
  for (const key of Object.keys(record)) if (!(key in limits)) problems.push(`unknown field ${key.slice(0, 64)}`);
  for (const [key, [min, max]] of Object.entries(limits)) {
    const value = record[key];
    if (!Number.isSafeInteger(value) || (value as number) < min || (value as number) > max) problems.push(`${key} must be an integer in [${min}, ${max}]`);
  }
  if (problems.length === 0 && (record.startRetryBaseMs as number) > (record.startRetryMaxMs as number)) problems.push("startRetryBaseMs must not exceed startRetryMaxMs");
  return problems;
}

/** The wait before start attempt `attempt` (2, 3, …): base doubled per failure, capped. */
export function startRetryDelayMs(config: ManagerConfig, failedAttempts: number): number {
  const exponent = Math.min(Math.max(failedAttempts - 1, 0), 30);
  return Math.min(config.startRetryBaseMs * 2 ** exponent, config.startRetryMaxMs);
}

/**
 * Fuzzing the replicated view (after TigerBeetle's VOPR): consecutive seeds,
 * each a random simulated cluster run of the real Paxos actors
 * (paxosClusterRun.ts). Any broken invariant is reported with its seed; replay
 * one with `runPaxosCluster({ seed, controllers, transcriptLevel: "info" })`
 * to read its transcript.
 */
import { defaultPaxosClusterRunOptions, runPaxosCluster, type PaxosClusterRunResult, type PaxosClusterStats } from "./paxosClusterRun.ts";

export const paxosFuzzLimits = { maxSeeds: 1_000_000 } as const;

export interface PaxosFuzzOptions {
  readonly seeds: number;
  readonly startSeed: number;
  /** Controllers per run (3 or 5 in the suite; 1-9 allowed). */
  readonly controllers: number;
  /** Host learners per run. */
  readonly hosts?: number;
  /** Percent of controller crashes that also lose the disk (see PaxosClusterRunOptions); 0 by default. */
  readonly diskLossPercent?: number;
  /** Move snapshots, promises and rejoin-states in small chunks (see PaxosClusterRunOptions). */
  readonly chunkedTransfers?: boolean;
  /** Controllers removed from the acceptor set during each run's chaos (see PaxosClusterRunOptions); 0 by default. */
  readonly removeControllers?: number;
  /** Controllers added to the acceptor set during each run's chaos (see PaxosClusterRunOptions); 0 by default. */
  readonly addControllers?: number;
  /** Every controller starts through its bootstrap gate, as controller processes do (see PaxosClusterRunOptions). */
  readonly bootstrapGate?: boolean;
  /** Called after each seed, e.g. to print progress. */
  readonly onSeed?: (result: PaxosClusterRunResult) => void;
}

export interface PaxosFuzzTotals {
  readonly commandsCommitted: number;
  readonly slotsChosen: number;
  readonly crashes: number;
  readonly disksLost: number;
  readonly partitions: number;
  readonly pauses: number;
  readonly outages: number;
  readonly leaderChanges: number;
  readonly mirrorWrites: number;
  readonly messagesDelivered: number;
  readonly controllersRemoved: number;
  readonly controllersAdded: number;
  readonly setSteps: number;
  readonly gateBootstraps: number;
  readonly gateRejoins: number;
  readonly gateRefusals: number;
  /** The slowest probe commit after healing, in virtual ms. */
  readonly worstProbeCommitMs: number;
}

export interface PaxosFuzzResult {
  readonly ok: boolean;
  readonly seeds: number;
  readonly failedSeeds: readonly number[];
  /** Each names its seed. */
  readonly failures: readonly string[];
  readonly totals: PaxosFuzzTotals;
  readonly summaryText: string;
}

const summed = ["commandsCommitted", "slotsChosen", "crashes", "disksLost", "partitions", "pauses", "outages", "leaderChanges", "mirrorWrites", "messagesDelivered", "controllersRemoved", "controllersAdded", "setSteps", "gateBootstraps", "gateRejoins", "gateRefusals"] as const;

export function runPaxosFuzz(options: PaxosFuzzOptions): PaxosFuzzResult {
  const { seeds, startSeed, controllers } = options;
  if (!Number.isSafeInteger(seeds) || seeds < 1 || seeds > paxosFuzzLimits.maxSeeds) throw new RangeError(`seeds must be a whole number in [1, ${paxosFuzzLimits.maxSeeds}], got ${seeds}`);
  if (!Number.isSafeInteger(startSeed) || startSeed < 0 || startSeed + seeds > Number.MAX_SAFE_INTEGER) throw new RangeError(`startSeed must be a whole number ≥ 0, got ${startSeed}`);
  const hosts = options.hosts ?? defaultPaxosClusterRunOptions.hosts;
  const totals = { ...(Object.fromEntries(summed.map((key) => [key, 0])) as Record<(typeof summed)[number], number>), worstProbeCommitMs: 0 };
  const failedSeeds: number[] = [];
  const failures: string[] = [];
  for (let seed = startSeed; seed < startSeed + seeds; seed++) {
    const result = runPaxosCluster({ seed, controllers, hosts, ...(options.diskLossPercent ? { diskLossPercent: options.diskLossPercent } : {}), ...(options.chunkedTransfers ? { chunkedTransfers: true } : {}), ...(options.removeControllers ? { removeControllers: options.removeControllers } : {}), ...(options.addControllers ? { addControllers: options.addControllers } : {}), ...(options.bootstrapGate ? { bootstrapGate: true } : {}) });
    options.onSeed?.(result);
    const stats: PaxosClusterStats = result.stats;
    for (const key of summed) totals[key] += stats[key];
    totals.worstProbeCommitMs = Math.max(totals.worstProbeCommitMs, stats.probeCommitMs);
    if (!result.ok) {
      failedSeeds.push(seed);
      failures.push(...result.failures);
    }
  }
  const ok = failedSeeds.length === 0;
  const summaryText = [
    `paxos fuzz: seeds ${startSeed}..${startSeed + seeds - 1}, ${controllers} controllers, ${hosts} host learners`,
    `committed ${totals.commandsCommitted} commands in ${totals.slotsChosen} slots; ${totals.crashes} crashes (${totals.disksLost} losing the disk), ${totals.partitions} partitions, ${totals.pauses} pauses, ${totals.outages} NATS outages, ${totals.leaderChanges} elections`,
    ...(options.removeControllers ? [`${totals.controllersRemoved} controllers removed from the acceptor set, in ${totals.setSteps} steps of the others`] : []),
    ...(options.addControllers ? [`${totals.controllersAdded} controllers added to the acceptor set, after ${totals.setSteps} steps of the old ones`] : []),
    ...(options.bootstrapGate ? [`bootstrap gates: ${totals.gateBootstraps} created the cluster, ${totals.gateRejoins} rejoined it${totals.gateRefusals > 0 ? `, ${totals.gateRefusals} refused (another set heard during the set change) and started again` : ""}`] : []),
    `worst probe commit after healing: ${totals.worstProbeCommitMs.toFixed(1)} ms (virtual)`,
    ok ? "result: ok" : `result: FAILED on seeds ${failedSeeds.slice(0, 20).join(", ")}${failedSeeds.length > 20 ? ", …" : ""}`,
  ].join("\n");
  return { ok, seeds, failedSeeds, failures, totals: { ...totals }, summaryText };
}

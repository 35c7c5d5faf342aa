/**
 * Every knob of the Paxos cores, with units in the names. One object is shared
 * by all controllers of a cluster: the lease arithmetic is only safe when every
 * acceptor grants the same `leaseDurationMs` that leaders count on.
 */
export interface PaxosConfig {
  /** The acceptor set, in a fixed order; every controller runs one acceptor. */
  readonly acceptorIds: readonly string[];
  /** A leader sends a heartbeat (lease renewal, commit index) this often. */
  readonly heartbeatIntervalMs: number;
  /**
   * A leader tells non-acceptor learners the commit index at least this often even when nothing new
   * is chosen, so a learner that restarted empty during a quiet spell knows it is behind.
   */
  readonly commitBeaconIntervalMs: number;
  /** How long an acceptor refuses a rival's prepare after granting the lease. */
  readonly leaseDurationMs: number;
  /** The leader counts its lease as `leaseDurationMs - clockDriftMarginMs` from when it sent the renewal. */
  readonly clockDriftMarginMs: number;
  /** A follower that hears nothing from a leader for this long (plus jitter) starts an election. */
  readonly electionTimeoutMs: number;
  /** Upper bound of the random extra delay before an election or a retried prepare. */
  readonly electionJitterMs: number;
  /** A phase 1 that has not reached a majority by then is abandoned (its promises are never used later). */
  readonly prepareTimeoutMs: number;
  /** An accept not acknowledged by a majority is re-sent after this long. */
  readonly acceptRetryMs: number;
  /**
   * A new slot's accept goes at once to a bare majority (the leader's own acceptor, then the
   * followers it heard from most recently) and to this many more acceptors; the rest get it only if
   * the slot is still open at the first resend (`acceptRetryMs`). With three acceptors and 0, every
   * slot spares one follower a durable write and the NATS server two messages. The default (as many
   * as there can be acceptors) sends to all: the simulator's recorded scenarios run on it. Controller
   * processes use 0 (runtime/controller/controllerConfig.ts).
   */
  readonly acceptRecipientsBeyondMajority: number;
  /**
   * A slot sent to fewer than all acceptors that is still open this long after goes to the rest too
   * (0: only at the resend). The caller ticks the leader when it is due (`nextAcceptHedgeAtMs`).
   */
  readonly acceptHedgeMs: number;
  /** At most this many client commands go into one slot. */
  readonly maxCommandsPerBatch: number;
  /** At most this many slots are proposed but not yet chosen. */
  readonly maxInFlightSlots: number;
  /**
   * With this many slots or more in flight, a leader opens a new slot only for a full batch
   * (`maxCommandsPerBatch`); fewer waiting commands stay pending until a slot is chosen, and more join
   * them meanwhile. Every slot costs each acceptor a durable write and every learner a commit message,
   * so under load fuller slots commit more commands per write; one command alone still goes at once.
   * The default (as many as the default window) never holds a batch back: the simulator's recorded
   * scenarios run on it. Controller processes hold back from 2 slots on (runtime/controller/controllerConfig.ts).
   */
  readonly maxInFlightSlotsForPartialBatches: number;
  /** Commands waiting at the leader for a slot; more are refused as overloaded. */
  readonly maxPendingCommands: number;
  /** A learner keeps this many applied slots to serve catch-up; older ones are only in snapshots. */
  readonly maxRetainedSlots: number;
  /** A learner snapshots its state (and the acceptor compacts below it) every this many applied slots. */
  readonly snapshotEverySlots: number;
  /** Chosen slots a learner buffers ahead of a gap; further ones are dropped and fetched later. */
  readonly maxBufferedChosenSlots: number;
  /** A catch-up fetch asks for at most this many slots. */
  readonly maxFetchSlots: number;
  /**
   * A fetch reply carries slots holding at most this many commands in all (at least one slot, whatever
   * it holds): the requester applies a reply in one step, which holds its event loop, and the server
   * encodes it in one. `maxFetchSlots` full slots were 16,384 commands, 79-205 ms of one step for a
   * controller catching up at 60,000 VMs; the requester asks again at once while it is behind.
   */
  readonly maxFetchReplyCommands: number;
  /** A learner behind the commit index for this long fetches. */
  readonly catchUpAfterMs: number;
  /** An unanswered fetch is retried (at another peer) after this long. */
  readonly fetchTimeoutMs: number;
  /**
   * An acceptor restarted from an empty disk stays silent this long before it
   * fences: longer than `leaseDurationMs` (any lease it granted has run out)
   * and than `prepareTimeoutMs` (no phase 1 can still count a promise it
   * forgot), with a margin for clock drift. See docs/paxos.md, "Rejoining from
   * an empty disk".
   */
  readonly rejoinQuarantineMs: number;
  /** A rejoining acceptor re-sends its fence if a majority has not answered after this long. */
  readonly rejoinRetryMs: number;
}

export const maxAcceptors = 9;

export const defaultPaxosTimings = {
  heartbeatIntervalMs: 50,
  commitBeaconIntervalMs: 500,
  leaseDurationMs: 300,
  clockDriftMarginMs: 30,
  electionTimeoutMs: 350,
  electionJitterMs: 150,
  prepareTimeoutMs: 200,
  acceptRetryMs: 100,
  acceptRecipientsBeyondMajority: maxAcceptors,
  acceptHedgeMs: 0,
  maxCommandsPerBatch: 64,
  maxInFlightSlots: 32,
  maxInFlightSlotsForPartialBatches: 32,
  maxPendingCommands: 4_096,
  maxRetainedSlots: 1_024,
  snapshotEverySlots: 512,
  maxBufferedChosenSlots: 2_048,
  maxFetchSlots: 256,
  maxFetchReplyCommands: 1_024,
  catchUpAfterMs: 100,
  fetchTimeoutMs: 250,
  rejoinQuarantineMs: 2_000,
  rejoinRetryMs: 250,
} as const satisfies Omit<PaxosConfig, "acceptorIds">;

export function createPaxosConfig(acceptorIds: readonly string[], overrides: Partial<Omit<PaxosConfig, "acceptorIds">> = {}): PaxosConfig {
  return { ...defaultPaxosTimings, ...overrides, acceptorIds: [...acceptorIds] };
}

/** Timings where 0 means something (no jitter, no margin, no extra recipients, no hedge); the rest must be positive. */
const timingsThatMayBeZero: ReadonlySet<keyof typeof defaultPaxosTimings> = new Set(["electionJitterMs", "clockDriftMarginMs", "acceptRecipientsBeyondMajority", "acceptHedgeMs"]);

/** Every problem with the config, one sentence each; empty when it is usable. */
export function paxosConfigProblems(config: PaxosConfig): string[] {
  const problems: string[] = [];
  const ids = config.acceptorIds;
  if (ids.length < 1 || ids.length > maxAcceptors) problems.push(`acceptorIds must list 1 to ${maxAcceptors} controllers, got ${ids.length}`);
  if (new Set(ids).size !== ids.length) problems.push("acceptorIds contains a duplicate");
  for (const id of ids) if (id === "" || id === broadcastForbiddenId) problems.push(`acceptor id ${JSON.stringify(id)} is reserved`);
  const positive: Array<keyof typeof defaultPaxosTimings> = Object.keys(defaultPaxosTimings) as Array<keyof typeof defaultPaxosTimings>;
  for (const key of positive) {
    const value = config[key];
    const mayBeZero = timingsThatMayBeZero.has(key);
    if (!Number.isSafeInteger(value) || value < (mayBeZero ? 0 : 1)) {
      problems.push(`${key} must be a ${mayBeZero ? "non-negative" : "positive"} integer, got ${value}`);
    }
  }
  if (config.clockDriftMarginMs >= config.leaseDurationMs) problems.push("clockDriftMarginMs must be below leaseDurationMs");
  if (config.heartbeatIntervalMs * 2 > config.leaseDurationMs - config.clockDriftMarginMs) {
    problems.push("leaseDurationMs - clockDriftMarginMs must cover at least two heartbeat intervals, or the lease lapses between renewals");
  }
  if (config.electionTimeoutMs < config.leaseDurationMs) problems.push("electionTimeoutMs below leaseDurationMs only produces prepares the lease refuses");
  if (config.rejoinQuarantineMs < Math.max(config.leaseDurationMs, config.prepareTimeoutMs)) {
    problems.push("rejoinQuarantineMs must cover leaseDurationMs and prepareTimeoutMs, or a rejoining acceptor may break a lease or a promise it forgot");
  }
  if (config.maxRetainedSlots < config.snapshotEverySlots) problems.push("maxRetainedSlots must be at least snapshotEverySlots, or slots leave the log before a snapshot covers them");
  return problems;
}

/** Not an acceptor id: it addresses every learner that is not an acceptor (hosts), see messages.ts. */
const broadcastForbiddenId = "*";

export function majorityOf(count: number): number {
  return Math.floor(count / 2) + 1;
}

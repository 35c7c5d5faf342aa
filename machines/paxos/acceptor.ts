/**
 * The acceptor: the memory of Paxos. Pure: a step takes the state and one input
 * and returns the next state plus effects (records to make durable, then
 * messages to send). See stepResult.ts for the persist-before-send contract.
 *
 * - One promised ballot covers every slot: a prepare "from slot s on" is
 *   answered with every vote at or above s, and raises the promise for all.
 * - Pre-vote: answered from the state as it is (granted unless a lease held by
 *   another controller runs, or the acceptor is rejoining); changes nothing.
 * - Lease: an accept or heartbeat that the acceptor takes grants its
 *   sender's controller the lease for `leaseDurationMs` of local time; while it
 *   runs, a prepare from any other controller is refused. A restarted acceptor
 *   cannot know what it granted, so it assumes the holder of its promised
 *   ballot holds a lease that started at the restart.
 * - An acceptor restarted from an empty disk ("init" record absent, and not
 *   bootstrapping a new cluster) does not vote until it has fenced: after a
 *   quarantine it asks the others to promise a ballot above all they promised
 *   and to report their votes, and inherits the highest vote per slot from a
 *   majority of them: it reports inherited votes in promises but never counts
 *   them as its own acceptance. docs/paxos.md explains why that is safe.
 */
import { compareBallots, maxBallot, sameBallot, zeroBallot, type Ballot } from "./ballot.ts";
import { ChunkedMap } from "./chunkedMap.ts";
import { majorityOf, type PaxosConfig } from "./config.ts";
import type {
  AcceptedVote,
  AcceptMessage,
  HeartbeatMessage,
  PaxosMessage,
  PrepareMessage,
  PreVoteMessage,
  RejectMessage,
  RejectReason,
  RejoinStateMessage,
  ReportedVote,
} from "./messages.ts";
import type { DurableRecord } from "./records.ts";
import type { Effects } from "./stepResult.ts";
import type { CommandEnvelope } from "./values.ts";

/**
 * How many times (retained slots + in-flight slots) an acceptor holds votes above its floor before it
 * stops voting: only an acceptor whose own learner is far behind (so its floor does not rise) gets there.
 */
export const voteLogHeadroomFactor = 4;

/** A vote held by the acceptor; `inherited` marks one adopted while rejoining (reported, never counted). */
export interface HeldVote<C extends CommandEnvelope> extends AcceptedVote<C> {
  readonly inherited: boolean;
}

export interface AcceptorLease {
  /** "" when no lease was ever granted. */
  readonly holderId: string;
  readonly expiresAtMs: number;
}

export interface RejoinReply<C extends CommandEnvelope> {
  readonly fence: Ballot;
  readonly floorSlot: number;
  readonly votes: readonly ReportedVote<C>[];
}

export interface RejoinProgress<C extends CommandEnvelope> {
  readonly quarantineUntilMs: number;
  readonly attempt: number;
  /** -1 before the first fence is sent. */
  readonly fenceSentAtMs: number;
  readonly replies: ReadonlyMap<string, RejoinReply<C>>;
}

export interface AcceptorState<C extends CommandEnvelope> {
  readonly acceptorId: string;
  readonly config: PaxosConfig;
  readonly mode: "voting" | "rejoining";
  readonly promised: Ballot;
  /** slot → vote, only for slots at or above `floorSlot`. */
  readonly votes: ChunkedMap<number, HeldVote<C>>;
  readonly floorSlot: number;
  readonly lease: AcceptorLease;
  readonly rejoin: RejoinProgress<C> | null;
  /** The controllers whose fences completed the rejoin that began this disk's life; null for a bootstrapped disk (records.ts, `init`). */
  readonly fencedBy: readonly string[] | null;
}

export type AcceptorInput<C extends CommandEnvelope> =
  | { readonly type: "message"; readonly message: PaxosMessage<C>; readonly nowMs: number }
  | { readonly type: "tick"; readonly nowMs: number }
  /** Every slot below `belowSlot` is chosen and in a durable snapshot: forget their votes. */
  | { readonly type: "compact"; readonly belowSlot: number };

export interface AcceptorStep<C extends CommandEnvelope> extends Effects<C> {
  readonly state: AcceptorState<C>;
}

export interface AcceptorRecovery<C extends CommandEnvelope> {
  readonly acceptorId: string;
  readonly config: PaxosConfig;
  readonly records: readonly DurableRecord<C>[];
  readonly nowMs: number;
  /** True only when creating a new cluster: an empty disk then means "never voted", not "lost". */
  readonly bootstrap: boolean;
}

export function maxVotesHeld(config: PaxosConfig): number {
  return voteLogHeadroomFactor * (config.maxRetainedSlots + config.maxInFlightSlots);
}

export function recoverAcceptor<C extends CommandEnvelope>(recovery: AcceptorRecovery<C>): AcceptorStep<C> {
  const { acceptorId, config, records, nowMs } = recovery;
  let sawInit = false;
  let fencedBy: readonly string[] | null = null;
  let promised = zeroBallot;
  let floorSlot = 0;
  let votes = ChunkedMap.empty<number, HeldVote<C>>().edit();
  for (const record of records) {
    switch (record.kind) {
      case "init":
        sawInit = true;
        fencedBy = record.fencedBy ?? null;
        break;
      case "promise":
        promised = maxBallot(promised, record.ballot);
        break;
      case "accept":
      case "inherit": {
        if (record.kind === "accept") promised = maxBallot(promised, record.ballot);
        if (record.slot < floorSlot) break;
        const previous = votes.get(record.slot);
        if (!previous || compareBallots(record.ballot, previous.ballot) >= 0) {
          votes.set(record.slot, { ballot: record.ballot, value: record.value, inherited: record.kind === "inherit" });
        }
        break;
      }
      case "floor":
        if (record.slot > floorSlot) {
          const keep = [...votes.done().entries()].filter(([slot]) => slot >= record.slot);
          floorSlot = record.slot;
          votes = ChunkedMap.from(keep).edit();
        }
        break;
      default:
        break;
    }
  }
  const base = { acceptorId, config, promised, votes: votes.done(), floorSlot, fencedBy };
  if (!sawInit) {
    if (recovery.bootstrap && records.length === 0) {
      return { state: { ...base, mode: "voting", lease: noLease, rejoin: null }, persist: [{ kind: "init", acceptors: [...config.acceptorIds] }], sendAfterSync: [] };
    }
    const rejoin: RejoinProgress<C> = { quarantineUntilMs: nowMs + config.rejoinQuarantineMs, attempt: 0, fenceSentAtMs: -1, replies: new Map() };
    return {
      state: { acceptorId, config, mode: "rejoining", promised: zeroBallot, votes: ChunkedMap.empty(), floorSlot: 0, lease: noLease, rejoin, fencedBy: null },
      persist: [],
      sendAfterSync: [],
    };
  }
  return { state: { ...base, mode: "voting", lease: assumedLeaseAfterRestart(promised, nowMs, config), rejoin: null }, persist: [], sendAfterSync: [] };
}

const noLease: AcceptorLease = { holderId: "", expiresAtMs: 0 };

function assumedLeaseAfterRestart(promised: Ballot, nowMs: number, config: PaxosConfig): AcceptorLease {
  return promised.round === 0 ? noLease : { holderId: promised.controllerId, expiresAtMs: nowMs + config.leaseDurationMs };
}

/** The records that reproduce this acceptor's durable state, for a compacting rewrite of the log. */
export function acceptorRecords<C extends CommandEnvelope>(state: AcceptorState<C>): DurableRecord<C>[] {
  if (state.mode === "rejoining") return [];
  const acceptors = [...state.config.acceptorIds];
  const records: DurableRecord<C>[] = [state.fencedBy === null ? { kind: "init", acceptors } : { kind: "init", fencedBy: state.fencedBy, acceptors }, { kind: "promise", ballot: state.promised }];
  if (state.floorSlot > 0) records.push({ kind: "floor", slot: state.floorSlot });
  const slots = [...state.votes.keys()].sort((a, b) => a - b);
  for (const slot of slots) {
    const vote = state.votes.get(slot)!;
    records.push({ kind: vote.inherited ? "inherit" : "accept", slot, ballot: vote.ballot, value: vote.value });
  }
  return records;
}

export function leaseRemainingMs<C extends CommandEnvelope>(state: AcceptorState<C>, nowMs: number): number {
  return state.lease.holderId === "" ? 0 : Math.max(0, state.lease.expiresAtMs - nowMs);
}

export function stepAcceptor<C extends CommandEnvelope>(state: AcceptorState<C>, input: AcceptorInput<C>): AcceptorStep<C> {
  switch (input.type) {
    case "tick":
      return state.mode === "rejoining" ? tickRejoin(state, input.nowMs) : unchanged(state);
    case "compact":
      return compact(state, input.belowSlot);
    case "message":
      return onMessage(state, input.message, input.nowMs);
  }
}

function onMessage<C extends CommandEnvelope>(state: AcceptorState<C>, message: PaxosMessage<C>, nowMs: number): AcceptorStep<C> {
  switch (message.type) {
    case "paxos.pre-vote":
      return onPreVote(state, message, nowMs);
    case "paxos.prepare":
      return onPrepare(state, message, nowMs);
    case "paxos.accept":
      return onAccept(state, message, nowMs);
    case "paxos.heartbeat":
      return onHeartbeat(state, message, nowMs);
    case "paxos.rejoin-fence":
      return onRejoinFence(state, message.from, message.attempt);
    case "paxos.rejoin-state":
      return onRejoinState(state, message, nowMs);
    default:
      return unchanged(state);
  }
}

function unchanged<C extends CommandEnvelope>(state: AcceptorState<C>): AcceptorStep<C> {
  return { state, persist: [], sendAfterSync: [] };
}

function reject<C extends CommandEnvelope>(
  state: AcceptorState<C>,
  to: string,
  ballot: Ballot,
  reason: RejectReason,
  nowMs: number,
  slot: number,
): AcceptorStep<C> {
  const message: RejectMessage = {
    type: "paxos.reject",
    from: state.acceptorId,
    to,
    ballot,
    reason,
    promised: state.promised,
    leaseHolderId: state.lease.holderId,
    leaseRemainingMs: leaseRemainingMs(state, nowMs),
    floorSlot: state.floorSlot,
    slot,
  };
  return { state, persist: [], sendAfterSync: [message] };
}

function grantLease(holderId: string, nowMs: number, config: PaxosConfig): AcceptorLease {
  return { holderId, expiresAtMs: nowMs + config.leaseDurationMs };
}

function votesFrom<C extends CommandEnvelope>(state: AcceptorState<C>, fromSlot: number): ReportedVote<C>[] {
  const reported: ReportedVote<C>[] = [];
  for (const [slot, vote] of state.votes) if (slot >= fromSlot) reported.push({ slot, ballot: vote.ballot, value: vote.value });
  return reported.sort((a, b) => a.slot - b.slot);
}

/** Would this acceptor take a prepare from the sender now? Answered from the state as it is; nothing changes. */
function onPreVote<C extends CommandEnvelope>(state: AcceptorState<C>, message: PreVoteMessage, nowMs: number): AcceptorStep<C> {
  const lease = state.lease;
  const leaseElsewhere = lease.holderId !== "" && lease.holderId !== message.ballot.controllerId && nowMs < lease.expiresAtMs;
  const granted = state.mode === "voting" && !leaseElsewhere;
  return {
    state,
    persist: [],
    sendAfterSync: [
      {
        type: "paxos.pre-vote-reply",
        from: state.acceptorId,
        to: message.from,
        ballot: message.ballot,
        granted,
        promised: state.promised,
        leaseHolderId: lease.holderId,
        leaseRemainingMs: leaseRemainingMs(state, nowMs),
      },
    ],
  };
}

function onPrepare<C extends CommandEnvelope>(state: AcceptorState<C>, message: PrepareMessage, nowMs: number): AcceptorStep<C> {
  if (state.mode === "rejoining") return reject(state, message.from, message.ballot, "rejoining", nowMs, -1);
  const order = compareBallots(message.ballot, state.promised);
  if (order < 0) return reject(state, message.from, message.ballot, "stale-ballot", nowMs, -1);
  const lease = state.lease;
  if (lease.holderId !== "" && lease.holderId !== message.ballot.controllerId && nowMs < lease.expiresAtMs) {
    return reject(state, message.from, message.ballot, "lease-held", nowMs, -1);
  }
  // A promise grants no lease: candidates that never win must not block each other (only a leader's
  // accepts and heartbeats do), so duelling candidates settle by ballot and backoff as in plain Paxos.
  const next: AcceptorState<C> = { ...state, promised: order > 0 ? message.ballot : state.promised };
  return {
    state: next,
    persist: order > 0 ? [{ kind: "promise", ballot: message.ballot }] : [],
    sendAfterSync: [
      {
        type: "paxos.promise",
        from: state.acceptorId,
        to: message.from,
        ballot: message.ballot,
        floorSlot: state.floorSlot,
        votes: votesFrom(state, Math.max(message.fromSlot, state.floorSlot)),
      },
    ],
  };
}

function onAccept<C extends CommandEnvelope>(state: AcceptorState<C>, message: AcceptMessage<C>, nowMs: number): AcceptorStep<C> {
  if (state.mode === "rejoining") return reject(state, message.from, message.ballot, "rejoining", nowMs, message.slot);
  if (compareBallots(message.ballot, state.promised) < 0) return reject(state, message.from, message.ballot, "stale-ballot", nowMs, message.slot);
  if (message.slot < state.floorSlot) return reject(state, message.from, message.ballot, "compacted", nowMs, message.slot);
  const lease = grantLease(message.ballot.controllerId, nowMs, state.config);
  const promised = maxBallot(state.promised, message.ballot);
  const reply: PaxosMessage<C> = { type: "paxos.accepted", from: state.acceptorId, to: message.from, ballot: message.ballot, slot: message.slot };
  const existing = state.votes.get(message.slot);
  if (existing && sameBallot(existing.ballot, message.ballot)) {
    // A retransmission: one ballot proposes one value per slot, so the vote stands and is already durable.
    return { state: { ...state, promised, lease }, persist: [], sendAfterSync: [reply] };
  }
  if (!existing && state.votes.size >= maxVotesHeld(state.config)) {
    // Not voting is always safe; this acceptor's learner must catch up and compact first.
    return reject(state, message.from, message.ballot, "vote-log-full", nowMs, message.slot);
  }
  const votes = state.votes.with(message.slot, { ballot: message.ballot, value: message.value, inherited: false });
  return {
    state: { ...state, promised, votes, lease },
    persist: [{ kind: "accept", slot: message.slot, ballot: message.ballot, value: message.value }],
    sendAfterSync: [reply],
  };
}

function onHeartbeat<C extends CommandEnvelope>(state: AcceptorState<C>, message: HeartbeatMessage, nowMs: number): AcceptorStep<C> {
  if (state.mode === "rejoining") return reject(state, message.from, message.ballot, "rejoining", nowMs, -1);
  const order = compareBallots(message.ballot, state.promised);
  if (order < 0) return reject(state, message.from, message.ballot, "stale-ballot", nowMs, -1);
  return {
    state: { ...state, promised: order > 0 ? message.ballot : state.promised, lease: grantLease(message.ballot.controllerId, nowMs, state.config) },
    persist: order > 0 ? [{ kind: "promise", ballot: message.ballot }] : [],
    sendAfterSync: [{ type: "paxos.heartbeat-ack", from: state.acceptorId, to: message.from, ballot: message.ballot, sequence: message.sequence }],
  };
}

/**
 * A peer lost its disk and asks for a fence: promise a ballot above every ballot
 * promised here so far (so no older ballot can gather this vote again) and
 * report every vote. The fence keeps the promised controller's id, so the
 * lease holder may go on by simply preparing a higher round.
 */
function onRejoinFence<C extends CommandEnvelope>(state: AcceptorState<C>, from: string, attempt: number): AcceptorStep<C> {
  if (state.mode === "rejoining" || from === state.acceptorId) return unchanged(state);
  const fence: Ballot = { round: state.promised.round + 1, controllerId: state.promised.controllerId };
  const reply: RejoinStateMessage<C> = {
    type: "paxos.rejoin-state",
    from: state.acceptorId,
    to: from,
    attempt,
    fence,
    floorSlot: state.floorSlot,
    votes: votesFrom(state, state.floorSlot),
  };
  return { state: { ...state, promised: fence }, persist: [{ kind: "promise", ballot: fence }], sendAfterSync: [reply] };
}

function tickRejoin<C extends CommandEnvelope>(state: AcceptorState<C>, nowMs: number): AcceptorStep<C> {
  const rejoin = state.rejoin!;
  if (nowMs < rejoin.quarantineUntilMs) return unchanged(state);
  if (rejoin.fenceSentAtMs >= 0 && nowMs - rejoin.fenceSentAtMs < state.config.rejoinRetryMs) return unchanged(state);
  const attempt = rejoin.attempt + 1;
  const sendAfterSync: PaxosMessage<C>[] = [];
  for (const peer of state.config.acceptorIds) {
    if (peer !== state.acceptorId) sendAfterSync.push({ type: "paxos.rejoin-fence", from: state.acceptorId, to: peer, attempt });
  }
  return { state: { ...state, rejoin: { ...rejoin, attempt, fenceSentAtMs: nowMs, replies: new Map() } }, persist: [], sendAfterSync };
}

function onRejoinState<C extends CommandEnvelope>(state: AcceptorState<C>, message: RejoinStateMessage<C>, nowMs: number): AcceptorStep<C> {
  const rejoin = state.rejoin;
  if (state.mode !== "rejoining" || !rejoin || message.attempt !== rejoin.attempt || rejoin.fenceSentAtMs < 0) return unchanged(state);
  if (!state.config.acceptorIds.includes(message.from) || message.from === state.acceptorId) return unchanged(state);
  const replies = new Map(rejoin.replies);
  replies.set(message.from, { fence: message.fence, floorSlot: message.floorSlot, votes: message.votes });
  // A majority of the whole acceptor set, all of them others: it meets every quorum that could have used this acceptor's lost votes.
  if (replies.size < majorityOf(state.config.acceptorIds.length)) return { state: { ...state, rejoin: { ...rejoin, replies } }, persist: [], sendAfterSync: [] };

  let promised = zeroBallot;
  let floorSlot = 0;
  for (const reply of replies.values()) {
    promised = maxBallot(promised, reply.fence);
    floorSlot = Math.max(floorSlot, reply.floorSlot);
  }
  const votes = new Map<number, HeldVote<C>>();
  for (const reply of replies.values()) {
    for (const vote of reply.votes) {
      if (vote.slot < floorSlot) continue;
      const held = votes.get(vote.slot);
      if (!held || compareBallots(vote.ballot, held.ballot) > 0) votes.set(vote.slot, { ballot: vote.ballot, value: vote.value, inherited: true });
    }
  }
  const next: AcceptorState<C> = {
    ...state,
    mode: "voting",
    promised,
    votes: ChunkedMap.from([...votes.entries()].sort((a, b) => a[0] - b[0])),
    floorSlot,
    lease: assumedLeaseAfterRestart(promised, nowMs, state.config),
    rejoin: null,
    fencedBy: [...replies.keys()].sort(),
  };
  return { state: next, persist: acceptorRecords(next), sendAfterSync: [] };
}

function compact<C extends CommandEnvelope>(state: AcceptorState<C>, belowSlot: number): AcceptorStep<C> {
  if (belowSlot <= state.floorSlot || state.mode === "rejoining") return unchanged(state);
  const votes = state.votes.edit();
  // Votes are held only at or above the floor: walk the slots that go, unless there are more of them than votes.
  if (belowSlot - state.floorSlot <= state.votes.size) for (let slot = state.floorSlot; slot < belowSlot; slot++) votes.delete(slot);
  else for (const slot of state.votes.keys()) if (slot < belowSlot) votes.delete(slot);
  return { state: { ...state, floorSlot: belowSlot, votes: votes.done() }, persist: [], sendAfterSync: [] };
}

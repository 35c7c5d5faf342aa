/**
 * The proposer: failure detection, election and, once elected, the leader of
 * Multi-Paxos. Pure, like the acceptor (see stepResult.ts for the contract).
 *
 * - Election: a follower that has heard no leader (accept or heartbeat with a
 *   ballot at least the highest leader ballot it knows) for
 *   `electionTimeoutMs` plus a random jitter first runs a pre-vote: it asks
 *   every acceptor whether it would take a prepare now, which changes no
 *   acceptor's state. Only with a majority of grants does it prepare a ballot
 *   above every round it has seen or used (the round is persisted before the
 *   prepare leaves). An acceptor refuses the pre-vote while a lease it granted
 *   to another controller runs, so a controller that was cut off from a
 *   leader the majority still follows never raises anyone's promise, and its
 *   return deposes nobody. A brand-new cluster's first election (no ballot
 *   seen anywhere yet) skips it: there is no leader to protect. A refusal or
 *   an expired prepare sends it back to follower with a fresh random delay,
 *   so duelling candidates spread out. Within a round (`prepareTimeoutMs`) the
 *   pre-vote and the prepare are sent again every `heartbeatIntervalMs` to
 *   the acceptors that have not answered yet: under loss a round would
 *   otherwise need every one of its messages to get through, and a bare
 *   majority of five at 19% loss took thirteen rounds (3.3 s) to elect.
 *   Both are idempotent at an acceptor: a pre-vote changes nothing, and a
 *   prepare at the ballot already promised persists nothing and reports the
 *   votes as they are now (a later promise replaces an earlier one; either
 *   is a valid promise).
 * - Phase 1 covers every slot from the node's first unknown slot on. On a
 *   majority of promises the leader re-proposes, per open slot, the value of
 *   the highest-ballot vote reported, and fills slots nobody voted for with
 *   no-ops. Slots below an acceptor's compaction floor are chosen already and
 *   are left to catch-up.
 * - Phase 2: client commands are batched (`maxCommandsPerBatch` per slot) and
 *   pipelined (slots proposed only inside [commitIndex, commitIndex +
 *   `maxInFlightSlots`)). A slot is chosen when a majority voted for it at
 *   this ballot; the commit index (every slot below it chosen) rides on every
 *   accept and heartbeat, and chosen values are broadcast to non-acceptor
 *   learners.
 * - Lease: each heartbeat is stamped with its local send
 *   time; once a majority acknowledged it, the leader holds the lease until
 *   send time + `leaseDurationMs` - `clockDriftMarginMs`. Acceptors start their
 *   grant when they receive it, so theirs outlasts the leader's belief.
 * - Check quorum (as Raft's CheckQuorum): a leader that has not heard from a
 *   majority of acceptors (heartbeat acks, accepted replies at its ballot)
 *   within `electionTimeoutMs` steps down. A leader whose messages still
 *   arrive but whose replies do not (a one-way partition) would otherwise keep
 *   the followers from campaigning, and renew their lease grants, forever.
 *   Its lease has lapsed by then (see `leaderHasQuorum`), so stepping down
 *   never cuts a lease short. It also waits for 3 heartbeat rounds of its
 *   own to go unanswered (`unansweredHeartbeatRounds`), so a leader that was
 *   itself held does not take its own silence for its followers'.
 * - A proposer that could not reach a majority (a candidate whose prepare
 *   expired, a leader that lost its quorum) waits `yieldDelayMs` before it
 *   campaigns: longer than any follower's timer, so a majority that can talk
 *   elects first instead of being postponed by its prepares again and again.
 */
import { compareBallots, sameBallot, zeroBallot, type Ballot } from "./ballot.ts";
import { majorityOf, type PaxosConfig } from "./config.ts";
import { drawJitterMs } from "./jitter.ts";
import { slotsSinceSnapshotPoint } from "./snapshotSchedule.ts";
import {
  learnerBroadcast,
  type PaxosMessage,
  type PreVoteReplyMessage,
  type ProposeRefusal,
  type PromiseMessage,
  type RejectMessage,
  type ReportedVote,
} from "./messages.ts";
import type { DurableRecord } from "./records.ts";
import type { Effects } from "./stepResult.ts";
import { noopValue, sameSlotValue, type ChosenEntry, type CommandEnvelope, type SlotValue } from "./values.ts";

/** Heartbeats whose acknowledgements are still counted toward the lease. */
export const maxTrackedHeartbeats = 8;
/** Check quorum steps down only after this many heartbeat rounds went unanswered by a majority (see `unansweredHeartbeatRounds`). */
export const minUnansweredHeartbeatRoundsToStepDown = 3;

export type ProposerRole = "follower" | "candidate" | "leader";

export interface PendingCommand<C extends CommandEnvelope> {
  readonly command: C;
  /** The node that proposed it, told if the command is dropped without a slot. */
  readonly origin: string;
}

export interface PhaseOne<C extends CommandEnvelope> {
  readonly fromSlot: number;
  readonly sentAtMs: number;
  /** The last time its prepare went to the acceptors that had not promised yet. */
  readonly resentAtMs: number;
  readonly promises: ReadonlyMap<string, { readonly floorSlot: number; readonly votes: readonly ReportedVote<C>[] }>;
}

/** A follower's pre-vote in progress (see the file comment). */
export interface PreVoteRound {
  /** The ballot it would prepare; correlates the replies. */
  readonly ballot: Ballot;
  readonly sentAtMs: number;
  /** The last time it went to the acceptors that had not granted it yet. */
  readonly resentAtMs: number;
  /** Acceptors that granted it. */
  readonly grants: readonly string[];
}

export interface Proposal<C extends CommandEnvelope> {
  readonly value: SlotValue<C>;
  /** Acceptors that voted for it at this leader's ballot. */
  readonly acks: readonly string[];
  /** -1 until first sent. */
  readonly firstSentAtMs: number;
  readonly lastSentAtMs: number;
  readonly chosen: boolean;
  /** Acceptors it has not been sent to yet (a first send to a bare majority): they get it at the hedge or the resend. */
  readonly unsent: readonly string[];
}

export interface HeartbeatRound {
  readonly sequence: number;
  readonly sentAtMs: number;
  readonly acks: readonly string[];
}

export interface LeaderState<C extends CommandEnvelope> {
  /** First slot this leader proposes; every slot below it is chosen. */
  readonly startSlot: number;
  /** Every slot below it is chosen (and known to this leader). */
  readonly commitIndex: number;
  /** Slots [commitIndex, nextSlot) have a proposal. */
  readonly nextSlot: number;
  /** Proposals at or above it have not been sent yet (re-proposals waiting for the window). */
  readonly sendCursor: number;
  readonly proposals: ReadonlyMap<number, Proposal<C>>;
  readonly heartbeatSequence: number;
  readonly lastHeartbeatAtMs: number;
  readonly heartbeats: readonly HeartbeatRound[];
  readonly leaseUntilMs: number;
  readonly lastCommitBroadcastAtMs: number;
  /**
   * Per acceptor (in `config.acceptorIds` order), when this leader last heard it answer at its ballot
   * (promise, accepted, heartbeat ack); null if never.
   */
  readonly lastHeardAtMs: readonly (number | null)[];
}

export interface ProposerState<C extends CommandEnvelope> {
  readonly proposerId: string;
  readonly config: PaxosConfig;
  readonly role: ProposerRole;
  /** The highest round this proposer has made durable. */
  readonly roundUsed: number;
  readonly maxRoundSeen: number;
  /** Own ballot while candidate or leader; the zero ballot as follower. */
  readonly ballot: Ballot;
  /** Who is believed to lead ("" unknown), and with which ballot. */
  readonly leaderId: string;
  readonly leaderBallot: Ballot;
  readonly electionDueAtMs: number;
  readonly randomSeed: number;
  /** Only while a follower: its pre-vote, before it may prepare. */
  readonly preVote: PreVoteRound | null;
  readonly phaseOne: PhaseOne<C> | null;
  readonly leader: LeaderState<C> | null;
  readonly pending: readonly PendingCommand<C>[];
}

export type ProposerInput<C extends CommandEnvelope> =
  | { readonly type: "tick"; readonly nowMs: number }
  /** Replies addressed to this proposer, proposals, and (observed) prepares, accepts and heartbeats of other controllers. */
  | { readonly type: "message"; readonly message: PaxosMessage<C>; readonly nowMs: number }
  /** A command from this node itself (e.g. the leader announcing itself in the view). */
  | { readonly type: "submit"; readonly command: C; readonly nowMs: number }
  /** Chosen values the node's learner learned from elsewhere (catch-up): a leader checks them against its proposals. */
  | { readonly type: "learned"; readonly entries: readonly ChosenEntry<C>[]; readonly nowMs: number };

/** What the proposer needs to know about its own node. */
export interface ProposerSurroundings {
  /** Every slot below it is known chosen by this node's learner. */
  readonly chosenBelow: number;
  /**
   * The round of the node's acceptor's promise. After a disk loss the proposer's own round record is
   * gone; the rejoined acceptor's promise (a fence above every promise of a majority) is then above
   * every round this proposer used before, so new ballots start above it.
   */
  readonly acceptorPromisedRound: number;
  /** False while the node's acceptor is rejoining after a disk loss: no elections until then. */
  readonly mayCampaign: boolean;
}

export interface ProposerStep<C extends CommandEnvelope> extends Effects<C> {
  readonly state: ProposerState<C>;
  /** Slots this leader saw chosen by a majority at its ballot: hand them to the node's learner. */
  readonly chosen: readonly ChosenEntry<C>[];
  /** Locally submitted commands that were dropped without a slot. */
  readonly refused: readonly { readonly commandId: string; readonly refusal: ProposeRefusal }[];
  /** Set on the step that made this proposer leader. */
  readonly becameLeader: boolean;
  /** Set on the step that ended its leadership. */
  readonly lostLeadership: boolean;
}

export interface ProposerCreation<C extends CommandEnvelope> {
  readonly proposerId: string;
  readonly config: PaxosConfig;
  readonly records: readonly DurableRecord<C>[];
  readonly nowMs: number;
  /** Drawn from the injected Random port. */
  readonly randomSeed: number;
}

export function createProposer<C extends CommandEnvelope>(creation: ProposerCreation<C>): ProposerState<C> {
  let roundUsed = 0;
  let maxRoundSeen = 0;
  for (const record of creation.records) {
    if (record.kind === "round") roundUsed = Math.max(roundUsed, record.round);
    else if (record.kind === "promise" || record.kind === "accept") maxRoundSeen = Math.max(maxRoundSeen, record.ballot.round);
  }
  const draw = drawJitterMs(creation.randomSeed >>> 0, creation.config.electionJitterMs);
  return {
    proposerId: creation.proposerId,
    config: creation.config,
    role: "follower",
    roundUsed,
    maxRoundSeen,
    ballot: zeroBallot,
    leaderId: "",
    leaderBallot: zeroBallot,
    electionDueAtMs: creation.nowMs + creation.config.electionTimeoutMs + draw.jitterMs,
    randomSeed: draw.seed,
    preVote: null,
    phaseOne: null,
    leader: null,
    pending: [],
  };
}

export function isLeader<C extends CommandEnvelope>(state: ProposerState<C>): boolean {
  return state.role === "leader";
}

/** True while this node may act as the one leader (the manager runs only then). */
export function holdsLease<C extends CommandEnvelope>(state: ProposerState<C>, nowMs: number): boolean {
  return state.role === "leader" && state.leader !== null && nowMs < state.leader.leaseUntilMs;
}

/** A mutable scratchpad for one step; the state itself is never mutated. */
interface Draft<C extends CommandEnvelope> {
  state: ProposerState<C>;
  persist: DurableRecord<C>[];
  send: PaxosMessage<C>[];
  chosen: ChosenEntry<C>[];
  refused: { commandId: string; refusal: ProposeRefusal }[];
  becameLeader: boolean;
  lostLeadership: boolean;
}

function finish<C extends CommandEnvelope>(draft: Draft<C>): ProposerStep<C> {
  return {
    state: draft.state,
    persist: draft.persist,
    sendAfterSync: draft.send,
    chosen: draft.chosen,
    refused: draft.refused,
    becameLeader: draft.becameLeader,
    lostLeadership: draft.lostLeadership,
  };
}

export function stepProposer<C extends CommandEnvelope>(
  state: ProposerState<C>,
  input: ProposerInput<C>,
  surroundings: ProposerSurroundings,
): ProposerStep<C> {
  const draft: Draft<C> = { state, persist: [], send: [], chosen: [], refused: [], becameLeader: false, lostLeadership: false };
  switch (input.type) {
    case "tick":
      onTick(draft, input.nowMs, surroundings);
      break;
    case "message":
      onMessage(draft, input.message, input.nowMs, surroundings);
      break;
    case "submit":
      enqueue(draft, input.command, draft.state.proposerId, input.nowMs);
      break;
    case "learned":
      onLearned(draft, input.entries, input.nowMs);
      break;
  }
  return finish(draft);
}

/**
 * How long a proposer that could not reach a majority waits before it campaigns again. A follower that sees a
 * newer prepare postpones its own election by at most `electionTimeoutMs + electionJitterMs`; a failed
 * candidate prepares again `prepareTimeoutMs` + this later at the earliest, so a follower's timer always fires
 * between two prepares of a node that cannot hear (a one-way partition) and the nodes that can talk elect.
 */
export function yieldDelayBaseMs(config: PaxosConfig): number {
  return config.electionTimeoutMs + config.electionJitterMs;
}

function electionDelayMs<C extends CommandEnvelope>(draft: Draft<C>, baseMs: number): number {
  const draw = drawJitterMs(draft.state.randomSeed, draft.state.config.electionJitterMs);
  draft.state = { ...draft.state, randomSeed: draw.seed };
  return baseMs + draw.jitterMs;
}

function onTick<C extends CommandEnvelope>(draft: Draft<C>, nowMs: number, surroundings: ProposerSurroundings): void {
  const state = draft.state;
  switch (state.role) {
    case "follower":
      if (state.preVote && nowMs - state.preVote.sentAtMs >= state.config.prepareTimeoutMs) {
        // No majority answered: nobody's state changed, so it simply waits for its next turn.
        draft.state = { ...state, preVote: null, electionDueAtMs: nowMs + electionDelayMs(draft, state.config.electionTimeoutMs) };
        return;
      }
      if (state.preVote && nowMs - state.preVote.resentAtMs >= state.config.heartbeatIntervalMs) {
        resendPreVote(draft, state.preVote, nowMs);
        return;
      }
      if (!state.preVote && nowMs >= state.electionDueAtMs && surroundings.mayCampaign) {
        if (neverSawABallot(state, surroundings)) startPhaseOne(draft, nowMs, surroundings);
        else startPreVote(draft, nowMs, surroundings);
      }
      return;
    case "candidate":
      if (state.phaseOne && nowMs - state.phaseOne.sentAtMs >= state.config.prepareTimeoutMs) {
        // Abandoned for good: its promises are never counted later (the empty-disk rejoin relies on it).
        becomeFollower(draft, "", nowMs, electionDelayMs(draft, yieldDelayBaseMs(state.config)));
      } else if (state.phaseOne && nowMs - state.phaseOne.resentAtMs >= state.config.heartbeatIntervalMs) {
        resendPrepare(draft, state.phaseOne, nowMs);
      }
      return;
    case "leader":
      leaderTick(draft, nowMs, surroundings);
      return;
  }
}

/** A brand-new cluster: no round was ever used, promised or seen here, so no leader exists to disturb. */
function neverSawABallot<C extends CommandEnvelope>(state: ProposerState<C>, surroundings: ProposerSurroundings): boolean {
  return state.roundUsed === 0 && state.maxRoundSeen === 0 && state.leaderBallot.round === 0 && surroundings.acceptorPromisedRound === 0;
}

function nextRound<C extends CommandEnvelope>(state: ProposerState<C>, surroundings: ProposerSurroundings): number {
  return Math.max(state.roundUsed, state.maxRoundSeen, state.leaderBallot.round, surroundings.acceptorPromisedRound) + 1;
}

function startPreVote<C extends CommandEnvelope>(draft: Draft<C>, nowMs: number, surroundings: ProposerSurroundings): void {
  const state = draft.state;
  const ballot: Ballot = { round: nextRound(state, surroundings), controllerId: state.proposerId };
  draft.state = { ...state, preVote: { ballot, sentAtMs: nowMs, resentAtMs: nowMs, grants: [] } };
  for (const acceptorId of state.config.acceptorIds) draft.send.push({ type: "paxos.pre-vote", from: state.proposerId, to: acceptorId, ballot });
}

/** The same pre-vote again, to the acceptors that have not granted it (their answer, or our question, may be lost). */
function resendPreVote<C extends CommandEnvelope>(draft: Draft<C>, preVote: PreVoteRound, nowMs: number): void {
  const state = draft.state;
  draft.state = { ...state, preVote: { ...preVote, resentAtMs: nowMs } };
  for (const acceptorId of state.config.acceptorIds) {
    if (!preVote.grants.includes(acceptorId)) draft.send.push({ type: "paxos.pre-vote", from: state.proposerId, to: acceptorId, ballot: preVote.ballot });
  }
}

/** The same prepare again (same ballot, same first slot), to the acceptors that have not promised; nothing new to persist. */
function resendPrepare<C extends CommandEnvelope>(draft: Draft<C>, phaseOne: PhaseOne<C>, nowMs: number): void {
  const state = draft.state;
  draft.state = { ...state, phaseOne: { ...phaseOne, resentAtMs: nowMs } };
  for (const acceptorId of state.config.acceptorIds) {
    if (!phaseOne.promises.has(acceptorId)) draft.send.push({ type: "paxos.prepare", from: state.proposerId, to: acceptorId, ballot: state.ballot, fromSlot: phaseOne.fromSlot });
  }
}

function onPreVoteReply<C extends CommandEnvelope>(draft: Draft<C>, message: PreVoteReplyMessage, nowMs: number, surroundings: ProposerSurroundings): void {
  const state = draft.state;
  const preVote = state.preVote;
  if (state.role !== "follower" || !preVote || !sameBallot(message.ballot, preVote.ballot) || !state.config.acceptorIds.includes(message.from)) return;
  draft.state = { ...state, maxRoundSeen: Math.max(state.maxRoundSeen, message.promised.round) };
  if (!message.granted) {
    if (message.leaseHolderId !== "" && message.leaseRemainingMs > 0) {
      // A live leader holds this acceptor: try again once its grant could have run out, as a refused candidate does.
      draft.state = { ...draft.state, preVote: null, electionDueAtMs: nowMs + electionDelayMs(draft, message.leaseRemainingMs) };
    }
    return;
  }
  if (preVote.grants.includes(message.from)) return;
  const grants = [...preVote.grants, message.from];
  if (grants.length < majorityOf(state.config.acceptorIds.length)) {
    draft.state = { ...draft.state, preVote: { ...preVote, grants } };
    return;
  }
  if (!surroundings.mayCampaign) {
    draft.state = { ...draft.state, preVote: null };
    return;
  }
  startPhaseOne(draft, nowMs, surroundings);
}

function startPhaseOne<C extends CommandEnvelope>(draft: Draft<C>, nowMs: number, surroundings: ProposerSurroundings): void {
  const state = draft.state;
  const round = nextRound(state, surroundings);
  const ballot: Ballot = { round, controllerId: state.proposerId };
  const wasLeader = state.role === "leader";
  draft.lostLeadership ||= wasLeader;
  draft.persist.push({ kind: "round", round });
  draft.state = {
    ...state,
    role: "candidate",
    roundUsed: round,
    maxRoundSeen: Math.max(state.maxRoundSeen, round),
    ballot,
    preVote: null,
    phaseOne: { fromSlot: surroundings.chosenBelow, sentAtMs: nowMs, resentAtMs: nowMs, promises: new Map() },
    leader: null,
  };
  for (const acceptorId of state.config.acceptorIds) {
    draft.send.push({ type: "paxos.prepare", from: state.proposerId, to: acceptorId, ballot, fromSlot: surroundings.chosenBelow });
  }
}

function becomeFollower<C extends CommandEnvelope>(draft: Draft<C>, leaderId: string, nowMs: number, delayMs: number): void {
  const state = draft.state;
  if (state.role === "leader") draft.lostLeadership = true;
  for (const pending of state.pending) refuse(draft, pending, "not-leader", leaderId);
  draft.state = { ...state, role: "follower", ballot: zeroBallot, preVote: null, phaseOne: null, leader: null, pending: [], leaderId, electionDueAtMs: nowMs + delayMs };
}

function refuse<C extends CommandEnvelope>(draft: Draft<C>, pending: PendingCommand<C>, refusal: ProposeRefusal, leaderHint: string): void {
  if (pending.origin === draft.state.proposerId) {
    draft.refused.push({ commandId: pending.command.id, refusal });
  } else {
    draft.send.push({ type: "paxos.propose-reply", from: draft.state.proposerId, to: pending.origin, commandId: pending.command.id, refusal, leaderHint });
  }
}

function onMessage<C extends CommandEnvelope>(draft: Draft<C>, message: PaxosMessage<C>, nowMs: number, surroundings: ProposerSurroundings): void {
  switch (message.type) {
    case "paxos.pre-vote-reply":
      onPreVoteReply(draft, message, nowMs, surroundings);
      return;
    case "paxos.promise":
      onPromise(draft, message, nowMs);
      return;
    case "paxos.accepted":
      if (message.to === draft.state.proposerId) onAccepted(draft, message.from, message.ballot, message.slot, nowMs);
      return;
    case "paxos.heartbeat-ack":
      onHeartbeatAck(draft, message.from, message.ballot, message.sequence, nowMs);
      return;
    case "paxos.reject":
      onReject(draft, message, nowMs, surroundings);
      return;
    case "paxos.propose":
      if (message.relay === true) relayToLeader(draft, message.command, message.from);
      enqueue(draft, message.command, message.from, nowMs);
      return;
    case "paxos.prepare":
      if (message.from !== draft.state.proposerId) observeCandidate(draft, message.ballot, nowMs);
      return;
    case "paxos.accept":
    case "paxos.heartbeat":
      if (message.from !== draft.state.proposerId) observeLeader(draft, message.from, message.ballot, nowMs);
      return;
    default:
      return;
  }
}

/**
 * Another controller is campaigning. A follower gives it a full election timeout before campaigning
 * itself (as Raft resets its timer on granting a vote), so candidates rarely collide.
 */
function observeCandidate<C extends CommandEnvelope>(draft: Draft<C>, ballot: Ballot, nowMs: number): void {
  const state = draft.state;
  const newer = ballot.round > state.maxRoundSeen;
  draft.state = { ...state, maxRoundSeen: Math.max(state.maxRoundSeen, ballot.round) };
  if (state.role !== "follower" || !newer || compareBallots(ballot, state.leaderBallot) <= 0) return;
  const dueAtMs = nowMs + electionDelayMs(draft, state.config.electionTimeoutMs);
  // Its own pre-vote, if any, is dropped: completing it now would only duel with that candidate.
  draft.state = { ...draft.state, preVote: null, electionDueAtMs: Math.max(draft.state.electionDueAtMs, dueAtMs) };
}

/** Another controller acts as leader with `ballot`: follow it if it is the newest leader known. */
function observeLeader<C extends CommandEnvelope>(draft: Draft<C>, from: string, ballot: Ballot, nowMs: number): void {
  const state = draft.state;
  if (ballot.controllerId !== from) return;
  draft.state = { ...state, maxRoundSeen: Math.max(state.maxRoundSeen, ballot.round) };
  if (compareBallots(ballot, state.leaderBallot) < 0) return;
  if (state.role !== "follower" && compareBallots(ballot, state.ballot) < 0) return;
  const delayMs = electionDelayMs(draft, state.config.electionTimeoutMs);
  if (draft.state.role !== "follower") becomeFollower(draft, from, nowMs, delayMs);
  draft.state = { ...draft.state, leaderId: from, leaderBallot: ballot, preVote: null, electionDueAtMs: nowMs + delayMs };
}

function onPromise<C extends CommandEnvelope>(draft: Draft<C>, message: PromiseMessage<C>, nowMs: number): void {
  const state = draft.state;
  const phaseOne = state.phaseOne;
  if (state.role !== "candidate" || !phaseOne || !sameBallot(message.ballot, state.ballot)) return;
  if (!state.config.acceptorIds.includes(message.from)) return;
  const promises = new Map(phaseOne.promises);
  promises.set(message.from, { floorSlot: message.floorSlot, votes: message.votes });
  draft.state = { ...state, phaseOne: { ...phaseOne, promises } };
  if (promises.size >= majorityOf(state.config.acceptorIds.length)) becomeLeader(draft, nowMs);
}

function becomeLeader<C extends CommandEnvelope>(draft: Draft<C>, nowMs: number): void {
  const state = draft.state;
  const phaseOne = state.phaseOne!;
  let floorSlot = 0;
  for (const promise of phaseOne.promises.values()) floorSlot = Math.max(floorSlot, promise.floorSlot);
  const startSlot = Math.max(phaseOne.fromSlot, floorSlot);
  const highest = new Map<number, { ballot: Ballot; value: SlotValue<C> }>();
  let lastVotedSlot = startSlot - 1;
  for (const promise of phaseOne.promises.values()) {
    for (const vote of promise.votes) {
      if (vote.slot < startSlot) continue;
      const held = highest.get(vote.slot);
      if (!held || compareBallots(vote.ballot, held.ballot) > 0) highest.set(vote.slot, { ballot: vote.ballot, value: vote.value });
      lastVotedSlot = Math.max(lastVotedSlot, vote.slot);
    }
  }
  const proposals = new Map<number, Proposal<C>>();
  for (let slot = startSlot; slot <= lastVotedSlot; slot++) {
    proposals.set(slot, { value: highest.get(slot)?.value ?? noopValue, acks: [], firstSentAtMs: -1, lastSentAtMs: -1, chosen: false, unsent: [] });
  }
  draft.becameLeader = true;
  draft.state = {
    ...state,
    role: "leader",
    leaderId: state.proposerId,
    leaderBallot: state.ballot,
    phaseOne: null,
    leader: {
      startSlot,
      commitIndex: startSlot,
      nextSlot: lastVotedSlot + 1,
      sendCursor: startSlot,
      proposals,
      heartbeatSequence: 0,
      lastHeartbeatAtMs: nowMs,
      heartbeats: [],
      // Promises grant no lease; the first heartbeat a majority acknowledges does.
      leaseUntilMs: 0,
      lastCommitBroadcastAtMs: nowMs - state.config.commitBeaconIntervalMs,
      lastHeardAtMs: state.config.acceptorIds.map((acceptorId) => (phaseOne.promises.has(acceptorId) ? nowMs : null)),
    },
  };
  sendHeartbeat(draft, nowMs);
  fillWindow(draft, nowMs);
}

function sendHeartbeat<C extends CommandEnvelope>(draft: Draft<C>, nowMs: number): void {
  const state = draft.state;
  const leader = state.leader!;
  const sequence = leader.heartbeatSequence + 1;
  const heartbeats = [...leader.heartbeats, { sequence, sentAtMs: nowMs, acks: [] }].slice(-maxTrackedHeartbeats);
  draft.state = { ...state, leader: { ...leader, heartbeatSequence: sequence, lastHeartbeatAtMs: nowMs, heartbeats } };
  for (const acceptorId of state.config.acceptorIds) {
    draft.send.push({ type: "paxos.heartbeat", from: state.proposerId, to: acceptorId, ballot: state.ballot, commitIndex: leader.commitIndex, sequence });
  }
}

/**
 * Heartbeat rounds sent since the leader last heard from a majority (none of them answered by one), among
 * the last `maxTrackedHeartbeats`. Silence alone is not enough to step down: a leader whose own process was
 * held (a stall, a pause, a starved CPU) sent nothing meanwhile, and its followers had nothing to answer.
 * Counted in rounds, its silence starts when it speaks again; a leader that keeps sending and is not
 * answered (a one-way partition) has sent 7 rounds by the time `electionTimeoutMs` has passed anyway.
 */
export function unansweredHeartbeatRounds<C extends CommandEnvelope>(leader: LeaderState<C>, config: PaxosConfig): number {
  const heard = leader.lastHeardAtMs.map((atMs) => atMs ?? Number.NEGATIVE_INFINITY).sort((a, b) => b - a);
  const majorityHeardAtMs = heard[majorityOf(config.acceptorIds.length) - 1] ?? Number.NEGATIVE_INFINITY;
  let rounds = 0;
  for (const round of leader.heartbeats) if (round.sentAtMs > majorityHeardAtMs) rounds++;
  return rounds;
}

/**
 * True while a majority of acceptors answered this leader within the last `electionTimeoutMs`. When it turns
 * false the lease has already lapsed: the lease only grows from a heartbeat round a majority acknowledged,
 * every acknowledgement of it was heard after it was sent, so without a majority heard since
 * `nowMs - electionTimeoutMs` that round was sent before then, and its lease ended at
 * `sentAtMs + leaseDurationMs - clockDriftMarginMs < nowMs` (`electionTimeoutMs >= leaseDurationMs`).
 */
export function leaderHasQuorum<C extends CommandEnvelope>(leader: LeaderState<C>, config: PaxosConfig, nowMs: number): boolean {
  let heard = 0;
  for (const atMs of leader.lastHeardAtMs) if (atMs !== null && nowMs - atMs < config.electionTimeoutMs) heard++;
  return heard >= majorityOf(config.acceptorIds.length);
}

function heardFrom<C extends CommandEnvelope>(draft: Draft<C>, acceptorId: string, nowMs: number): void {
  const state = draft.state;
  const leader = state.leader!;
  const index = state.config.acceptorIds.indexOf(acceptorId);
  if (index < 0 || leader.lastHeardAtMs[index] === nowMs) return;
  const lastHeardAtMs = leader.lastHeardAtMs.slice();
  lastHeardAtMs[index] = nowMs;
  draft.state = { ...state, leader: { ...leader, lastHeardAtMs } };
}

function leaderTick<C extends CommandEnvelope>(draft: Draft<C>, nowMs: number, surroundings: ProposerSurroundings): void {
  const leader = draft.state.leader!;
  const config = draft.state.config;
  if (!leaderHasQuorum(leader, config, nowMs) && unansweredHeartbeatRounds(leader, config) >= minUnansweredHeartbeatRoundsToStepDown) {
    // Check quorum: its heartbeats may still reach followers that therefore never campaign; stop sending them.
    becomeFollower(draft, "", nowMs, electionDelayMs(draft, yieldDelayBaseMs(config)));
    return;
  }
  // The learner got ahead of the commit index by catch-up (a snapshot, or values another leader chose), past
  // a slot this leader cannot confirm: after a grace period it prepares again from the learner's frontier.
  const stalled = leader.proposals.get(leader.commitIndex);
  if (surroundings.chosenBelow > leader.commitIndex && (!stalled || nowMs - stalled.firstSentAtMs >= config.prepareTimeoutMs)) {
    const pending = draft.state.pending;
    startPhaseOne(draft, nowMs, surroundings);
    draft.state = { ...draft.state, pending };
    return;
  }
  if (nowMs - leader.lastHeartbeatAtMs >= config.heartbeatIntervalMs) sendHeartbeat(draft, nowMs);
  if (nowMs - leader.lastCommitBroadcastAtMs >= config.commitBeaconIntervalMs) broadcastCommit(draft, [], nowMs);
  hedgeAccepts(draft, nowMs);
  resendStaleAccepts(draft, nowMs);
  fillWindow(draft, nowMs);
}

function acceptMessage<C extends CommandEnvelope>(state: ProposerState<C>, to: string, slot: number, value: SlotValue<C>): PaxosMessage<C> {
  return { type: "paxos.accept", from: state.proposerId, to, ballot: state.ballot, slot, value, commitIndex: state.leader!.commitIndex };
}

function resendStaleAccepts<C extends CommandEnvelope>(draft: Draft<C>, nowMs: number): void {
  const state = draft.state;
  const leader = state.leader!;
  let proposals: Map<number, Proposal<C>> | null = null;
  for (let slot = leader.commitIndex; slot < leader.sendCursor; slot++) {
    const proposal = leader.proposals.get(slot);
    if (!proposal || proposal.chosen || nowMs - proposal.lastSentAtMs < state.config.acceptRetryMs) continue;
    for (const acceptorId of state.config.acceptorIds) {
      if (!proposal.acks.includes(acceptorId)) draft.send.push(acceptMessage(state, acceptorId, slot, proposal.value));
    }
    proposals ??= new Map(leader.proposals);
    proposals.set(slot, { ...proposal, lastSentAtMs: nowMs, unsent: [] });
  }
  if (proposals) draft.state = { ...state, leader: { ...leader, proposals } };
}

/**
 * A slot sent to a bare majority that is still open `acceptHedgeMs` after goes to the other acceptors
 * too: one slow disk write or busy process in that majority then costs the commit a hedge, not the
 * resend. (With three acceptors, a vote's durable write took over 1 ms for 1.5-3% of writes here.)
 */
function hedgeAccepts<C extends CommandEnvelope>(draft: Draft<C>, nowMs: number): void {
  const state = draft.state;
  const leader = state.leader!;
  const hedgeMs = state.config.acceptHedgeMs;
  if (hedgeMs <= 0) return;
  let proposals: Map<number, Proposal<C>> | null = null;
  for (let slot = leader.commitIndex; slot < leader.sendCursor; slot++) {
    const proposal = leader.proposals.get(slot);
    if (!proposal) continue;
    const dueAtMs = hedgeDueAtMs(proposal, hedgeMs);
    if (dueAtMs === null || nowMs < dueAtMs) continue;
    for (const acceptorId of proposal.unsent) draft.send.push(acceptMessage(state, acceptorId, slot, proposal.value));
    proposals ??= new Map(leader.proposals);
    proposals.set(slot, { ...proposal, unsent: [] });
  }
  if (proposals) draft.state = { ...state, leader: { ...leader, proposals } };
}

/** When this leader next hedges a slot (see hedgeAccepts), or null: the caller ticks it then, not only at its regular tick. */
export function nextAcceptHedgeAtMs<C extends CommandEnvelope>(state: ProposerState<C>): number | null {
  const leader = state.leader;
  if (state.role !== "leader" || !leader || state.config.acceptHedgeMs <= 0) return null;
  let earliest: number | null = null;
  for (let slot = leader.commitIndex; slot < leader.sendCursor; slot++) {
    const proposal = leader.proposals.get(slot);
    const dueAtMs = proposal ? hedgeDueAtMs(proposal, state.config.acceptHedgeMs) : null;
    if (dueAtMs !== null && (earliest === null || dueAtMs < earliest)) earliest = dueAtMs;
  }
  return earliest;
}

/**
 * When an open slot goes to the acceptors its first send skipped, or null (chosen, or none skipped).
 * hedgeAccepts and nextAcceptHedgeAtMs both take the time from here: a tick at exactly that time must
 * hedge, which a difference computed another way could round below.
 */
function hedgeDueAtMs<C extends CommandEnvelope>(proposal: Proposal<C>, hedgeMs: number): number | null {
  return proposal.chosen || proposal.unsent.length === 0 ? null : proposal.firstSentAtMs + hedgeMs;
}

/** Sends waiting re-proposals, then new batches of pending commands, while the pipeline window has room. */
function fillWindow<C extends CommandEnvelope>(draft: Draft<C>, nowMs: number): void {
  const state = draft.state;
  const leader = state.leader;
  if (!leader) return;
  const windowEnd = leader.commitIndex + state.config.maxInFlightSlots;
  let { sendCursor, nextSlot } = leader;
  let pending = state.pending;
  let proposals: Map<number, Proposal<C>> | null = null;
  let recipients: readonly string[] | null = null;
  let unsent: readonly string[] | null = null;
  while (sendCursor < windowEnd) {
    if (sendCursor === nextSlot) {
      if (pending.length === 0) break;
      const partial = pending.length < state.config.maxCommandsPerBatch;
      if (partial && sendCursor - leader.commitIndex >= state.config.maxInFlightSlotsForPartialBatches) break;
      const batch = pending.slice(0, state.config.maxCommandsPerBatch);
      pending = pending.slice(batch.length);
      proposals ??= new Map(leader.proposals);
      proposals.set(nextSlot, { value: { kind: "commands", commands: batch.map((item) => item.command) }, acks: [], firstSentAtMs: -1, lastSentAtMs: -1, chosen: false, unsent: [] });
      nextSlot++;
    }
    proposals ??= new Map(leader.proposals);
    const proposal = proposals.get(sendCursor)!;
    recipients ??= firstAcceptRecipients(state);
    unsent ??= state.config.acceptorIds.filter((acceptorId) => !recipients!.includes(acceptorId));
    proposals.set(sendCursor, { ...proposal, firstSentAtMs: nowMs, lastSentAtMs: nowMs, unsent });
    for (const acceptorId of recipients) draft.send.push(acceptMessage(state, acceptorId, sendCursor, proposal.value));
    sendCursor++;
  }
  if (proposals) draft.state = { ...state, pending, leader: { ...leader, sendCursor, nextSlot, proposals } };
}

/**
 * Who gets a new slot's accept at once: this leader's own acceptor, then the followers it heard from
 * most recently, a bare majority plus `config.acceptRecipientsBeyondMajority` in all. A follower that
 * reached its snapshot point within the last `snapshotBusySlots` slots goes last: it is serializing
 * the view and rewriting its log, and a slot that waits for it waits out the resend.
 */
function firstAcceptRecipients<C extends CommandEnvelope>(state: ProposerState<C>): readonly string[] {
  const config = state.config;
  const ids = config.acceptorIds;
  const count = Math.min(ids.length, majorityOf(ids.length) + config.acceptRecipientsBeyondMajority);
  if (count >= ids.length) return ids;
  const leader = state.leader!;
  const heard = leader.lastHeardAtMs;
  const busy = ids.map((id) => slotsSinceSnapshotPoint(config, id, leader.commitIndex) < snapshotBusySlots);
  const others = ids.map((_, index) => index).filter((index) => ids[index] !== state.proposerId);
  others.sort((a, b) => Number(busy[a]) - Number(busy[b]) || (heard[b] ?? -1) - (heard[a] ?? -1) || a - b);
  const recipients = ids.includes(state.proposerId) ? [state.proposerId] : [];
  for (const index of others) if (recipients.length < count) recipients.push(ids[index]!);
  return recipients;
}

/** Slots after its snapshot point during which a follower counts as busy with the snapshot (firstAcceptRecipients). */
export const snapshotBusySlots = 64;

function onAccepted<C extends CommandEnvelope>(draft: Draft<C>, from: string, ballot: Ballot, slot: number, nowMs: number): void {
  if (draft.state.role !== "leader" || !draft.state.leader || !sameBallot(ballot, draft.state.ballot)) return;
  heardFrom(draft, from, nowMs);
  const state = draft.state;
  const leader = state.leader!;
  const proposal = leader.proposals.get(slot);
  if (!proposal || proposal.chosen || proposal.acks.includes(from) || !state.config.acceptorIds.includes(from)) return;
  const acks = [...proposal.acks, from];
  const chosen = acks.length >= majorityOf(state.config.acceptorIds.length);
  const proposals = new Map(leader.proposals);
  proposals.set(slot, { ...proposal, acks, chosen });
  draft.state = { ...state, leader: { ...leader, proposals } };
  if (chosen) markChosen(draft, [{ slot, value: proposal.value }], nowMs);
}

/** Records newly chosen slots, advances the commit index over the contiguous prefix, and tells learners. */
function markChosen<C extends CommandEnvelope>(draft: Draft<C>, entries: readonly ChosenEntry<C>[], nowMs: number): void {
  const state = draft.state;
  const leader = state.leader!;
  const proposals = new Map(leader.proposals);
  for (const entry of entries) {
    const proposal = proposals.get(entry.slot);
    if (proposal && !proposal.chosen) proposals.set(entry.slot, { ...proposal, chosen: true });
  }
  let commitIndex = leader.commitIndex;
  while (proposals.get(commitIndex)?.chosen) proposals.delete(commitIndex++);
  draft.chosen.push(...entries);
  draft.state = { ...state, leader: { ...leader, proposals, commitIndex } };
  broadcastCommit(draft, entries, nowMs);
  fillWindow(draft, nowMs);
}

function broadcastCommit<C extends CommandEnvelope>(draft: Draft<C>, entries: readonly ChosenEntry<C>[], nowMs: number): void {
  const state = draft.state;
  const leader = state.leader!;
  draft.send.push({ type: "paxos.commit", from: state.proposerId, to: learnerBroadcast, entries, commitIndex: leader.commitIndex });
  draft.state = { ...state, leader: { ...leader, lastCommitBroadcastAtMs: nowMs } };
}

function onHeartbeatAck<C extends CommandEnvelope>(draft: Draft<C>, from: string, ballot: Ballot, sequence: number, nowMs: number): void {
  if (draft.state.role !== "leader" || !draft.state.leader || !sameBallot(ballot, draft.state.ballot) || !draft.state.config.acceptorIds.includes(from)) return;
  heardFrom(draft, from, nowMs);
  const state = draft.state;
  const leader = state.leader!;
  const index = leader.heartbeats.findIndex((round) => round.sequence === sequence);
  const round = leader.heartbeats[index];
  if (!round || round.acks.includes(from)) return;
  const acks = [...round.acks, from];
  const heartbeats = leader.heartbeats.map((item, at) => (at === index ? { ...item, acks } : item));
  let leaseUntilMs = leader.leaseUntilMs;
  if (acks.length >= majorityOf(state.config.acceptorIds.length)) {
    leaseUntilMs = Math.max(leaseUntilMs, round.sentAtMs + state.config.leaseDurationMs - state.config.clockDriftMarginMs);
  }
  draft.state = { ...state, leader: { ...leader, heartbeats, leaseUntilMs } };
}

function onReject<C extends CommandEnvelope>(draft: Draft<C>, message: RejectMessage, nowMs: number, surroundings: ProposerSurroundings): void {
  const state = draft.state;
  if (state.role === "follower" || !sameBallot(message.ballot, state.ballot)) return;
  draft.state = { ...state, maxRoundSeen: Math.max(state.maxRoundSeen, message.promised.round) };
  switch (message.reason) {
    case "stale-ballot":
      if (message.promised.controllerId === state.proposerId) {
        // Fenced by a rejoining acceptor (the fence keeps the holder's id): prepare again at once.
        const pending = draft.state.pending;
        startPhaseOne(draft, nowMs, surroundings);
        draft.state = { ...draft.state, pending };
      } else {
        becomeFollower(draft, message.promised.controllerId, nowMs, electionDelayMs(draft, state.config.electionTimeoutMs));
      }
      return;
    case "lease-held":
      if (state.role === "candidate") {
        becomeFollower(draft, message.leaseHolderId, nowMs, electionDelayMs(draft, message.leaseRemainingMs));
      }
      return;
    case "compacted":
    case "rejoining":
    case "vote-log-full":
      return;
  }
}

/**
 * A proposal whose sender's leader stayed silent goes on to the leader this follower knows, once: the
 * sender may be cut off from that leader one way (it hears the leader, the leader does not hear it)
 * while this controller reaches it (whole-system fuzz seed 624). The sender still gets its refusal with
 * the leader hint from `enqueue`; a refusal of the relayed copy comes back here, where no client waits
 * for it. The view applies a command id once, so a copy that also arrives directly costs at most a slot.
 */
function relayToLeader<C extends CommandEnvelope>(draft: Draft<C>, command: C, sender: string): void {
  const state = draft.state;
  const leaderId = state.leaderId;
  if (state.role === "leader" || leaderId === "" || leaderId === state.proposerId || leaderId === sender) return;
  draft.send.push({ type: "paxos.propose", from: state.proposerId, to: leaderId, command });
}

function enqueue<C extends CommandEnvelope>(draft: Draft<C>, command: C, origin: string, nowMs: number): void {
  const state = draft.state;
  const pending: PendingCommand<C> = { command, origin };
  // A candidate names no leader: the one it last followed is the one it is replacing (fuzz seed 1093: the
  // hint sent a proposal back to a leader cut off from its proposer, and it waited out a 2 s backoff).
  if (state.role !== "leader") return refuse(draft, pending, "not-leader", state.role === "candidate" ? "" : state.leaderId);
  if (state.pending.length >= state.config.maxPendingCommands) return refuse(draft, pending, "overloaded", state.proposerId);
  if (state.pending.some((item) => item.command.id === command.id)) return;
  draft.state = { ...state, pending: [...state.pending, pending] };
  fillWindow(draft, nowMs);
}

function onLearned<C extends CommandEnvelope>(draft: Draft<C>, entries: readonly ChosenEntry<C>[], nowMs: number): void {
  const state = draft.state;
  const leader = state.leader;
  if (state.role !== "leader" || !leader) return;
  const confirmed: ChosenEntry<C>[] = [];
  for (const entry of entries) {
    const proposal = leader.proposals.get(entry.slot);
    if (!proposal || proposal.chosen || entry.slot >= leader.sendCursor) continue;
    if (!sameSlotValue(proposal.value, entry.value)) {
      // Something else was chosen where this leader proposed: a newer leader exists.
      becomeFollower(draft, "", nowMs, electionDelayMs(draft, state.config.electionTimeoutMs));
      return;
    }
    confirmed.push(entry);
  }
  if (confirmed.length > 0) markChosen(draft, confirmed, nowMs);
}

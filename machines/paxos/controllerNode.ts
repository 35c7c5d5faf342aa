/**
 * One controller as a single pure core: its acceptor, proposer and learner,
 * with the message routing and the hand-offs between them. This is what the
 * controller actor runs; it persists, sends and reports exactly what the
 * step returns (stepResult.ts).
 *
 * Hand-offs:
 * - values the proposer saw chosen go to the learner;
 * - accepts and heartbeats carry a commit index: every slot below it is
 *   chosen, and where this node's acceptor voted at the sender's ballot, the
 *   vote is the chosen value (a leader only counts a slot in its commit index
 *   when its own proposal there is the chosen one);
 * - values the learner got from peers go back to a leader, which checks them
 *   against its proposals;
 * - a snapshot taken by the learner compacts the acceptor and rewrites the log;
 * - an acceptor floor above the node's own last snapshot (adopted from the
 *   fences of a rejoin) gets a snapshot as soon as the learner reaches it.
 */
import type { Ballot } from "./ballot.ts";
import { sameBallot } from "./ballot.ts";
import type { PaxosConfig } from "./config.ts";
import { acceptorRecords, recoverAcceptor, stepAcceptor, type AcceptorInput, type AcceptorState } from "./acceptor.ts";
import { createLearner, snapshotNow, stepLearner, type LearnerInput, type LearnerState, type TakenSnapshot } from "./learner.ts";
import { paxosMessageProblem } from "./messageChecks.ts";
import type { PaxosMessage, ProposeRefusal } from "./messages.ts";
import { createProposer, holdsLease, stepProposer, type ProposerInput, type ProposerRole, type ProposerState } from "./proposer.ts";
import type { DurableRecord } from "./records.ts";
import type { AppliedCommand, ReplicatedStateMachine } from "./replicatedStateMachine.ts";
import type { ChosenEntry, CommandEnvelope } from "./values.ts";

export interface Leadership {
  readonly role: ProposerRole;
  /** "" when unknown. */
  readonly leaderId: string;
  readonly ballot: Ballot;
}

export interface ControllerNodeState<C extends CommandEnvelope, S> {
  readonly nodeId: string;
  readonly acceptor: AcceptorState<C>;
  readonly proposer: ProposerState<C>;
  readonly learner: LearnerState<C, S>;
  readonly lastSnapshot: TakenSnapshot | null;
  /** Builds the command a new leader proposes first (e.g. recording itself in the view); null for none. */
  readonly leaderAnnouncement: ((ballot: Ballot) => C) | null;
}

export type ControllerInput<C extends CommandEnvelope> =
  | { readonly type: "message"; readonly message: PaxosMessage<C>; readonly nowMs: number }
  /** Part of a large catch-up answer arrived from `from` (see learner.ts). */
  | { readonly type: "fetch-progress"; readonly from: string; readonly nowMs: number }
  | { readonly type: "tick"; readonly nowMs: number };

export interface ControllerStep<C extends CommandEnvelope, S> {
  readonly state: ControllerNodeState<C, S>;
  /**
   * Append, then sync. When `rewrite` is set it contains these too and a writer that rewrites ignores
   * them; one that holds the rewrite back (controllerActor.ts) appends them instead.
   */
  readonly persist: readonly DurableRecord<C>[];
  /** Replace the whole log with these records, then sync. */
  readonly rewrite: readonly DurableRecord<C>[] | null;
  /** The rewrite holds a snapshot installed from a peer (this node caught up), not one it took. */
  readonly rewriteInstallsPeerSnapshot: boolean;
  /** Only once the records above are durable. */
  readonly sendAfterSync: readonly PaxosMessage<C>[];
  /** Commands applied to the replicated state in this step, in log order. */
  readonly applied: readonly AppliedCommand[];
  /** Set when this node's view of who leads changed. */
  readonly leadership: Leadership | null;
  /** Commands submitted on this node that were dropped without a slot. */
  readonly refused: readonly { readonly commandId: string; readonly refusal: ProposeRefusal }[];
  /** Why the input message was dropped unread (for the actor to log and count), or null. */
  readonly droppedMessage: string | null;
}

export interface ControllerCreation<C extends CommandEnvelope, S> {
  readonly nodeId: string;
  readonly config: PaxosConfig;
  readonly machine: ReplicatedStateMachine<S, C>;
  /** What survived on disk (after the storage layer cut any torn tail). */
  readonly records: readonly DurableRecord<C>[];
  readonly nowMs: number;
  /** Drawn from the injected Random port. */
  readonly randomSeed: number;
  /** True only when creating a brand-new cluster (see acceptor.ts on empty disks). */
  readonly bootstrap: boolean;
  readonly leaderAnnouncement?: (ballot: Ballot) => C;
}

export interface ControllerStart<C extends CommandEnvelope, S> {
  readonly state: ControllerNodeState<C, S>;
  readonly persist: readonly DurableRecord<C>[];
}

export function createControllerNode<C extends CommandEnvelope, S>(creation: ControllerCreation<C, S>): ControllerStart<C, S> {
  const { nodeId, config, records, nowMs } = creation;
  const acceptor = recoverAcceptor<C>({ acceptorId: nodeId, config, records, nowMs, bootstrap: creation.bootstrap });
  const proposer = createProposer<C>({ proposerId: nodeId, config, records, nowMs, randomSeed: creation.randomSeed });
  const learner = createLearner<C, S>({ learnerId: nodeId, config, machine: creation.machine, records, nowMs });
  // The snapshot the learner loaded (through its nextSlot), rebuilt from its state's record objects (see createLearner).
  const lastSnapshot = learner.lastSnapshot;
  return {
    state: { nodeId, acceptor: acceptor.state, proposer, learner, lastSnapshot, leaderAnnouncement: creation.leaderAnnouncement ?? null },
    persist: acceptor.persist,
  };
}

export function leadershipOf<C extends CommandEnvelope, S>(state: ControllerNodeState<C, S>): Leadership {
  const proposer = state.proposer;
  return { role: proposer.role, leaderId: proposer.leaderId, ballot: proposer.role === "follower" ? proposer.leaderBallot : proposer.ballot };
}

/**
 * Voting with a floor above its own last snapshot: a rejoin adopted its fences' floor, and until this node's own view
 * covers it the slots below are on its peers alone (coverFloorWithSnapshot ends that as soon as the learner gets there).
 */
export function ownViewBehindFloor<C extends CommandEnvelope, S>(state: ControllerNodeState<C, S>): boolean {
  return state.acceptor.mode === "voting" && (state.lastSnapshot?.throughSlot ?? 0) < state.acceptor.floorSlot;
}

export function controllerHoldsLease<C extends CommandEnvelope, S>(state: ControllerNodeState<C, S>, nowMs: number): boolean {
  return holdsLease(state.proposer, nowMs);
}

/** The records that reproduce this node's durable state: what a compacting rewrite writes. */
export function controllerRecords<C extends CommandEnvelope, S>(state: ControllerNodeState<C, S>): DurableRecord<C>[] {
  const records = acceptorRecords(state.acceptor);
  if (state.proposer.roundUsed > 0) records.push({ kind: "round", round: state.proposer.roundUsed });
  if (state.lastSnapshot) records.push({ kind: "snapshot", throughSlot: state.lastSnapshot.throughSlot, snapshot: state.lastSnapshot.snapshot });
  return records;
}

class StepCollector<C extends CommandEnvelope, S> {
  persist: DurableRecord<C>[] = [];
  send: PaxosMessage<C>[] = [];
  applied: AppliedCommand[] = [];
  refused: { commandId: string; refusal: ProposeRefusal }[] = [];
  snapshotTaken = false;
  snapshotInstalled = false;
  constructor(public state: ControllerNodeState<C, S>) {}

  acceptor(input: AcceptorInput<C>): void {
    const step = stepAcceptor(this.state.acceptor, input);
    this.state = { ...this.state, acceptor: step.state };
    this.persist.push(...step.persist);
    this.send.push(...step.sendAfterSync);
  }

  proposer(input: ProposerInput<C>, nowMs: number): void {
    const acceptor = this.state.acceptor;
    const step = stepProposer(this.state.proposer, input, {
      chosenBelow: this.state.learner.nextSlot,
      acceptorPromisedRound: acceptor.promised.round,
      mayCampaign: acceptor.mode === "voting",
    });
    this.state = { ...this.state, proposer: step.state };
    this.persist.push(...step.persist);
    this.send.push(...step.sendAfterSync);
    this.refused.push(...step.refused);
    if (step.chosen.length > 0) this.learner({ type: "learn", entries: step.chosen, nowMs }, nowMs);
    if (step.becameLeader) this.onBecameLeader(nowMs);
  }

  learner(input: LearnerInput<C>, nowMs: number): void {
    const step = stepLearner(this.state.learner, input);
    this.state = { ...this.state, learner: step.state };
    this.send.push(...step.sendAfterSync);
    this.applied.push(...step.applied);
    if (step.snapshot) {
      this.state = { ...this.state, lastSnapshot: step.snapshot };
      this.snapshotTaken = true;
      if (input.type === "message" && input.message.type === "paxos.snapshot") this.snapshotInstalled = true;
      this.acceptor({ type: "compact", belowSlot: step.snapshot.throughSlot });
    }
    if (step.learnedFromPeers.length > 0 && this.state.proposer.role === "leader") {
      this.proposer({ type: "learned", entries: step.learnedFromPeers, nowMs }, nowMs);
    }
  }

  private onBecameLeader(nowMs: number): void {
    const { proposer, learner } = this.state;
    const startSlot = proposer.leader?.startSlot ?? learner.nextSlot;
    const known: ChosenEntry<C>[] = [];
    for (let slot = startSlot; slot < learner.nextSlot; slot++) {
      const value = learner.retained.get(slot);
      if (value) known.push({ slot, value });
    }
    if (known.length > 0) this.proposer({ type: "learned", entries: known, nowMs }, nowMs);
    const announce = this.state.leaderAnnouncement;
    if (announce && this.state.proposer.role === "leader") this.proposer({ type: "submit", command: announce(this.state.proposer.ballot), nowMs }, nowMs);
  }

  /**
   * A rejoin adopts the highest floor of its fences: the slots below it are chosen, but until this node's own view
   * covers them they live only in its peers' snapshots, and losing those peers (or removing one from the acceptor
   * set, which `haring acceptors shrink` refuses for such a log) would lose them. So once the learner reaches the
   * floor, the node takes a snapshot of its own at once rather than at its period.
   */
  coverFloorWithSnapshot(): void {
    const { acceptor, learner } = this.state;
    if (!learner.takesSnapshots || !ownViewBehindFloor(this.state) || learner.nextSlot < acceptor.floorSlot) return;
    const taken = snapshotNow(learner);
    this.state = { ...this.state, learner: taken.state, lastSnapshot: taken.snapshot };
    this.snapshotTaken = true;
    this.acceptor({ type: "compact", belowSlot: taken.snapshot.throughSlot });
  }

  /** Asks `peer` for the chosen slots from this node's next unapplied one on; its reply is learned like any fetch reply. */
  fetchFrom(peer: string): void {
    const learner = this.state.learner;
    this.send.push({ type: "paxos.fetch", from: learner.learnerId, to: peer, fromSlot: learner.nextSlot, maxSlots: learner.config.maxFetchSlots });
  }

  /** Slots below the commit index where this node voted at the sender's ballot are chosen with that vote's value. */
  resolvePiggyBackedCommit(from: string, ballot: Ballot, commitIndex: number, nowMs: number): void {
    this.learner({ type: "hint", commitIndex, leaderId: from, nowMs }, nowMs);
    const learner = this.state.learner;
    const end = Math.min(commitIndex, learner.nextSlot + learner.config.maxBufferedChosenSlots);
    const entries: ChosenEntry<C>[] = [];
    for (let slot = learner.nextSlot; slot < end; slot++) {
      if (learner.buffered.has(slot)) continue;
      const vote = this.state.acceptor.votes.get(slot);
      if (vote && sameBallot(vote.ballot, ballot)) entries.push({ slot, value: vote.value });
    }
    if (entries.length > 0) this.learner({ type: "learn", entries, nowMs }, nowMs);
  }
}

export function stepControllerNode<C extends CommandEnvelope, S>(state: ControllerNodeState<C, S>, input: ControllerInput<C>): ControllerStep<C, S> {
  if (input.type === "message") {
    const problem = paxosMessageProblem(input.message);
    if (problem) return { state, persist: [], rewrite: null, rewriteInstallsPeerSnapshot: false, sendAfterSync: [], applied: [], leadership: null, refused: [], droppedMessage: problem };
  }
  const before = leadershipOf(state);
  const step = new StepCollector<C, S>(state);
  const nowMs = input.nowMs;
  if (input.type === "tick") {
    step.acceptor({ type: "tick", nowMs });
    step.proposer({ type: "tick", nowMs }, nowMs);
    step.learner({ type: "tick", nowMs }, nowMs);
  } else if (input.type === "fetch-progress") {
    step.learner(input, nowMs);
  } else {
    const message = input.message;
    switch (message.type) {
      case "paxos.pre-vote":
        step.acceptor({ type: "message", message, nowMs });
        break;
      case "paxos.pre-vote-reply": {
        const preVote = step.state.proposer.preVote;
        step.proposer({ type: "message", message, nowMs }, nowMs);
        // Refused because a leader this node does not hear still reaches that acceptor (a one-way cut from
        // the leader, which keeps its quorum through the others): this node's learner hears no commit index
        // and would never know it is behind, so it asks the acceptor's node for what it missed. Once per
        // pre-vote round (the refusal ends it), so at most one fetch per election timeout.
        const refusedUnderLease = preVote !== null && step.state.proposer.preVote === null && !message.granted && message.leaseHolderId !== "";
        if (refusedUnderLease && message.from !== step.state.proposer.proposerId) step.fetchFrom(message.from);
        break;
      }
      case "paxos.prepare":
        step.acceptor({ type: "message", message, nowMs });
        step.proposer({ type: "message", message, nowMs }, nowMs);
        break;
      case "paxos.accept":
      case "paxos.heartbeat":
        step.acceptor({ type: "message", message, nowMs });
        step.proposer({ type: "message", message, nowMs }, nowMs);
        step.resolvePiggyBackedCommit(message.from, message.ballot, message.commitIndex, nowMs);
        break;
      case "paxos.rejoin-fence":
      case "paxos.rejoin-state":
        step.acceptor({ type: "message", message, nowMs });
        break;
      case "paxos.promise":
      case "paxos.reject":
        step.proposer({ type: "message", message, nowMs }, nowMs);
        // Slots below a peer's compaction floor are chosen: a learner behind it must catch up.
        if (message.floorSlot > 0) step.learner({ type: "hint", commitIndex: message.floorSlot, leaderId: "", nowMs }, nowMs);
        break;
      case "paxos.accepted":
      case "paxos.heartbeat-ack":
      case "paxos.propose":
        step.proposer({ type: "message", message, nowMs }, nowMs);
        break;
      case "paxos.commit":
      case "paxos.fetch":
      case "paxos.fetch-reply":
      case "paxos.snapshot":
        step.learner({ type: "message", message, nowMs }, nowMs);
        break;
      case "paxos.propose-reply":
        // For the node's client (proposalClient.ts), not the Paxos roles.
        break;
    }
  }
  step.coverFloorWithSnapshot();
  const after = leadershipOf(step.state);
  const changed = before.role !== after.role || before.leaderId !== after.leaderId || !sameBallot(before.ballot, after.ballot);
  return {
    state: step.state,
    persist: step.persist,
    rewrite: step.snapshotTaken ? controllerRecords(step.state) : null,
    rewriteInstallsPeerSnapshot: step.snapshotInstalled,
    sendAfterSync: step.send,
    applied: step.applied,
    leadership: changed ? after : null,
    refused: step.refused,
    droppedMessage: null,
  };
}

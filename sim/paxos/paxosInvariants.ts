/**
 * The safety properties of the replicated view, checked while a simulated
 * cluster runs (every step of every controller and learner, every completed
 * sync), in the style of test/paxos/clusterHarness.ts but fed by the real
 * actors' observers:
 *
 * - agreement: per slot, at most one value gathers durable votes from a
 *   majority at one ballot (one ballot never votes two values), and every
 *   value a learner applies is that chosen value; while the acceptor set
 *   changes, a ballot chooses with a majority of the set its controller
 *   counted when it ran it;
 * - every learner applies the same sequence: the same value and the same
 *   per-command outcomes at each slot, and the same view epoch after it;
 * - a learner's view never goes back while its incarnation runs;
 * - a client's committed (or rejected) outcome names a slot that holds the
 *   command, and no command takes effect twice (applied other than as a
 *   duplicate at two slots);
 * - at most one controller holds the leader lease at any instant of global
 *   time;
 * - an acceptor that lost its disk makes nothing durable (no promise, no
 *   vote) before its rejoin completed (its `init` record), so it never
 *   answers from a memory it lost.
 */
import { formatBallot, type Ballot } from "../../machines/paxos/ballot.ts";
import { majorityOf } from "../../machines/paxos/config.ts";
import type { ProposalOutcome } from "../../machines/paxos/proposalClient.ts";
import type { AppliedCommand } from "../../machines/paxos/replicatedStateMachine.ts";
import { describeSlotValue, type SlotValue } from "../../machines/paxos/values.ts";
import type { ViewCommand } from "../../machines/view/viewCommands.ts";
import type { ViewLearnerState } from "../../actors/paxos/learnerActor.ts";
import type { ViewDurableRecord } from "../../actors/paxos/paxosRecords.ts";

export const maxReportedViolations = 10;

export class PaxosInvariants {
  readonly violations: string[] = [];
  /** slot → ballot → value description and the acceptors with a durable vote for it. */
  private readonly votes = new Map<number, Map<string, { value: string; voters: Set<string> }>>();
  private readonly chosenByVotes = new Map<number, string>();
  private readonly appliedValues = new Map<number, string>();
  private readonly appliedOutcomes = new Map<number, string>();
  private readonly epochAtSlot = new Map<number, number>();
  /** command id → slots whose value holds it. */
  private readonly commandSlots = new Map<string, number[]>();
  /** command id → the slot where it took effect (not as a duplicate). */
  private readonly tookEffectAt = new Map<string, number>();
  private readonly lastEpochByIncarnation = new Map<string, number>();
  private readonly leaseEndsAtGlobalMs = new Map<string, number>();
  private readonly committedOutcomes = new Map<string, number>();
  /** Acceptors that lost their disk and have not yet made their rejoin durable. */
  private readonly awaitingRejoin = new Set<string>();
  private readonly descriptions = new WeakMap<SlotValue<ViewCommand>, string>();
  private readonly outcomeLines = new WeakMap<AppliedCommand, { readonly items: readonly AppliedCommand[]; readonly line: string }>();

  /** controller id → the sets its ballots count with, by round: `set` for rounds above `aboveRound` (the last entry that applies wins). */
  private readonly ballotSets = new Map<string, { readonly aboveRound: number; readonly set: readonly string[] }[]>();
  /** controller id → the highest round of its ballots that got a vote. */
  private readonly maxVotedRound = new Map<string, number>();

  constructor(
    private readonly seed: number,
    /** The set every ballot counts with unless `ballotsCountWith` says otherwise. */
    private readonly acceptorIds: readonly string[],
    private readonly now: () => number,
  ) {}

  /**
   * A set change: `controllerId`'s ballots above `aboveRound` (rounds it may use from its next start on) count
   * majorities of `acceptorIds`. A value is chosen by a majority of the set its ballot's controller counted, not of
   * any set: an old set's majority choosing after every controller left it would be a false alarm.
   */
  ballotsCountWith(controllerId: string, aboveRound: number, acceptorIds: readonly string[]): void {
    const sets = this.ballotSets.get(controllerId) ?? [];
    sets.push({ aboveRound, set: acceptorIds });
    this.ballotSets.set(controllerId, sets);
  }

  /** The highest round of `controllerId`'s ballots that any acceptor voted at so far (0 for none). */
  maxRoundVotedFor(controllerId: string): number {
    return this.maxVotedRound.get(controllerId) ?? 0;
  }

  private setOfBallot(ballot: Ballot): readonly string[] {
    let set = this.acceptorIds;
    for (const entry of this.ballotSets.get(ballot.controllerId) ?? []) if (ballot.round > entry.aboveRound) set = entry.set;
    return set;
  }

  get ok(): boolean {
    return this.violations.length === 0;
  }

  get slotsChosen(): number {
    return this.chosenByVotes.size;
  }

  /** Commands a client saw committed, with their slots. */
  get committed(): ReadonlyMap<string, number> {
    return this.committedOutcomes;
  }

  fail(message: string): void {
    if (this.violations.length < maxReportedViolations) this.violations.push(`seed ${this.seed} at ${this.now().toFixed(3)}ms: ${message}`);
  }

  /** Records that became durable on `acceptorId` (after a completed sync or rewrite). */
  synced(acceptorId: string, records: readonly ViewDurableRecord[]): void {
    for (const record of records) {
      if (this.awaitingRejoin.has(acceptorId)) {
        if (record.kind === "init") {
          this.awaitingRejoin.delete(acceptorId);
          // A completed rejoin makes its fence promise durable with `init`; an `init` alone is a bootstrap, which would forget every promise and vote.
          if (!records.some((other) => other.kind === "promise")) this.fail(`${acceptorId} lost its disk and bootstrapped again instead of rejoining`);
        } else if (record.kind === "accept" || record.kind === "promise") this.fail(`${acceptorId} lost its disk and made a ${record.kind} durable before rejoining`);
      }
      if (record.kind === "accept") this.countVote(acceptorId, record.slot, record.ballot, record.value);
    }
  }

  /**
   * The records `acceptorId` recovers from its disk at a restart. Most were reported by `synced`; a crash
   * can also leave whole records of a write whose sync never completed, and those are durable votes too.
   */
  recovered(acceptorId: string, records: readonly ViewDurableRecord[]): void {
    // A rejoin whose records became durable just before a crash, before their sync was reported, is complete too.
    if (this.awaitingRejoin.has(acceptorId) && records.some((record) => record.kind === "init")) this.synced(acceptorId, records);
    else for (const record of records) if (record.kind === "accept") this.countVote(acceptorId, record.slot, record.ballot, record.value);
  }

  private countVote(acceptorId: string, slot: number, ballot: Ballot, slotValue: SlotValue<ViewCommand>): void {
    let bySlot = this.votes.get(slot);
    if (!bySlot) this.votes.set(slot, (bySlot = new Map()));
    const ballotKey = formatBallot(ballot);
    const value = describeSlotValue(slotValue);
    let tally = bySlot.get(ballotKey);
    if (!tally) bySlot.set(ballotKey, (tally = { value, voters: new Set() }));
    if (tally.value !== value) this.fail(`slot ${slot} ballot ${ballotKey} has two values: ${tally.value} and ${value}`);
    tally.voters.add(acceptorId);
    this.maxVotedRound.set(ballot.controllerId, Math.max(this.maxRoundVotedFor(ballot.controllerId), ballot.round));
    const set = this.setOfBallot(ballot);
    if (set.filter((id) => tally.voters.has(id)).length < majorityOf(set.length)) return;
    const chosen = this.chosenByVotes.get(slot);
    if (chosen === undefined) {
      this.chosenByVotes.set(slot, value);
      // Learners may never show this slot's value (one that installs a snapshot past it, or applies so many slots in one step that
      // the slot left its retained log in that step); the chosen value says which commands the slot holds all the same.
      if (slotValue.kind === "commands") for (const command of slotValue.commands) this.commandInSlot(command.id, slot);
    } else if (chosen !== value) this.fail(`agreement: slot ${slot} chose ${chosen} and then ${value} (ballot ${ballotKey})`);
  }

  /** A learner (re)started holding `epoch` (recovered from its disk): later steps of this incarnation must not go below it. */
  learnerStarted(learnerId: string, incarnation: number, epoch: number): void {
    this.lastEpochByIncarnation.set(`${learnerId}#${incarnation}`, epoch);
  }

  /** One step of a learner (a controller's or a host's); `incarnation` tells restarts apart. */
  learnerStepped(learnerId: string, incarnation: number, beforeSlot: number, learner: ViewLearnerState, applied: readonly AppliedCommand[]): void {
    const after = learner.nextSlot;
    const key = `${learnerId}#${incarnation}`;
    if (after < beforeSlot) this.fail(`learner ${learnerId} went back from slot ${beforeSlot} to ${after}`);
    if (after === beforeSlot) return;
    const outcomesBySlot = this.outcomesBySlot(applied);
    for (let slot = beforeSlot; slot < after; slot++) {
      const value = learner.retained.get(slot);
      if (value === undefined) continue; // installed from a snapshot: checked through the epoch below
      const description = this.describe(value);
      const chosen = this.chosenByVotes.get(slot);
      if (chosen === undefined) this.fail(`learner ${learnerId} applied ${description} at slot ${slot}, which no majority voted for`);
      else if (chosen !== description) this.fail(`learner ${learnerId} applied ${description} at slot ${slot}, but ${chosen} was chosen`);
      const first = this.appliedValues.get(slot);
      if (first === undefined) this.appliedValues.set(slot, description);
      else if (first !== description) this.fail(`learner ${learnerId} applied ${description} at slot ${slot}, another learner ${first}`);
      if (value.kind !== "commands") continue;
      const outcomes = outcomesBySlot.get(slot) ?? "";
      const firstOutcomes = this.appliedOutcomes.get(slot);
      if (firstOutcomes === undefined) {
        this.appliedOutcomes.set(slot, outcomes);
        for (const item of applied) if (item.slot === slot && item.outcome.kind !== "duplicate") this.tookEffect(item.commandId, slot);
      } else if (firstOutcomes !== outcomes) {
        this.fail(`learner ${learnerId} slot ${slot} outcomes ${outcomes}, another learner ${firstOutcomes}`);
      }
      // A value with the same command ids as the first one applied here names the same commands: recorded already.
      if (first === description) continue;
      for (const command of value.commands) this.commandInSlot(command.id, slot);
    }
    const epoch = learner.app.epoch;
    const lastEpoch = this.lastEpochByIncarnation.get(key) ?? 0;
    if (epoch < lastEpoch) this.fail(`learner ${learnerId} view epoch went back from ${lastEpoch} to ${epoch}`);
    this.lastEpochByIncarnation.set(key, epoch);
    const expected = this.epochAtSlot.get(after);
    if (expected === undefined) this.epochAtSlot.set(after, epoch);
    else if (expected !== epoch) this.fail(`learner ${learnerId} has epoch ${epoch} at slot ${after}, another learner ${expected}`);
  }

  /**
   * Each slot's outcomes as one line. Learners that share applied items (learner.ts, with a shared
   * apply) share the line: it is built once per run of the same item objects.
   */
  private outcomesBySlot(applied: readonly AppliedCommand[]): Map<number, string> {
    const lines = new Map<number, string>();
    let start = 0;
    while (start < applied.length) {
      const slot = applied[start]!.slot;
      let end = start + 1;
      while (end < applied.length && applied[end]!.slot === slot) end++;
      const known = this.outcomeLines.get(applied[start]!);
      let line: string;
      if (known !== undefined && known.items.length === end - start && known.items.every((item, index) => item === applied[start + index])) line = known.line;
      else {
        const items = applied.slice(start, end);
        line = items.map((item) => `${item.commandId}:${item.outcome.kind === "duplicate" ? `dup@${item.outcome.firstSlot}` : item.outcome.kind}`).join(" ");
        this.outcomeLines.set(applied[start]!, { items, line });
      }
      // A slot split over two runs (not produced by the learner, but cheap to honour) keeps both parts.
      const before = lines.get(slot);
      lines.set(slot, before === undefined ? line : `${before} ${line}`);
      start = end;
    }
    return lines;
  }

  /** Slot values are immutable and shared by learners that received the same decoded message: described once each. */
  private describe(value: SlotValue<ViewCommand>): string {
    let description = this.descriptions.get(value);
    if (description === undefined) this.descriptions.set(value, (description = describeSlotValue(value)));
    return description;
  }

  private commandInSlot(commandId: string, slot: number): void {
    const slots = this.commandSlots.get(commandId) ?? [];
    if (!slots.includes(slot)) slots.push(slot);
    this.commandSlots.set(commandId, slots);
  }

  private tookEffect(commandId: string, slot: number): void {
    const earlier = this.tookEffectAt.get(commandId);
    if (earlier === undefined) this.tookEffectAt.set(commandId, slot);
    else if (earlier !== slot) this.fail(`command ${commandId} took effect twice: at slots ${earlier} and ${slot}`);
  }

  clientOutcome(outcome: ProposalOutcome): void {
    if (outcome.kind === "no-outcome") return;
    const slots = this.commandSlots.get(outcome.commandId) ?? [];
    if (!slots.includes(outcome.slot)) this.fail(`client outcome for ${outcome.commandId} names slot ${outcome.slot}, but it was applied at [${slots.join(",")}]`);
    if (outcome.kind === "committed") {
      const earlier = this.committedOutcomes.get(outcome.commandId);
      if (earlier !== undefined && earlier !== outcome.slot) this.fail(`clients saw ${outcome.commandId} committed at slots ${earlier} and ${outcome.slot}`);
      this.committedOutcomes.set(outcome.commandId, outcome.slot);
    }
  }

  /** After a controller's step: `leaseEndsAtGlobalMs` is when its lease ends in global time, or -1 when it holds none. */
  lease(controllerId: string, leaseEndsAtGlobalMs: number): void {
    if (leaseEndsAtGlobalMs < 0) {
      this.leaseEndsAtGlobalMs.delete(controllerId);
      return;
    }
    const nowMs = this.now();
    for (const [other, endsAtMs] of this.leaseEndsAtGlobalMs) {
      if (other !== controllerId && endsAtMs > nowMs) this.fail(`lease: ${controllerId} holds the leader lease while ${other} holds it until ${endsAtMs.toFixed(3)}ms`);
    }
    this.leaseEndsAtGlobalMs.set(controllerId, leaseEndsAtGlobalMs);
  }

  /** `acceptorId` lost its disk while down: it must rejoin before it promises or votes again. */
  diskLost(acceptorId: string): void {
    this.awaitingRejoin.add(acceptorId);
  }

  /**
   * A controller's bootstrap gate created the cluster. At a first start that is what it is for (nothing of the
   * controller can be forgotten). After a lost disk it may do so only while nothing of it was counted, and a correct
   * gate sees that no earlier than no slot is chosen: a chosen slot has a majority of votes, which takes a vote from
   * one of the controllers it needed to answer `fresh`.
   */
  gateBootstrapped(acceptorId: string): void {
    const lostItsDisk = this.awaitingRejoin.delete(acceptorId);
    if (lostItsDisk && this.chosenByVotes.size > 0) this.fail(`bootstrap gate: ${acceptorId} lost its disk and created the cluster again after ${this.chosenByVotes.size} slots were chosen`);
  }

  /** A crashed controller holds no lease any more (it cannot act). */
  crashed(controllerId: string): void {
    this.leaseEndsAtGlobalMs.delete(controllerId);
  }
}

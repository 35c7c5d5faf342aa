/**
 * The learner: collects chosen values, applies them strictly in slot order to
 * a replicated state machine, and catches up when it falls behind. Pure, like
 * the other cores.
 *
 * Sources of chosen values: the node's own leader (majority of votes at its
 * ballot), the commit broadcast, the commit index piggy-backed on accepts and
 * heartbeats (resolved against the node's own acceptor votes by
 * controllerNode.ts), and catch-up replies. A learner behind the commit index
 * for `catchUpAfterMs` fetches from a peer: the peer answers with the slots it
 * still retains, or with a snapshot of its state when the request reaches
 * below its retained log. Every `snapshotEverySlots` applied slots the learner
 * takes a snapshot (controllers at staggered slots, see snapshotSchedule.ts); the
 * node persists it and compacts its log below it.
 */
import { ChunkedMap, type ChunkedMapDraft } from "./chunkedMap.ts";
import type { PaxosConfig } from "./config.ts";
import { paxosMessageProblem } from "./messageChecks.ts";
import { SlotWindow } from "./slotWindow.ts";
import { snapshotPhase } from "./snapshotSchedule.ts";
import type { PaxosMessage, SnapshotMessage } from "./messages.ts";
import type { DurableRecord } from "./records.ts";
import type { AppliedCommand, CommandOutcome, ReplicatedStateMachine } from "./replicatedStateMachine.ts";
import type { ChosenEntry, CommandEnvelope, SlotValue } from "./values.ts";

export interface PendingFetch {
  readonly target: string;
  readonly fromSlot: number;
  readonly sentAtMs: number;
}

export interface LearnerState<C extends CommandEnvelope, S> {
  readonly learnerId: string;
  readonly config: PaxosConfig;
  readonly machine: ReplicatedStateMachine<S, C>;
  /** The replicated state after applying every slot below `nextSlot`. */
  readonly app: S;
  readonly nextSlot: number;
  /** Chosen but not yet applicable (a gap below them), at most `maxBufferedChosenSlots` ahead. */
  readonly buffered: ChunkedMap<number, SlotValue<C>>;
  /** Applied slots [retainedFrom, nextSlot), kept to serve catch-up. */
  readonly retained: SlotWindow<SlotValue<C>>;
  readonly retainedFrom: number;
  /** The highest commit index heard: every slot below it is chosen somewhere. */
  readonly commitHint: number;
  readonly leaderHint: string;
  readonly lastProgressAtMs: number;
  readonly fetch: PendingFetch | null;
  readonly fetchRotation: number;
  /** `throughSlot` of the newest snapshot taken or installed. */
  readonly snapshotSlot: number;
  readonly snapshotsRejected: number;
  /** False on a node that keeps nothing on disk (a host): it would only build snapshots to throw them away. */
  readonly takesSnapshots: boolean;
  /**
   * The newest snapshot taken, installed or recovered (only when `takesSnapshots`): served to peers
   * behind the retained log, so that serving them costs no new snapshot of the state.
   */
  readonly lastSnapshot: TakenSnapshot | null;
}

export type LearnerInput<C extends CommandEnvelope> =
  /** Chosen values from this node itself (its leader, or piggy-backed commits resolved against its acceptor). */
  | { readonly type: "learn"; readonly entries: readonly ChosenEntry<C>[]; readonly nowMs: number }
  /** A commit index heard on an accept or heartbeat. */
  | { readonly type: "hint"; readonly commitIndex: number; readonly leaderId: string; readonly nowMs: number }
  | { readonly type: "message"; readonly message: PaxosMessage<C>; readonly nowMs: number }
  /** A chunk of a large answer (a snapshot in transfer) arrived from `from`: a fetch it is answering is not timed out. */
  | { readonly type: "fetch-progress"; readonly from: string; readonly nowMs: number }
  | { readonly type: "tick"; readonly nowMs: number };

export interface TakenSnapshot {
  readonly throughSlot: number;
  readonly snapshot: unknown;
}

export interface LearnerStep<C extends CommandEnvelope, S> {
  readonly state: LearnerState<C, S>;
  /** Catch-up requests and replies; the learner persists nothing of its own before them. */
  readonly sendAfterSync: readonly PaxosMessage<C>[];
  /** Commands applied in this step, in order, with their outcome. */
  readonly applied: readonly AppliedCommand[];
  /** Chosen values learned from other nodes in this step (a leader checks them against its proposals). */
  readonly learnedFromPeers: readonly ChosenEntry<C>[];
  /** A snapshot to persist; once durable the node may compact every slot below `throughSlot`. */
  readonly snapshot: TakenSnapshot | null;
  /** Why the input message was dropped unread (for the actor to log and count), or null. */
  readonly droppedMessage: string | null;
}

export interface LearnerCreation<C extends CommandEnvelope, S> {
  readonly learnerId: string;
  readonly config: PaxosConfig;
  readonly machine: ReplicatedStateMachine<S, C>;
  /** The node's durable records; the newest valid snapshot record is loaded. */
  readonly records: readonly DurableRecord<C>[];
  readonly nowMs: number;
  /** Whether this learner takes a snapshot every `snapshotEverySlots` (default true: a controller persists them). */
  readonly takesSnapshots?: boolean;
}

export function createLearner<C extends CommandEnvelope, S>(creation: LearnerCreation<C, S>): LearnerState<C, S> {
  let app = creation.machine.initialState;
  let nextSlot = 0;
  for (const record of creation.records) {
    if (record.kind !== "snapshot" || record.throughSlot <= nextSlot) continue;
    const parsed = creation.machine.fromSnapshot(record.snapshot);
    if (!parsed.ok) continue;
    app = parsed.state;
    nextSlot = record.throughSlot;
  }
  const takesSnapshots = creation.takesSnapshots ?? true;
  // The snapshot loaded (nextSlot is past 0 only then), kept to serve peers and rebuilt from the state it was
  // loaded into: the same content, but made of the state's own record objects, which the actors pack in the
  // background after a recovery, so serving it is not a whole new encoding of every record (hundreds of ms at
  // 60,000 VMs, long enough to cost an election).
  const lastSnapshot: TakenSnapshot | null = takesSnapshots && nextSlot > 0 ? { throughSlot: nextSlot, snapshot: creation.machine.toSnapshot(app) } : null;
  return {
    learnerId: creation.learnerId,
    config: creation.config,
    machine: creation.machine,
    app,
    nextSlot,
    buffered: ChunkedMap.empty(),
    retained: SlotWindow.startingAt(nextSlot),
    retainedFrom: nextSlot,
    commitHint: nextSlot,
    leaderHint: "",
    lastProgressAtMs: creation.nowMs,
    fetch: null,
    fetchRotation: 0,
    snapshotSlot: nextSlot,
    snapshotsRejected: 0,
    takesSnapshots,
    lastSnapshot,
  };
}

interface Draft<C extends CommandEnvelope, S> {
  state: LearnerState<C, S>;
  /** Chosen values learned in this step and not yet applied or buffered (see `learn`). */
  staged: Map<number, SlotValue<C>> | null;
  send: PaxosMessage<C>[];
  applied: AppliedCommand[];
  learnedFromPeers: ChosenEntry<C>[];
  snapshot: TakenSnapshot | null;
}

export function stepLearner<C extends CommandEnvelope, S>(state: LearnerState<C, S>, input: LearnerInput<C>): LearnerStep<C, S> {
  if (input.type === "message") {
    const problem = messageProblem(input.message);
    if (problem) return { state, sendAfterSync: [], applied: [], learnedFromPeers: [], snapshot: null, droppedMessage: problem };
  }
  const draft: Draft<C, S> = { state, staged: null, send: [], applied: [], learnedFromPeers: [], snapshot: null };
  switch (input.type) {
    case "learn":
      learn(draft, input.entries, false);
      applyReady(draft, input.nowMs);
      break;
    case "hint":
      hint(draft, input.commitIndex, input.leaderId);
      break;
    case "message":
      onMessage(draft, input.message, input.nowMs);
      break;
    case "fetch-progress": {
      const fetch = draft.state.fetch;
      if (fetch && fetch.target === input.from) draft.state = { ...draft.state, fetch: { ...fetch, sentAtMs: input.nowMs } };
      break;
    }
    case "tick":
      maybeFetch(draft, input.nowMs);
      break;
  }
  return { state: draft.state, sendAfterSync: draft.send, applied: draft.applied, learnedFromPeers: draft.learnedFromPeers, snapshot: draft.snapshot, droppedMessage: null };
}

/**
 * A message is immutable once decoded, and learners that share decoding (the simulator's hosts, see
 * learnerActor.ts) receive the same object: it is checked once, not once per learner.
 */
const checkedMessages = new WeakMap<object, string | null>();

function messageProblem<C extends CommandEnvelope>(message: PaxosMessage<C>): string | null {
  let problem = checkedMessages.get(message);
  if (problem === undefined) checkedMessages.set(message, (problem = paxosMessageProblem(message)));
  return problem;
}

function hint<C extends CommandEnvelope, S>(draft: Draft<C, S>, commitIndex: number, leaderId: string): void {
  const state = draft.state;
  if (commitIndex <= state.commitHint && (leaderId === "" || leaderId === state.leaderHint)) return;
  draft.state = { ...state, commitHint: Math.max(state.commitHint, commitIndex), leaderHint: leaderId === "" ? state.leaderHint : leaderId };
}

/**
 * New chosen values go to `draft.staged`, not straight into `buffered`: `applyReady` (which always
 * follows) applies what it can from there and buffers only the rest, so the usual commit, whose
 * values apply at once, never copies a bucket of `buffered` in and out again.
 */
function learn<C extends CommandEnvelope, S>(draft: Draft<C, S>, entries: readonly ChosenEntry<C>[], fromPeer: boolean): void {
  const state = draft.state;
  const horizon = state.nextSlot + state.config.maxBufferedChosenSlots;
  let staged: Map<number, SlotValue<C>> | null = null;
  let highest = state.commitHint;
  for (const entry of entries) {
    if (entry.slot < state.nextSlot || entry.slot >= horizon || staged?.has(entry.slot) || state.buffered.has(entry.slot)) continue;
    staged ??= new Map();
    staged.set(entry.slot, entry.value);
    highest = Math.max(highest, entry.slot + 1);
    if (fromPeer) draft.learnedFromPeers.push(entry);
  }
  if (staged) {
    draft.staged = staged;
    draft.state = { ...state, commitHint: highest };
  }
}

function applyReady<C extends CommandEnvelope, S>(draft: Draft<C, S>, nowMs: number): void {
  const start = draft.state;
  const staged = draft.staged;
  draft.staged = null;
  if (!start.buffered.has(start.nextSlot) && !staged?.has(start.nextSlot)) {
    if (staged) draft.state = { ...start, buffered: withStaged(start.buffered.edit(), staged).done() };
    return;
  }
  const config = start.config;
  const buffered = start.buffered.edit();
  let retained = start.retained;
  let { app, nextSlot, retainedFrom } = start;
  const take = (slot: number): SlotValue<C> | undefined => {
    const fresh = staged?.get(slot);
    if (fresh !== undefined) {
      staged!.delete(slot);
      return fresh;
    }
    const kept = buffered.get(slot);
    if (kept !== undefined) buffered.delete(slot);
    return kept;
  };
  for (let value = take(nextSlot); value !== undefined; value = take(nextSlot)) {
    if (value.kind === "commands") {
      const result = start.machine.apply(app, nextSlot, value.commands);
      app = result.state;
      for (const item of appliedItems(nextSlot, value.commands, result.outcomes)) draft.applied.push(item);
    }
    retained = retained.append(value);
    nextSlot++;
  }
  if (staged) withStaged(buffered, staged);
  if (nextSlot - retainedFrom > config.maxRetainedSlots) {
    retainedFrom = nextSlot - config.maxRetainedSlots;
    retained = retained.dropBelow(retainedFrom);
  }
  let snapshotSlot = start.snapshotSlot;
  let lastSnapshot = start.lastSnapshot;
  const period = config.snapshotEverySlots;
  const phase = snapshotPhase(config, start.learnerId);
  if (start.takesSnapshots && Math.floor((nextSlot - phase) / period) > Math.floor((snapshotSlot - phase) / period)) {
    snapshotSlot = nextSlot;
    draft.snapshot = { throughSlot: nextSlot, snapshot: start.machine.toSnapshot(app) };
    lastSnapshot = draft.snapshot;
  }
  draft.state = {
    ...start,
    app,
    nextSlot,
    buffered: buffered.done(),
    retained,
    retainedFrom,
    snapshotSlot,
    lastSnapshot,
    commitHint: Math.max(start.commitHint, nextSlot),
    lastProgressAtMs: nowMs,
  };
}

function withStaged<C extends CommandEnvelope>(buffered: ChunkedMapDraft<number, SlotValue<C>>, staged: ReadonlyMap<number, SlotValue<C>>): ChunkedMapDraft<number, SlotValue<C>> {
  for (const [slot, value] of staged) buffered.set(slot, value);
  return buffered;
}

/**
 * A machine that shares results between learners (sharedApply.ts) hands them
 * the same outcomes array: they share the (immutable) applied items built
 * from it too, when slot and command ids match, instead of each allocating
 * its own.
 */
const appliedByOutcomes = new WeakMap<readonly CommandOutcome[], readonly AppliedCommand[]>();

function appliedItems<C extends CommandEnvelope>(slot: number, commands: readonly C[], outcomes: readonly CommandOutcome[]): readonly AppliedCommand[] {
  const known = appliedByOutcomes.get(outcomes);
  if (known !== undefined && known.length === commands.length && known.every((item, index) => item.slot === slot && item.commandId === commands[index]!.id)) return known;
  const items = commands.map((command, index): AppliedCommand => ({ slot, commandId: command.id, outcome: outcomes[index] ?? { kind: "committed" } }));
  if (known === undefined) appliedByOutcomes.set(outcomes, items);
  return items;
}

function onMessage<C extends CommandEnvelope, S>(draft: Draft<C, S>, message: PaxosMessage<C>, nowMs: number): void {
  switch (message.type) {
    case "paxos.commit":
      hint(draft, message.commitIndex, message.from);
      learn(draft, message.entries, true);
      applyReady(draft, nowMs);
      return;
    case "paxos.fetch":
      serveFetch(draft, message.from, message.fromSlot, message.maxSlots);
      return;
    case "paxos.fetch-reply": {
      const fetch = draft.state.fetch;
      if (fetch && fetch.target === message.from) {
        const progressed = message.entries.some((entry) => entry.slot === draft.state.nextSlot);
        // An unhelpful peer is skipped next time; a helpful one may be asked again at once.
        draft.state = { ...draft.state, fetch: null, fetchRotation: draft.state.fetchRotation + (progressed ? 0 : 1) };
      }
      hint(draft, message.commitIndex, "");
      learn(draft, message.entries, true);
      applyReady(draft, nowMs);
      if (draft.state.fetch === null && fetch && fetch.target === message.from) maybeFetch(draft, nowMs, true);
      return;
    }
    case "paxos.snapshot":
      installSnapshot(draft, message, nowMs);
      return;
    default:
      return;
  }
}

function serveFetch<C extends CommandEnvelope, S>(draft: Draft<C, S>, requester: string, fromSlot: number, maxSlots: number): void {
  const state = draft.state;
  if (requester === state.learnerId) return;
  const commitIndex = Math.max(state.commitHint, state.nextSlot);
  if (fromSlot < state.retainedFrom) {
    // The newest snapshot already made serves when the retained log continues it (the requester then
    // fetches the slots after it); only otherwise is a new one built.
    const kept = state.lastSnapshot;
    const served = kept && kept.throughSlot >= state.retainedFrom && kept.throughSlot > fromSlot ? kept : { throughSlot: state.nextSlot, snapshot: state.machine.toSnapshot(state.app) };
    draft.send.push({ type: "paxos.snapshot", from: state.learnerId, to: requester, throughSlot: served.throughSlot, snapshot: served.snapshot, commitIndex });
    return;
  }
  const entries: ChosenEntry<C>[] = [];
  const end = Math.min(state.nextSlot, fromSlot + Math.max(0, Math.min(maxSlots, state.config.maxFetchSlots)));
  let commands = 0;
  for (let slot = fromSlot; slot < end; slot++) {
    const value = state.retained.get(slot)!;
    const count = value.kind === "commands" ? value.commands.length : 0;
    if (entries.length > 0 && commands + count > state.config.maxFetchReplyCommands) break;
    entries.push({ slot, value });
    commands += count;
  }
  draft.send.push({ type: "paxos.fetch-reply", from: state.learnerId, to: requester, entries, commitIndex });
}

function installSnapshot<C extends CommandEnvelope, S>(draft: Draft<C, S>, message: SnapshotMessage, nowMs: number): void {
  const state = draft.state;
  const fetch = state.fetch && state.fetch.target === message.from ? null : state.fetch;
  if (message.throughSlot <= state.nextSlot) {
    draft.state = { ...state, fetch, fetchRotation: state.fetchRotation + (fetch === state.fetch ? 0 : 1) };
    return;
  }
  const parsed = state.machine.fromSnapshot(message.snapshot);
  if (!parsed.ok) {
    draft.state = { ...state, fetch, snapshotsRejected: state.snapshotsRejected + 1, fetchRotation: state.fetchRotation + 1 };
    return;
  }
  const buffered = state.buffered.edit();
  for (const slot of state.buffered.keys()) if (slot < message.throughSlot) buffered.delete(slot);
  // Persisted and kept to serve peers rebuilt from the installed state, as at recovery (see createLearner):
  // the records the log rewrite packs are then the ones a later serve and the background packing find. A
  // learner that keeps nothing (a host) has no use for the rebuilt copy.
  const installed: TakenSnapshot = { throughSlot: message.throughSlot, snapshot: state.takesSnapshots ? state.machine.toSnapshot(parsed.state) : message.snapshot };
  draft.state = {
    ...state,
    app: parsed.state,
    nextSlot: message.throughSlot,
    buffered: buffered.done(),
    retained: SlotWindow.startingAt(message.throughSlot),
    retainedFrom: message.throughSlot,
    commitHint: Math.max(state.commitHint, message.commitIndex, message.throughSlot),
    snapshotSlot: message.throughSlot,
    lastSnapshot: state.takesSnapshots ? installed : null,
    lastProgressAtMs: nowMs,
    fetch,
  };
  draft.snapshot = installed;
  applyReady(draft, nowMs);
}

function isBehind<C extends CommandEnvelope, S>(state: LearnerState<C, S>): boolean {
  return state.commitHint > state.nextSlot || state.buffered.size > 0;
}

/**
 * A snapshot of everything applied so far, taken now instead of at the learner's period: a controller whose
 * acceptor's floor (adopted from its rejoin fences) is above its own last snapshot takes one as soon as its view
 * reaches the floor (controllerNode.ts).
 */
export function snapshotNow<C extends CommandEnvelope, S>(state: LearnerState<C, S>): { readonly state: LearnerState<C, S>; readonly snapshot: TakenSnapshot } {
  const snapshot: TakenSnapshot = { throughSlot: state.nextSlot, snapshot: state.machine.toSnapshot(state.app) };
  return { state: { ...state, snapshotSlot: state.nextSlot, lastSnapshot: snapshot }, snapshot };
}

/**
 * A slot below which this learner knows every slot chosen: what it applied, or the commit index it heard,
 * whichever is higher. A command proposed now cannot be chosen below it (`proposedAfterSlot`).
 */
export function knownChosenBelow<C extends CommandEnvelope, S>(state: LearnerState<C, S>): number {
  return Math.max(state.nextSlot, state.commitHint);
}

/** False when a `tick` would change nothing (the learner is not behind): its actor may skip it. */
export function learnerWantsTick<C extends CommandEnvelope, S>(state: LearnerState<C, S>): boolean {
  return isBehind(state);
}

function maybeFetch<C extends CommandEnvelope, S>(draft: Draft<C, S>, nowMs: number, immediately = false): void {
  let state = draft.state;
  if (!isBehind(state)) return;
  if (state.fetch) {
    if (nowMs - state.fetch.sentAtMs < state.config.fetchTimeoutMs) return;
    state = { ...state, fetch: null, fetchRotation: state.fetchRotation + 1 };
  } else if (!immediately && nowMs - state.lastProgressAtMs < state.config.catchUpAfterMs) {
    return;
  }
  const peers = state.config.acceptorIds.filter((id) => id !== state.learnerId);
  if (peers.length === 0) {
    draft.state = state;
    return;
  }
  const leaderIndex = peers.indexOf(state.leaderHint);
  const target = peers[(Math.max(0, leaderIndex) + state.fetchRotation) % peers.length]!;
  draft.send.push({ type: "paxos.fetch", from: state.learnerId, to: target, fromSlot: state.nextSlot, maxSlots: state.config.maxFetchSlots });
  draft.state = { ...state, fetch: { target, fromSlot: state.nextSlot, sentAtMs: nowMs } };
}

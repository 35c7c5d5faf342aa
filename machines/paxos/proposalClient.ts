/**
 * The client API other actors use to change the replicated state: submit a
 * command, learn its outcome. Pure, like the Paxos cores.
 *
 * A submitted command is sent (as `paxos.propose`) to the controller believed
 * to lead; a refusal redirects it to the hinted leader, silence retries it
 * after a backoff, at most `maxProposeAttempts` times in all. A proposer
 * refuses every proposal while it does not lead, so a controller that starts
 * leading holds none sent to it before: a newly hinted leader gets at once
 * every outstanding proposal not sent to it as leader (`onLeaderHint`), and a
 * lost resend is retried after the first backoff. A timed retry goes to the
 * known leader, never avoided; when the leader already had the proposal and
 * said nothing, every other controller is asked too, to pass it on to the
 * leader, and their refusals name the leader if the hint is stale
 * (`retryTargets`). So a proposal costs at most `maxProposeAttempts` timed
 * attempts of one message per controller each and `maxRedirectsPerAttempt`
 * redirects or resends per attempt. The outcome comes
 * from this node's own learner (`applied` input): the slot it was committed
 * at, or the deterministic rejection reason. Retries are safe because command
 * ids are idempotent in the replicated state. After the last attempt the
 * client gives up with "no outcome": the command may still be applied later
 * (a client that must know resubmits the same id).
 */
import type { PaxosMessage, ProposeRefusal } from "./messages.ts";
import type { AppliedCommand } from "./replicatedStateMachine.ts";
import type { CommandEnvelope } from "./values.ts";

export interface ProposalClientConfig {
  readonly controllerIds: readonly string[];
  readonly maxOutstandingProposals: number;
  readonly maxProposeAttempts: number;
  /** Wait before the first retry; doubles per attempt up to `maxRetryDelayMs`. */
  readonly retryAfterMs: number;
  readonly maxRetryDelayMs: number;
}

export const defaultProposalClientLimits = {
  maxOutstandingProposals: 1_024,
  maxProposeAttempts: 6,
  retryAfterMs: 200,
  maxRetryDelayMs: 2_000,
} as const;

export type ProposalOutcome =
  | { readonly commandId: string; readonly kind: "committed"; readonly slot: number }
  | { readonly commandId: string; readonly kind: "rejected"; readonly slot: number; readonly reason: string }
  /** Not known to be applied after every attempt; it may still be, later. */
  | { readonly commandId: string; readonly kind: "no-outcome"; readonly reason: string };

/** Redirects followed at once between two timed attempts; more wait for the retry (two nodes may name each other). */
export const maxRedirectsPerAttempt = 2;

export interface OutstandingProposal<C extends CommandEnvelope> {
  readonly command: C;
  readonly attempts: number;
  readonly redirects: number;
  /** Where the last attempt or redirect went. */
  readonly target: string;
  /**
   * The target was the hinted leader when the proposal went to it and has not answered `not-leader`
   * since: the proposal is in a leader's hands. False for one sent before its target was known to lead.
   */
  readonly withLeader: boolean;
  readonly retryAtMs: number;
  /**
   * Resent to a newly hinted leader since the last tick: the next tick brings the timed retry to at most
   * `retryAfterMs` away (a hint carries no time), so a lost resend costs the first backoff, not the one
   * the proposal had reached. Not for the last attempt: the wait before giving up stays whole.
   */
  readonly resentToNewLeader: boolean;
}

export interface ProposalClientState<C extends CommandEnvelope> {
  readonly clientId: string;
  readonly config: ProposalClientConfig;
  readonly outstanding: ReadonlyMap<string, OutstandingProposal<C>>;
  readonly leaderHint: string;
  readonly rotation: number;
}

export type ProposalClientInput<C extends CommandEnvelope> =
  | { readonly type: "submit"; readonly command: C; readonly nowMs: number }
  /** What this node's learner applied (ControllerStep.applied / LearnerStep.applied). */
  | { readonly type: "applied"; readonly applied: readonly AppliedCommand[]; readonly nowMs: number }
  | { readonly type: "message"; readonly message: PaxosMessage<C>; readonly nowMs: number }
  /** Who leads, when the node knows (a controller's Leadership, a commit's sender). */
  | { readonly type: "leader-hint"; readonly leaderId: string }
  | { readonly type: "tick"; readonly nowMs: number };

export interface ProposalClientStep<C extends CommandEnvelope> {
  readonly state: ProposalClientState<C>;
  /** The client persists nothing, so these may go at once. */
  readonly send: readonly PaxosMessage<C>[];
  readonly outcomes: readonly ProposalOutcome[];
}

export function createProposalClient<C extends CommandEnvelope>(clientId: string, config: ProposalClientConfig): ProposalClientState<C> {
  return { clientId, config, outstanding: new Map(), leaderHint: "", rotation: 0 };
}

interface Draft<C extends CommandEnvelope> {
  state: ProposalClientState<C>;
  send: PaxosMessage<C>[];
  outcomes: ProposalOutcome[];
}

export function stepProposalClient<C extends CommandEnvelope>(state: ProposalClientState<C>, input: ProposalClientInput<C>): ProposalClientStep<C> {
  const draft: Draft<C> = { state, send: [], outcomes: [] };
  switch (input.type) {
    case "submit":
      submit(draft, input.command, input.nowMs);
      break;
    case "applied":
      onApplied(draft, input.applied);
      break;
    case "message":
      if (input.message.type === "paxos.propose-reply") onRefusal(draft, input.message.from, input.message.commandId, input.message.refusal, input.message.leaderHint, input.nowMs);
      break;
    case "leader-hint":
      onLeaderHint(draft, input.leaderId);
      break;
    case "tick":
      onTick(draft, input.nowMs);
      break;
  }
  return { state: draft.state, send: draft.send, outcomes: draft.outcomes };
}

function retryDelayMs(config: ProposalClientConfig, attempts: number): number {
  return Math.min(config.maxRetryDelayMs, config.retryAfterMs * 2 ** Math.max(0, attempts - 1));
}

/** The next controller in rotation other than `avoid` (unless it is the only one). */
function rotate<C extends CommandEnvelope>(draft: Draft<C>, avoid: string): string {
  const state = draft.state;
  const ids = state.config.controllerIds;
  const target = ids[state.rotation % ids.length]!;
  draft.state = { ...state, rotation: state.rotation + 1 };
  return target === avoid && ids.length > 1 ? rotate(draft, avoid) : target;
}

/**
 * Where a timed retry goes: the known leader, never avoided (it may be the only controller that can
 * commit the proposal). If the leader already had the proposal and stayed silent, the hint may be stale
 * (a dead leader refuses nothing), or only this node's way to the leader may be cut (one way: it hears the
 * leader, the leader does not hear it): every other controller is asked as well, to pass the proposal on
 * to the leader it knows (the relay mark), and a refusal names that leader (`onRefusal`). All of them,
 * since which one still reaches the leader is unknown: one in rotation left a node behind a one-way cut
 * without a commit for six seconds under 20% loss (whole-system fuzz seed 660240). Without a hint, the
 * next controller other than the last target.
 */
function retryTargets<C extends CommandEnvelope>(draft: Draft<C>, proposal: OutstandingProposal<C>): { target: string; alsoTo: readonly string[] } {
  const leader = draft.state.leaderHint;
  if (leader === "") return { target: rotate(draft, proposal.target), alsoTo: [] };
  if (proposal.target !== leader || !proposal.withLeader) return { target: leader, alsoTo: [] };
  return { target: leader, alsoTo: draft.state.config.controllerIds.filter((id) => id !== leader) };
}

/** Sends the proposal to `target` (and `alsoTo`, unless empty); the timed retry is due after the backoff of attempt `attempts`. */
function sendAttempt<C extends CommandEnvelope>(draft: Draft<C>, command: C, attempts: number, redirects: number, target: string, alsoTo: readonly string[], nowMs: number): void {
  const state = draft.state;
  draft.send.push({ type: "paxos.propose", from: state.clientId, to: target, command });
  // The leader stayed silent: the other controllers also pass it on to the leader they know, in case only our way to it is cut.
  for (const other of alsoTo) draft.send.push({ type: "paxos.propose", from: state.clientId, to: other, command, relay: true });
  const outstanding = new Map(state.outstanding);
  const withLeader = target === state.leaderHint;
  outstanding.set(command.id, { command, attempts, redirects, target, withLeader, retryAtMs: nowMs + retryDelayMs(state.config, attempts), resentToNewLeader: false });
  draft.state = { ...state, outstanding };
}

function submit<C extends CommandEnvelope>(draft: Draft<C>, command: C, nowMs: number): void {
  const state = draft.state;
  if (state.outstanding.has(command.id)) return;
  if (state.outstanding.size >= state.config.maxOutstandingProposals) {
    draft.outcomes.push({ commandId: command.id, kind: "no-outcome", reason: `more than ${state.config.maxOutstandingProposals} proposals outstanding; not sent` });
    return;
  }
  if (state.config.controllerIds.length === 0) {
    draft.outcomes.push({ commandId: command.id, kind: "no-outcome", reason: "no controllers configured; not sent" });
    return;
  }
  sendAttempt(draft, command, 1, 0, state.leaderHint !== "" ? state.leaderHint : rotate(draft, ""), [], nowMs);
}

function onApplied<C extends CommandEnvelope>(draft: Draft<C>, applied: readonly AppliedCommand[]): void {
  let outstanding: Map<string, OutstandingProposal<C>> | null = null;
  for (const item of applied) {
    if (!(outstanding ?? draft.state.outstanding).has(item.commandId)) continue;
    outstanding ??= new Map(draft.state.outstanding);
    outstanding.delete(item.commandId);
    const outcome = item.outcome;
    const slot = outcome.kind === "duplicate" ? outcome.firstSlot : item.slot;
    const first = outcome.kind === "duplicate" ? outcome.first : outcome;
    draft.outcomes.push(first.kind === "committed" ? { commandId: item.commandId, kind: "committed", slot } : { commandId: item.commandId, kind: "rejected", slot, reason: first.reason });
  }
  if (outstanding) draft.state = { ...draft.state, outstanding };
}

function validHint<C extends CommandEnvelope>(state: ProposalClientState<C>, leaderHint: string): boolean {
  return leaderHint !== "" && state.config.controllerIds.includes(leaderHint);
}

function onRefusal<C extends CommandEnvelope>(draft: Draft<C>, from: string, commandId: string, refusal: ProposeRefusal, leaderHint: string, nowMs: number): void {
  const proposal = draft.state.outstanding.get(commandId);
  if (!proposal) return;
  if (from !== proposal.target) {
    // The other controller of a timed retry, or an earlier target answering late: it speaks for no leader
    // the client relies on. Only a leader it names other than the target is news, followed as a redirect.
    if (refusal === "not-leader" && validHint(draft.state, leaderHint) && leaderHint !== proposal.target && proposal.redirects < maxRedirectsPerAttempt) {
      draft.state = { ...draft.state, leaderHint };
      sendAttempt(draft, proposal.command, proposal.attempts, proposal.redirects + 1, leaderHint, [], nowMs);
    }
    return;
  }
  // A leader this client does not list (a controller added since its config was written): the refusing controller
  // knows it and, asked with the relay mark, passes the proposal on to it once. Bounded like a redirect.
  if (refusal === "not-leader" && leaderHint !== "" && !draft.state.config.controllerIds.includes(leaderHint) && proposal.redirects < maxRedirectsPerAttempt) {
    draft.send.push({ type: "paxos.propose", from: draft.state.clientId, to: proposal.target, command: proposal.command, relay: true });
    const outstanding = new Map(draft.state.outstanding);
    outstanding.set(commandId, { ...proposal, redirects: proposal.redirects + 1, withLeader: false });
    draft.state = { ...draft.state, outstanding };
    return;
  }
  const hinted = validHint(draft.state, leaderHint) && leaderHint !== proposal.target ? leaderHint : "";
  draft.state = { ...draft.state, leaderHint: hinted !== "" ? hinted : draft.state.leaderHint === proposal.target ? "" : draft.state.leaderHint };
  if (refusal === "not-leader" && hinted !== "" && proposal.redirects < maxRedirectsPerAttempt) {
    sendAttempt(draft, proposal.command, proposal.attempts, proposal.redirects + 1, hinted, [], nowMs);
    return;
  }
  // Otherwise (overloaded, or no better target known) the scheduled retry stands. A proposal its target
  // refused as not leading is in no leader's hands: should the target lead later, it gets the proposal again.
  if (refusal === "not-leader" && proposal.withLeader) {
    const outstanding = new Map(draft.state.outstanding);
    outstanding.set(commandId, { ...proposal, withLeader: false });
    draft.state = { ...draft.state, outstanding };
  }
}

/**
 * A newly known leader gets at once every proposal not already in its hands as leader: those waiting on
 * another controller (it may be dead: a dead leader refuses nothing), and those sent to it before it led,
 * which it refused (a proposer refuses all while it does not lead) whether or not the refusal arrived.
 * The timed retry would only reach the new leader after the backoff. Such a resend counts as a redirect,
 * so it is bounded per attempt like one.
 */
function onLeaderHint<C extends CommandEnvelope>(draft: Draft<C>, leaderId: string): void {
  const state = draft.state;
  if (leaderId === "" || leaderId === state.leaderHint || !state.config.controllerIds.includes(leaderId)) return;
  draft.state = { ...state, leaderHint: leaderId };
  let outstanding: Map<string, OutstandingProposal<C>> | null = null;
  for (const proposal of state.outstanding.values()) {
    if ((proposal.target === leaderId && proposal.withLeader) || proposal.redirects >= maxRedirectsPerAttempt) continue;
    draft.send.push({ type: "paxos.propose", from: state.clientId, to: leaderId, command: proposal.command });
    outstanding ??= new Map(state.outstanding);
    outstanding.set(proposal.command.id, { ...proposal, target: leaderId, withLeader: true, redirects: proposal.redirects + 1, resentToNewLeader: true });
  }
  if (outstanding) draft.state = { ...draft.state, outstanding };
}

/** Brings the timed retry of every proposal resent to a new leader since the last tick to at most `retryAfterMs` away (see `resentToNewLeader`). */
function settleResends<C extends CommandEnvelope>(draft: Draft<C>, nowMs: number): void {
  const config = draft.state.config;
  let outstanding: Map<string, OutstandingProposal<C>> | null = null;
  for (const proposal of draft.state.outstanding.values()) {
    if (!proposal.resentToNewLeader) continue;
    const retryAtMs = proposal.attempts < config.maxProposeAttempts ? Math.min(proposal.retryAtMs, nowMs + config.retryAfterMs) : proposal.retryAtMs;
    outstanding ??= new Map(draft.state.outstanding);
    outstanding.set(proposal.command.id, { ...proposal, retryAtMs, resentToNewLeader: false });
  }
  if (outstanding) draft.state = { ...draft.state, outstanding };
}

function onTick<C extends CommandEnvelope>(draft: Draft<C>, nowMs: number): void {
  settleResends(draft, nowMs);
  for (const proposal of draft.state.outstanding.values()) {
    if (nowMs < proposal.retryAtMs) continue;
    if (proposal.attempts >= draft.state.config.maxProposeAttempts) {
      const outstanding = new Map(draft.state.outstanding);
      outstanding.delete(proposal.command.id);
      draft.state = { ...draft.state, outstanding };
      draft.outcomes.push({ commandId: proposal.command.id, kind: "no-outcome", reason: `no outcome after ${proposal.attempts} attempts; it may still be applied` });
    } else {
      const { target, alsoTo } = retryTargets(draft, proposal);
      sendAttempt(draft, proposal.command, proposal.attempts + 1, 0, target, alsoTo, nowMs);
    }
  }
}

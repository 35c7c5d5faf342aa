/**
 * The client API other actors use to change the view: `propose(command,
 * done)` sends the command to the controller believed to lead and calls
 * `done` once with its outcome: committed at slot N, rejected at slot N with
 * the view's reason, or no-outcome after the bounded retries of
 * machines/paxos/proposalClient.ts. Each new command is stamped with a slot
 * below which everything was already chosen (`proposedAfterSlot`), so the
 * client's own retries are applied at most once however late they reach the
 * log: the view refuses a retry it can no longer deduplicate
 * (machines/view/applyViewCommands.ts). Resubmitting an id after an outcome is
 * a new proposal, deduplicated while the view remembers the id (the last
 * maxRememberedCommands ids).
 *
 * The outcome is what this node's own learner applied, so the node that
 * embeds the client (a controller or a host learner) feeds it `applied`,
 * leader hints and the `paxos.propose-reply` refusals addressed to it.
 */
import { createActorHost, type ActorHost } from "../actorHost.ts";
import { validate } from "../codec/schema.ts";
import type { Clock, TimerId } from "../ports/clock.ts";
import type { NodePorts } from "../ports/nodePorts.ts";
import type { ProposeReplyMessage } from "../../machines/paxos/messages.ts";
import { createProposalClientMachine, proposalClientShortcut } from "../../machines/paxos/paxosMachines.ts";
import {
  defaultProposalClientLimits,
  type ProposalClientConfig,
  type ProposalClientInput,
  type ProposalClientStep,
  type ProposalOutcome,
} from "../../machines/paxos/proposalClient.ts";
import type { AppliedCommand } from "../../machines/paxos/replicatedStateMachine.ts";
import type { ViewCommand } from "../../machines/view/viewCommands.ts";
import { viewCommandSchema } from "../view/viewSchemas.ts";
import type { ViewPaxosMessage } from "./paxosMessages.ts";

export type ProposalClientLimits = Omit<ProposalClientConfig, "controllerIds">;

export type ProposeResult = { readonly ok: true } | { readonly ok: false; readonly error: string };

export type OutcomeCallback = (outcome: ProposalOutcome) => void;

export interface ProposalClientActorOptions {
  readonly controllerIds: readonly string[];
  readonly limits?: Partial<ProposalClientLimits>;
  /** How often the client looks for proposals due for a retry, while it has any. Default a quarter of `retryAfterMs`. */
  readonly tickIntervalMs?: number;
  readonly send: (message: ViewPaxosMessage) => void;
  /**
   * A slot below which everything was chosen already, as this node knows now (its learner's applied
   * slots or the commit index it heard; 0 when it knows nothing yet). Stamped on each new command as
   * `proposedAfterSlot`, so that a retry the view can no longer deduplicate is refused rather than
   * applied twice (machines/view/applyViewCommands.ts). Absent or 0: commands go as given.
   */
  readonly chosenBelow?: () => number;
}

export interface ProposalClientActor {
  /**
   * Sends `command` (once per id while it is outstanding) and calls `done` with its outcome, never
   * inside this call. A command the wire would refuse is refused here, synchronously.
   */
  propose(command: ViewCommand, done?: OutcomeCallback): ProposeResult;
  /** What this node's learner applied. */
  applied(applied: readonly AppliedCommand[]): void;
  /** A `paxos.propose-reply` addressed to this node. */
  receive(message: ProposeReplyMessage): void;
  /** The node learned who leads. */
  leaderHint(leaderId: string): void;
  /** Outcome callbacks still waiting. */
  readonly waiting: number;
  stop(): void;
}

/** One machine for every client actor; each actor carries out the effects left in its snapshots. */
const proposalClientMachine = createProposalClientMachine<ViewCommand>();

type ClientOutput = Omit<ProposalClientStep<ViewCommand>, "state">;

export function startProposalClient(
  ports: Pick<NodePorts, "nodeId" | "clock" | "network" | "log" | "metrics">,
  options: ProposalClientActorOptions,
): ProposalClientActor {
  const config: ProposalClientConfig = { ...defaultProposalClientLimits, ...options.limits, controllerIds: [...options.controllerIds] };
  const tickIntervalMs = options.tickIntervalMs ?? Math.max(1, Math.floor(config.retryAfterMs / 4));
  const clock: Clock = ports.clock;
  const callbacks = new Map<string, OutcomeCallback[]>();
  let tickTimer: TimerId | undefined;
  let stopped = false;
  let actorsCreated = 0;
  let lastHint = "";
  let lastHintAtMs = Number.NEGATIVE_INFINITY;

  const carryOut = (output: ClientOutput): void => {
    for (const message of output.send) options.send(message);
    for (const outcome of output.outcomes) {
      const waiting = callbacks.get(outcome.commandId);
      if (!waiting) continue;
      callbacks.delete(outcome.commandId);
      for (const done of waiting) done(outcome);
    }
  };

  const host: ActorHost<typeof proposalClientMachine> = createActorHost(proposalClientMachine, ports, {
    name: `proposal-client/${ports.nodeId}`,
    kind: "proposal-client",
    input: { clientId: ports.nodeId, config },
    limits: { maxMailboxDepth: config.maxOutstandingProposals * 4 },
    shortcut: proposalClientShortcut,
    onActorCreated: () => {
      // After an error restart the new actor knows nothing of what was outstanding.
      if (actorsCreated++ > 0) failAll("the proposal client restarted after an error; the command may still be applied");
    },
  });
  let lastContext: unknown;
  host.onSnapshot((snapshot) => {
    if (snapshot.context === lastContext) return;
    lastContext = snapshot.context;
    carryOut(snapshot.context.output);
  });
  host.start();

  function failAll(reason: string): void {
    const waiting = [...callbacks];
    callbacks.clear();
    for (const [commandId, list] of waiting) for (const done of list) clock.setTimeout(() => done({ commandId, kind: "no-outcome", reason }), 0);
  }

  function send(input: ProposalClientInput<ViewCommand>): void {
    if (!host.send(input) && input.type === "submit") {
      const waiting = callbacks.get(input.command.id);
      callbacks.delete(input.command.id);
      for (const done of waiting ?? []) clock.setTimeout(() => done({ commandId: input.command.id, kind: "no-outcome", reason: "the client's mailbox is full; not sent" }), 0);
    }
  }

  function tick(): void {
    tickTimer = undefined;
    if (stopped || callbacks.size === 0) return;
    send({ type: "tick", nowMs: clock.now() });
    tickTimer = clock.setTimeout(tick, tickIntervalMs);
  }

  return {
    propose(given, done) {
      if (stopped) return { ok: false, error: "the proposal client is stopped" };
      const chosenBelow = options.chosenBelow?.() ?? 0;
      const command = given.proposedAfterSlot === undefined && chosenBelow > 0 ? { ...given, proposedAfterSlot: chosenBelow } : given;
      const checked = validate(viewCommandSchema, command, "command");
      if (!checked.ok) return { ok: false, error: checked.error };
      const waiting = callbacks.get(command.id);
      if (!waiting && callbacks.size >= config.maxOutstandingProposals) {
        return { ok: false, error: `more than ${config.maxOutstandingProposals} proposals outstanding` };
      }
      if (waiting) {
        if (done) waiting.push(done);
        return { ok: true };
      }
      callbacks.set(command.id, done ? [done] : []);
      send({ type: "submit", command, nowMs: clock.now() });
      tickTimer ??= clock.setTimeout(tick, tickIntervalMs);
      return { ok: true };
    },
    applied(applied) {
      if (stopped || callbacks.size === 0) return;
      const relevant = applied.filter((item) => callbacks.has(item.commandId));
      if (relevant.length > 0) send({ type: "applied", applied: relevant, nowMs: clock.now() });
    },
    receive(message) {
      if (!stopped && callbacks.has(message.commandId)) send({ type: "message", message, nowMs: clock.now() });
    },
    leaderHint(leaderId) {
      if (stopped || leaderId === "") return;
      // Commits repeat the same hint many times a second: pass it on when it changes, and now and then
      // (the core forgets a hint that a refusal contradicted).
      const nowMs = clock.now();
      if (leaderId === lastHint && nowMs - lastHintAtMs < config.retryAfterMs) return;
      lastHint = leaderId;
      lastHintAtMs = nowMs;
      send({ type: "leader-hint", leaderId });
    },
    get waiting() {
      return callbacks.size;
    },
    stop() {
      if (stopped) return;
      stopped = true;
      if (tickTimer !== undefined) clock.clearTimeout(tickTimer);
      host.dispose();
      callbacks.clear();
    },
  };
}

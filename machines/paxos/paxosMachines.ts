/**
 * Thin xstate v5 wrappers around the pure cores, so the actor host can run
 * them like every other machine (and tests can step them with `transition()`).
 * Each machine keeps the core state in `context.core`; every event is one core
 * step, whose effects are left in `context.output` and emitted as a
 * `paxos.output` event. The contract of stepResult.ts applies to the output:
 * persist (or rewrite) and sync before sending.
 *
 * No timers live in the machines: the actor feeds `tick` events with the
 * node's clock reading, which keeps restarts simple (nothing to restore,
 * statelyai/xstate#5331) and every step a pure function of its input.
 */
import { setup, type EventObject } from "xstate";
import { recoverAcceptor, stepAcceptor, type AcceptorInput, type AcceptorRecovery, type AcceptorState } from "./acceptor.ts";
import { createControllerNode, stepControllerNode, type ControllerCreation, type ControllerInput, type ControllerNodeState } from "./controllerNode.ts";
import { createLearner, stepLearner, type LearnerCreation, type LearnerInput, type LearnerState } from "./learner.ts";
import {
  createProposalClient,
  stepProposalClient,
  type ProposalClientConfig,
  type ProposalClientInput,
  type ProposalClientState,
} from "./proposalClient.ts";
import { createProposer, stepProposer, type ProposerCreation, type ProposerInput, type ProposerState, type ProposerSurroundings } from "./proposer.ts";
import type { CommandEnvelope } from "./values.ts";

export interface CoreContext<TState, TOutput> {
  readonly core: TState;
  /** Effects of the latest step (or of the start), for the actor to carry out. */
  readonly output: TOutput;
  readonly steps: number;
}

export interface CoreOutputEvent<TOutput> {
  readonly type: "paxos.output";
  readonly output: TOutput;
}

type CoreStep<TState, TEvent, TOutput> = (state: TState, event: TEvent) => { readonly state: TState; readonly output: TOutput };

/**
 * The context after one event: what a core machine's one transition assigns, and what an actor host's
 * `shortcut` returns to take the event past xstate (no macrostep per event). Both go through here, so
 * a shortcut cannot differ from its machine.
 */
export function advanceCore<TState, TEvent, TOutput>(step: CoreStep<TState, TEvent, TOutput>, context: CoreContext<TState, TOutput>, event: TEvent): CoreContext<TState, TOutput> {
  const next = step(context.core, event);
  return { core: next.state, output: next.output, steps: context.steps + 1 };
}

function pureCoreMachine<TState, TEvent extends EventObject, TOutput, TInput>(
  id: string,
  start: (input: TInput) => { readonly state: TState; readonly output: TOutput },
  step: CoreStep<TState, TEvent, TOutput>,
) {
  const machineSetup = setup({
    types: {
      context: {} as CoreContext<TState, TOutput>,
      events: {} as TEvent,
      input: {} as TInput,
      emitted: {} as CoreOutputEvent<TOutput>,
    },
  });
  const stepCore = machineSetup.assign(({ context, event }) => advanceCore(step, context, event));
  const emitOutput = machineSetup.emit(({ context }) => ({ type: "paxos.output" as const, output: context.output }));
  return machineSetup.createMachine({
    id,
    context: ({ input }) => {
      const started = start(input);
      return { core: started.state, output: started.output, steps: 0 };
    },
    // TypeScript cannot resolve the wildcard transition against a generic event type; the actions above are typed.
    on: { "*": { actions: [stepCore, emitOutput] } } as never,
  });
}

function withoutState<T extends { readonly state: unknown }>(result: T): Omit<T, "state"> {
  const { state: _state, ...rest } = result;
  return rest;
}

export function createAcceptorMachine<C extends CommandEnvelope>() {
  return pureCoreMachine(
    "paxosAcceptor",
    (input: AcceptorRecovery<C>) => {
      const started = recoverAcceptor(input);
      return { state: started.state, output: withoutState(started) };
    },
    (state: AcceptorState<C>, event: AcceptorInput<C>) => {
      const next = stepAcceptor(state, event);
      return { state: next.state, output: withoutState(next) };
    },
  );
}

/** The proposer's events carry what it needs to know about its node. */
export type ProposerMachineEvent<C extends CommandEnvelope> = ProposerInput<C> & { readonly surroundings: ProposerSurroundings };

export function createProposerMachine<C extends CommandEnvelope>() {
  return pureCoreMachine(
    "paxosProposer",
    (input: ProposerCreation<C>) => ({
      state: createProposer(input),
      output: { persist: [], sendAfterSync: [], chosen: [], refused: [], becameLeader: false, lostLeadership: false } as Omit<ReturnType<typeof stepProposer<C>>, "state">,
    }),
    (state: ProposerState<C>, event: ProposerMachineEvent<C>) => {
      const next = stepProposer(state, event, event.surroundings);
      return { state: next.state, output: withoutState(next) };
    },
  );
}

/** The learner machine's step; also its actor's shortcut (with advanceCore). */
export function learnerCoreStep<C extends CommandEnvelope, S>(state: LearnerState<C, S>, event: LearnerInput<C>) {
  const next = stepLearner(state, event);
  return { state: next.state, output: withoutState(next) };
}

export function createLearnerMachine<C extends CommandEnvelope, S>() {
  return pureCoreMachine(
    "paxosLearner",
    (input: LearnerCreation<C, S>) => ({
      state: createLearner(input),
      output: { sendAfterSync: [], applied: [], learnedFromPeers: [], snapshot: null, droppedMessage: null } as Omit<ReturnType<typeof stepLearner<C, S>>, "state">,
    }),
    learnerCoreStep<C, S>,
  );
}

/** The controller machine's step; also its actor's shortcut (with advanceCore). */
export function controllerCoreStep<C extends CommandEnvelope, S>(state: ControllerNodeState<C, S>, event: ControllerInput<C>) {
  const next = stepControllerNode(state, event);
  return { state: next.state, output: withoutState(next) };
}

export function createControllerMachine<C extends CommandEnvelope, S>() {
  return pureCoreMachine(
    "paxosController",
    (input: ControllerCreation<C, S>) => {
      const started = createControllerNode(input);
      return {
        state: started.state,
        output: { persist: started.persist, rewrite: null, rewriteInstallsPeerSnapshot: false, sendAfterSync: [], applied: [], leadership: null, refused: [], droppedMessage: null } as Omit<ReturnType<typeof stepControllerNode<C, S>>, "state">,
      };
    },
    controllerCoreStep<C, S>,
  );
}

export interface ProposalClientMachineInput {
  readonly clientId: string;
  readonly config: ProposalClientConfig;
}

function proposalClientCoreStep<C extends CommandEnvelope>(state: ProposalClientState<C>, event: ProposalClientInput<C>) {
  const next = stepProposalClient(state, event);
  return { state: next.state, output: withoutState(next) };
}

type ProposalClientContext<C extends CommandEnvelope> = CoreContext<ProposalClientState<C>, ReturnType<typeof proposalClientCoreStep<C>>["output"]>;

/** The proposal client machine's one transition, for an actor host's `shortcut` (two xstate macrosteps fewer per command: submit and applied). */
export function proposalClientShortcut<C extends CommandEnvelope>(context: ProposalClientContext<C>, _state: unknown, event: ProposalClientInput<C>): ProposalClientContext<C> {
  return advanceCore(proposalClientCoreStep<C>, context, event);
}

export function createProposalClientMachine<C extends CommandEnvelope>() {
  return pureCoreMachine(
    "paxosProposalClient",
    (input: ProposalClientMachineInput) => ({
      state: createProposalClient<C>(input.clientId, input.config),
      output: { send: [], outcomes: [] } as Omit<ReturnType<typeof stepProposalClient<C>>, "state">,
    }),
    proposalClientCoreStep<C>,
  );
}

/**
 * The view on a node that is not a controller (a host, a tool, a test
 * client): the pure learner (machines/paxos/learner.ts, in its xstate
 * wrapper) fed with
 *
 * - the commit broadcast on `view.commit` (chosen values and the leader's
 *   commit index, at least every `commitBeaconIntervalMs` even when idle);
 * - catch-up: when it is behind, the learner's `paxos.fetch` goes out as a
 *   request on `view.fetch`; the controller it names answers on the inbox
 *   with the slots it retains or a snapshot of its view;
 * - `paxos.<nodeId>`, for answers addressed to this node (proposal
 *   refusals for its client);
 * - a `tick` every `tickIntervalMs`.
 *
 * A host learner keeps nothing on disk: after a restart it fetches a
 * snapshot. It applies only chosen values, so its view is always one the
 * controllers' views pass through.
 */
import type { ContextFrom } from "xstate";
import { createActorHost, type ActorHost } from "../actorHost.ts";
import { decodeCounted, type RejectionCounter } from "../codec/rejectionCounter.ts";
import type { TimerId } from "../ports/clock.ts";
import type { NetMessage, Subscription } from "../ports/network.ts";
import type { NodePorts } from "../ports/nodePorts.ts";
import { clusterSubjects } from "../subjects.ts";
import type { PaxosConfig } from "../../machines/paxos/config.ts";
import { knownChosenBelow, learnerWantsTick, type LearnerCreation, type LearnerInput, type LearnerState, type LearnerStep } from "../../machines/paxos/learner.ts";
import type { PaxosMessageType } from "../../machines/paxos/messages.ts";
import { advanceCore, createLearnerMachine, learnerCoreStep } from "../../machines/paxos/paxosMachines.ts";
import type { AppliedCommand, ReplicatedStateMachine } from "../../machines/paxos/replicatedStateMachine.ts";
import type { ViewCommand } from "../../machines/view/viewCommands.ts";
import { viewStateMachine } from "../../machines/view/viewStateMachine.ts";
import type { View } from "../../machines/view/viewTypes.ts";
import { paxosDroppedMetric } from "./controllerActor.ts";
import { encodePaxosMessage, paxosMessageFromEnvelope, paxosWireRegistry, type ViewPaxosMessage } from "./paxosMessages.ts";
import { PaxosTransport } from "./paxosTransport.ts";
import { ChunkedTransfer, type ChunkedTransferSettings } from "./chunkedTransfer.ts";
import { startProposalClient, type OutcomeCallback, type ProposalClientActor, type ProposalClientLimits, type ProposeResult } from "./proposalClientActor.ts";

export type ViewLearnerState = LearnerState<ViewCommand, View>;

export interface LearnerStepReport {
  readonly nodeId: string;
  readonly nowMs: number;
  readonly beforeSlot: number;
  readonly state: ViewLearnerState;
  readonly applied: readonly AppliedCommand[];
}

export interface LearnerObserver {
  stepped?(report: LearnerStepReport): void;
}

export interface LearnerActorOptions {
  /** The cluster's Paxos config: the controllers to fetch from, and the catch-up timings. */
  readonly config: PaxosConfig;
  readonly rejections: RejectionCounter;
  /** Default: a fifth of the heartbeat interval. */
  readonly tickIntervalMs?: number;
  readonly client?: Partial<ProposalClientLimits>;
  /** Chunked transfer settings; the defaults suit production (see ChunkedTransferSettings). */
  readonly transfer?: ChunkedTransferSettings;
  readonly observer?: LearnerObserver;
  /** Work shared by the learners of one process (the simulator's hosts); each learner does it alone without. */
  readonly sharing?: LearnerSharing;
  /**
   * Default false: the learner ticks only while behind (from the step that left it behind until a
   * tick finds it caught up), on the grid of `tickIntervalMs` from its start; a tick does nothing
   * otherwise, and at 1,000 simulated hosts idle ticks were a fifth of the simulator's steady-state
   * CPU. True: it ticks every `tickIntervalMs` from its start (how scenario logs were recorded
   * before 2026-11-25; one, controller-torn-write, moved by under 0.1 ms when the default changed).
   */
  readonly idleTicks?: boolean;
}

/**
 * In the simulator every host's learner receives the same commit broadcast
 * (one buffer handed to every subscriber) and applies it to the same view:
 * decoding it once and applying it once (machines/paxos/sharedApply.ts) gives
 * each learner exactly what it would have built alone, as one shared
 * immutable object instead of a copy per host.
 */
export interface LearnerSharing {
  /** The view machine, usually wrapped by `sharedApplyMachine`. */
  readonly machine: ReplicatedStateMachine<View, ViewCommand>;
  /** Valid `paxos.commit` messages by the buffer they were decoded from. */
  readonly decodedCommits: WeakMap<Uint8Array, ViewPaxosMessage>;
}

export interface LearnerActor {
  readonly nodeId: string;
  view(): View;
  appliedSlots(): number;
  propose(command: ViewCommand, done?: OutcomeCallback): ProposeResult;
  onApplied(listener: (applied: readonly AppliedCommand[], view: View, appliedSlots: number) => void): Subscription;
  /** The core's state, for inspection and tests. */
  core(): ViewLearnerState | undefined;
  stop(): void;
}

type LearnerOutput = Omit<LearnerStep<ViewCommand, View>, "state">;

const learnerMachine = createLearnerMachine<ViewCommand, View>();

const catchUpAnswerTypes: readonly PaxosMessageType[] = ["paxos.fetch-reply", "paxos.snapshot"];

type LearnerContext = ContextFrom<typeof learnerMachine>;

/**
 * The learner machine has one state and turns every event into one core step (an assign) and an
 * emit nobody here listens to: the actor host's shortcut takes that step itself, so the learner of
 * each of 1,000 hosts costs no xstate transition per commit. Events keep their place in the mailbox,
 * so the order of events is as before. Most ticks find the learner up to date, where the step would
 * change nothing: those leave the context as it is.
 */
function stepPastXstate(context: LearnerContext, _state: unknown, event: LearnerInput<ViewCommand>): LearnerContext {
  if (event.type === "tick" && !learnerWantsTick(context.core)) return context;
  return advanceCore(learnerCoreStep<ViewCommand, View>, context, event);
}

export function startLearnerActor(ports: NodePorts, options: LearnerActorOptions): LearnerActor {
  const nodeId = ports.nodeId;
  const { config, observer } = options;
  if (config.acceptorIds.includes(nodeId)) throw new RangeError(`${nodeId} is a controller: run the controller actor there, not a learner`);
  const subjects = clusterSubjects(ports.clusterId);
  const tickIntervalMs = options.tickIntervalMs ?? Math.max(1, Math.floor(config.heartbeatIntervalMs / 5));
  const tickOriginMs = ports.clock.now();
  const appliedListeners = new Set<(applied: readonly AppliedCommand[], view: View, appliedSlots: number) => void>();
  const subscriptions: Subscription[] = [];
  const loggedDrops = new Set<string>();
  let stopped = false;
  const idleTicks = options.idleTicks ?? false;
  let tickTimer: TimerId | undefined;
  /** Stands in for the mailbox drain an idle tick would have scheduled (see tick()). */
  let idleTickTimer: TimerId | undefined;
  /**
   * learnerWantsTick of the core after its latest step, kept here so that a tick (100,000 a virtual second at
   * 1,000 hosts) does not walk to the core through the actor's snapshot. Only steps change the core, and every
   * step is seen below; a fresh core (an actor restarted after an error) is never behind.
   */
  let coreWantsTick = false;
  let lastContext: unknown;
  let beforeSlot = 0;

  const chunked = new ChunkedTransfer(ports, {
    accepts: ["paxos.snapshot", "paxos.fetch-reply"],
    deliver: (message) => receiveOwn(message, "chunks"),
    progress: (from) => host.send({ type: "fetch-progress", from, nowMs: ports.clock.now() }),
    rejections: options.rejections,
    ...(options.transfer?.limits ? { limits: options.transfer.limits } : {}),
  });
  const transport = new PaxosTransport(
    ports,
    (message) => {
      if (message.type === "paxos.propose-reply") client.receive(message);
    },
    chunked,
    options.transfer?.chunkAboveBytes,
  );
  const client: ProposalClientActor = startProposalClient(ports, {
    controllerIds: config.acceptorIds,
    ...(options.client ? { limits: options.client } : {}),
    send: (message) => transport.send(message),
    chosenBelow: () => {
      const core = host.getSnapshot()?.context.core;
      return core === undefined ? 0 : knownChosenBelow(core);
    },
  });

  const creation: LearnerCreation<ViewCommand, View> = {
    learnerId: nodeId,
    config,
    machine: options.sharing?.machine ?? viewStateMachine,
    records: [],
    // Nothing is kept on disk here: a snapshot would be built only to be thrown away.
    takesSnapshots: false,
    get nowMs() {
      return ports.clock.now();
    },
  };
  const host: ActorHost<typeof learnerMachine> = createActorHost(learnerMachine, ports, {
    name: `paxos-learner/${nodeId}`,
    kind: "paxos-learner",
    input: creation,
    rejections: options.rejections,
    shortcut: stepPastXstate,
  });
  host.onSnapshot((snapshot) => {
    const context = snapshot.context;
    if (context === lastContext) return;
    lastContext = context;
    coreWantsTick = learnerWantsTick(context.core);
    if (context.steps === 0) beforeSlot = context.core.nextSlot;
    carryOut(context.output, context.core);
  });

  function countDrop(reason: string, detail: string): void {
    ports.metrics.increment(paxosDroppedMetric, { reason });
    if (loggedDrops.has(reason)) return;
    loggedDrops.add(reason);
    ports.log.write("warn", "paxos.message-dropped", { reason, detail: detail.slice(0, 200), note: `further ones are only counted in ${paxosDroppedMetric}` });
  }

  function fetch(message: ViewPaxosMessage): void {
    let data: Uint8Array;
    try {
      data = encodePaxosMessage(message);
    } catch (error) {
      countDrop("unencodable", error instanceof Error ? error.message : String(error));
      return;
    }
    ports.network.request(subjects.viewFetch, data, { timeoutMs: config.fetchTimeoutMs }, (outcome) => {
      // No answer is fine: the learner asks another controller after fetchTimeoutMs.
      if (stopped || !outcome.ok) return;
      const answer = receive(outcome.message, catchUpAnswerTypes);
      if (answer) host.send({ type: "message", message: answer, nowMs: ports.clock.now() });
    });
  }

  function carryOut(output: LearnerOutput, state: ViewLearnerState): void {
    if (stopped) return;
    if (output.droppedMessage !== null) countDrop("semantic", output.droppedMessage);
    for (const message of output.sendAfterSync) {
      if (message.type === "paxos.fetch") fetch(message);
      else transport.send(message);
    }
    const nextSlot = state.nextSlot;
    if (output.applied.length > 0 || nextSlot !== beforeSlot) {
      chunked.installedThrough(nextSlot);
      client.applied(output.applied);
      for (const listener of appliedListeners) listener(output.applied, state.app, nextSlot);
    }
    observer?.stepped?.({ nodeId, nowMs: ports.clock.now(), beforeSlot, state, applied: output.applied });
    beforeSlot = nextSlot;
    if (!idleTicks && tickTimer === undefined && coreWantsTick) {
      // On the grid the idle ticks would have followed since the start, so a tick falls where it would have.
      const sinceOriginMs = ports.clock.now() - tickOriginMs;
      tickTimer = ports.clock.setTimeout(tick, (Math.floor(sinceOriginMs / tickIntervalMs) + 1) * tickIntervalMs - sinceOriginMs);
    }
  }

  function receive(netMessage: NetMessage, allowed: readonly PaxosMessageType[]): ViewPaxosMessage | undefined {
    const envelope = decodeCounted(paxosWireRegistry, options.rejections, netMessage.subject, netMessage.data, allowed);
    return envelope === undefined ? undefined : paxosMessageFromEnvelope(envelope);
  }

  /** A message on this node's own subject, whole or completed from chunks. */
  function receiveOwn(message: ViewPaxosMessage, subject: string): void {
    if (stopped) return;
    if (message.to !== nodeId) countDrop("misaddressed", `${message.type} to ${message.to} arrived on ${subject}`);
    else if (!options.config.acceptorIds.includes(message.from)) countDrop("not-a-controller", `${message.type} from ${message.from}, not one of ${options.config.acceptorIds.join(", ")}, arrived on ${subject}`);
    else if (message.type === "paxos.propose-reply") client.receive(message);
    else host.send({ type: "message", message, nowMs: ports.clock.now() });
  }

  /**
   * A tick with nothing queued before it, to a learner that is not behind, changes nothing when the
   * mailbox hands it over (stepPastXstate), since only the mailbox steps the learner. Such a tick is
   * not queued; an empty timer takes the place of the mailbox drain it would have scheduled, so the
   * node's timers, and through them every node's order of events at an instant, stay as they were.
   */
  function tick(): void {
    tickTimer = undefined;
    const idle = !coreWantsTick && host.mailboxDepth === 0 && host.status === "running";
    if (idle && !idleTicks) return;
    tickTimer = ports.clock.setTimeout(tick, tickIntervalMs);
    if (idle) idleTickTimer = ports.clock.setTimeout(idleTickDone, 0);
    else host.send({ type: "tick", nowMs: ports.clock.now() });
  }

  function idleTickDone(): void {
    idleTickTimer = undefined;
  }

  function decodeCommit(netMessage: NetMessage): ViewPaxosMessage | undefined {
    const shared = options.sharing?.decodedCommits;
    const known = shared?.get(netMessage.data);
    if (known !== undefined) return known;
    const message = receive(netMessage, ["paxos.commit"]);
    if (message !== undefined) shared?.set(netMessage.data, message);
    return message;
  }

  host.start();
  subscriptions.push(
    ports.network.subscribe(subjects.viewCommit, (netMessage) => {
      const message = decodeCommit(netMessage);
      if (!message) return;
      // Chosen values count only from a controller of this node's set: another process on the subject must not write the
      // view. Its commit index is kept as a hint, so a host whose config misses the leader (a controller added since)
      // still fetches what it lacks from the controllers it lists; a forged index costs fetches, never a wrong value.
      if (!options.config.acceptorIds.includes(message.from)) {
        countDrop("not-a-controller", `a commit broadcast from ${message.from}, not one of ${options.config.acceptorIds.join(", ")}: its values are ignored, its commit index taken as a hint`);
        if (message.type === "paxos.commit") host.send({ type: "message", message: { ...message, entries: [] }, nowMs: ports.clock.now() });
        return;
      }
      client.leaderHint(message.from);
      host.send({ type: "message", message, nowMs: ports.clock.now() });
    }),
    ports.network.subscribe(subjects.paxos(nodeId), (netMessage) => {
      const message = transport.receiveOwn(netMessage, ["paxos.propose-reply", ...catchUpAnswerTypes], options.rejections);
      if (message) receiveOwn(message, netMessage.subject);
    }),
  );
  if (idleTicks) tickTimer = ports.clock.setTimeout(tick, tickIntervalMs);

  return {
    nodeId,
    view() {
      return host.getSnapshot()?.context.core.app ?? viewStateMachine.initialState;
    },
    appliedSlots() {
      return host.getSnapshot()?.context.core.nextSlot ?? 0;
    },
    propose(command, done) {
      return client.propose(command, done);
    },
    onApplied(listener) {
      appliedListeners.add(listener);
      return { unsubscribe: () => void appliedListeners.delete(listener) };
    },
    core() {
      return host.getSnapshot()?.context.core;
    },
    stop() {
      if (stopped) return;
      stopped = true;
      if (tickTimer !== undefined) ports.clock.clearTimeout(tickTimer);
      if (idleTickTimer !== undefined) ports.clock.clearTimeout(idleTickTimer);
      for (const subscription of subscriptions) subscription.unsubscribe();
      subscriptions.length = 0;
      chunked.stop();
      client.stop();
      host.dispose();
    },
  };
}

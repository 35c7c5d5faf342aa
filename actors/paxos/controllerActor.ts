/**
 * A controller node's Multi-Paxos role as an actor on its ports: the pure
 * controller core (machines/paxos/controllerNode.ts, in its xstate wrapper)
 * fed with messages and clock ticks, its effects carried out in the order the
 * core's contract demands.
 *
 * - Input: `paxos.<nodeId>` (everything addressed to this controller),
 *   `view.commit` (chosen values broadcast by a leader; an extra source for
 *   this node's learner) and `view.fetch` (catch-up requests from host
 *   learners; answered on the request's inbox when addressed here). Every
 *   message is decoded and validated by the wire codec first; a refused one
 *   is counted and never reaches the core. A `tick` with the node clock's
 *   reading arrives every `tickIntervalMs` (a fifth of the heartbeat
 *   interval by default).
 * - Persistence: `storage.open("paxos")`. Records are appended (or the log
 *   rewritten on compaction) and synced, and only then are the step's
 *   messages sent, in step order (durableWriter.ts). On start the log is read
 *   back and the core recovers from it; a record that fails validation stops
 *   the node rather than be skipped.
 * - Output: leadership, the lease, the applied view; a proposal client for
 *   this node's own commands; optionally the KV mirror of the view, written
 *   by whichever controller leads.
 *
 * If the actor host restarts the core after an error, the core recovers from
 * the log again (its input reads the log when the actor is created), and the
 * writer still carries out the old actor's pending writes first, so nothing
 * the new core sends can overtake a record it depends on.
 */
import type { ContextFrom } from "xstate";
import { createActorHost, type ActorHost } from "../actorHost.ts";
import { decodeCounted, type RejectionCounter } from "../codec/rejectionCounter.ts";
import type { TimerId } from "../ports/clock.ts";
import type { NetMessage, Subscription } from "../ports/network.ts";
import type { NodePorts } from "../ports/nodePorts.ts";
import { clusterSubjects } from "../subjects.ts";
import { majorityOf, paxosConfigProblems, type PaxosConfig } from "../../machines/paxos/config.ts";
import {
  controllerHoldsLease,
  controllerRecords,
  leadershipOf,
  ownViewBehindFloor,
  type ControllerCreation,
  type ControllerInput,
  type ControllerNodeState,
  type ControllerStep,
  type Leadership,
} from "../../machines/paxos/controllerNode.ts";
import { messageTypesFromLearners, paxosMessageTypes, type PaxosMessageType } from "../../machines/paxos/messages.ts";
import { knownChosenBelow } from "../../machines/paxos/learner.ts";
import { nextAcceptHedgeAtMs } from "../../machines/paxos/proposer.ts";
import { unattestedMessageTypes } from "../../machines/paxos/stepResult.ts";
import { advanceCore, controllerCoreStep, createControllerMachine } from "../../machines/paxos/paxosMachines.ts";
import type { ProposalOutcome } from "../../machines/paxos/proposalClient.ts";
import type { AppliedCommand } from "../../machines/paxos/replicatedStateMachine.ts";
import { formatBallot } from "../../machines/paxos/ballot.ts";
import type { ViewCommand } from "../../machines/view/viewCommands.ts";
import { leaderElectedCommand, viewStateMachine } from "../../machines/view/viewStateMachine.ts";
import type { View } from "../../machines/view/viewTypes.ts";
import { startViewKvMirror, type ViewKvMirror, type ViewKvMirrorOptions } from "../view/viewKvMirror.ts";
import { DurableWriter } from "./durableWriter.ts";
import { chunkableMessageTypes, paxosWireConfigProblems, paxosWireRegistry, paxosMessageFromEnvelope, type ViewPaxosMessage } from "./paxosMessages.ts";
import { decodeRecords, encodeRecord, paxosLogName, type ViewDurableRecord } from "./paxosRecords.ts";
import { PaxosTransport } from "./paxosTransport.ts";
import { ChunkedTransfer, type ChunkedTransferSettings } from "./chunkedTransfer.ts";
import { RejoiningMajorityWatch, type RejoiningAcceptors } from "./rejoiningMajorityWatch.ts";
import { SnapshotPrepacker } from "./snapshotPrepacker.ts";
import { unpackedSnapshotRecords } from "./snapshotRecordEncoding.ts";
import type { ViewSnapshot } from "../../machines/view/viewSnapshot.ts";
import { viewRecordBytes } from "../../machines/view/viewSize.ts";
import { noVoteEvidence, type VoteEvidence } from "../../machines/paxos/voteEvidence.ts";
import { acceptorSetChange, recordedAcceptorSet } from "../../machines/paxos/acceptorSet.ts";
import { PeerEvidenceKeeper } from "./peerEvidenceKeeper.ts";
import { OutsideControllerWatch, outsideControllerQuietMs } from "./outsideControllerWatch.ts";
import { startProposalClient, type OutcomeCallback, type ProposalClientActor, type ProposalClientLimits, type ProposeResult } from "./proposalClientActor.ts";

export const paxosDroppedMetric = "haring_paxos_dropped_total";
/** The view's hosts and VMs to the byte bound admission control enforces (machines/view/viewSize.ts): how close the view is to full. */
export const viewRecordBytesGauge = "haring_view_record_bytes";
export const paxosFatalMetric = "haring_paxos_fatal_total";
/** Logged (error) when a controller's config names other acceptors than its Paxos log was written with. */
export const acceptorSetChangedLogEvent = "paxos.acceptor-set-changed";
export const acceptorSetChangeNote =
  "majorities of another acceptor set need not meet the ones that counted this log's promises and votes, so two values could be chosen for one slot; " +
  "put back the controllerIds the log names, in every controller's config; controllers are added only with haring acceptors grow on each stopped controller (docs/paxos.md, The acceptor set, Adding controllers)";
export const paxosRecoveredTailMetric = "haring_paxos_discarded_tail_bytes_total";
/** Steps (with carrying out their effects) at least this long are counted and logged: they hold the event loop, and beyond `electionTimeoutMs` they cost an election. */
export const slowControllerStepMs = 50;
/** Slow steps are logged at most this often; every one is counted in `paxosSlowStepsMetric`. */
export const minSlowStepLogSpacingMs = 1_000;
export const paxosSlowStepsMetric = "haring_paxos_slow_steps_total";
/**
 * A compaction whose snapshot has more records than this not packed yet is written later: its log rewrite
 * waits while the prepacker packs them a few hundred per tick (a packed record costs about 5 µs), then the
 * snapshot as a whole a slice per tick. Packing them in the compacting step held a leader's event loop for
 * 160-370 ms after a throughput run (30,000-48,000 new records since its last snapshot): long enough for
 * followers to start an election. (A snapshot installed from a peer is not held, see carryOut.) Until the
 * rewrite the log keeps the records it has (the previous snapshot and every vote since): a superset of what
 * the rewrite keeps, so a crash meanwhile recovers the older snapshot and catches up again.
 */
export const maxRecordsPackedAtCompaction = 1_000;
export const paxosRewritesHeldMetric = "haring_paxos_rewrites_held_total";

/** A tick timer this late means the process was held: the tick waits one turn, behind the messages that came meanwhile. */
export const lateTickDeferralMs = 20;
export const paxosLateTicksMetric = "haring_paxos_late_ticks_total";
/** Acceptors this controller knows to be rejoining after a lost disk (itself included), and 1 while they leave fewer than a majority voting. */
export const paxosRejoiningAcceptorsGauge = "haring_paxos_rejoining_acceptors";
export const paxosMajorityWithoutStateGauge = "haring_paxos_majority_without_state";
/** Controllers outside this one's acceptor set that still send it controller messages (outsideControllerWatch.ts). */
export const paxosOutsideControllersGauge = "haring_paxos_outside_controllers";
/** While a majority is without state, the error line comes again this often (every occurrence is in the gauge). */
export const majorityWithoutStateReminderMs = 60_000;
/** A rejoin that has not completed says so every this many fence attempts (5 s at the default 250 ms retry). */
export const rejoinWaitingLogEveryAttempts = 20;
/** Events (messages and ticks) waiting for the core; more are dropped, which Paxos tolerates as loss. */
export const defaultControllerMailboxDepth = 16_384;

export type ViewControllerState = ControllerNodeState<ViewCommand, View>;

export interface ControllerStepReport {
  readonly nodeId: string;
  readonly nowMs: number;
  /** The learner's next slot before this step. */
  readonly beforeSlot: number;
  readonly state: ViewControllerState;
  readonly applied: readonly AppliedCommand[];
}

/** Hooks for the simulator's invariant checks and for tests; called synchronously, must not throw. */
export interface ControllerObserver {
  stepped?(report: ControllerStepReport): void;
  /** Records that just became durable, before the messages that depend on them are sent. */
  synced?(nodeId: string, records: readonly ViewDurableRecord[], rewritten: boolean): void;
  /** The records a controller recovers from at a (re)start: durable, whether or not their sync was reported before a crash. */
  recovered?(nodeId: string, records: readonly ViewDurableRecord[]): void;
}

export interface ControllerActorOptions {
  readonly config: PaxosConfig;
  /** True only on the very first start of a brand-new cluster (an empty disk then means "never voted"). */
  readonly bootstrap: boolean;
  readonly rejections: RejectionCounter;
  readonly tickIntervalMs?: number;
  /** `maxRecordsPackedAtCompaction` unless given (0: every compaction with a record not packed yet waits, as tests make it). */
  readonly maxRecordsPackedAtCompaction?: number;
  readonly client?: Partial<ProposalClientLimits>;
  /** Mirror the view into the KV bucket while this controller leads (needs `ports.stream`). */
  readonly kvMirror?: Partial<ViewKvMirrorOptions> | false;
  readonly maxMailboxDepth?: number;
  /** Chunked transfer settings; the defaults suit production (see ChunkedTransferSettings). */
  readonly transfer?: ChunkedTransferSettings;
  readonly observer?: ControllerObserver;
  /** The disk failed or holds an unreadable record: the node stopped and must be restarted. */
  readonly onFatal?: (error: string) => void;
  /** This log's records, already read and checked with `decodeRecords` by the caller (the process's vote recall): not decoded again. */
  readonly checkedRecords?: readonly ViewDurableRecord[];
  /** Group commit across the steps of one burst (see DurableWriterOptions.deferFlush); absent in the simulator. */
  readonly deferDurableFlush?: (flush: () => void) => void;
  /**
   * Messages that attest nothing about this node's disk (machines/paxos/stepResult.ts,
   * `unattestedMessageTypes`) leave at once instead of behind pending syncs, and a leader's syncs
   * run in the background: it counts its followers' votes, hedges and broadcasts commits while its
   * own vote is being written. Off in the recorded scenarios; controller processes turn it on.
   */
  readonly leaderOverlapsItsDisk?: boolean;
}

export type ControllerStatus = "running" | "failed" | "stopped";

export interface ControllerActor {
  readonly nodeId: string;
  readonly status: ControllerStatus;
  leadership(): Leadership;
  /** True while this controller may act as the one leader (the manager runs only then). */
  holdsLease(): boolean;
  view(): View;
  /** Slots applied to the view so far. */
  appliedSlots(): number;
  /** Proposes a view command through this node's proposal client; `done` gets the outcome. */
  propose(command: ViewCommand, done?: OutcomeCallback): ProposeResult;
  onApplied(listener: (applied: readonly AppliedCommand[], view: View, appliedSlots: number) => void): Subscription;
  onLeadership(listener: (leadership: Leadership) => void): Subscription;
  /** Whether this controller's acceptor votes, and who it knows to be rejoining (rejoiningMajorityWatch.ts). */
  rejoinHealth(): RejoinHealth;
  /** Controllers outside its acceptor set that still send it controller messages: removed ones still running (outsideControllerWatch.ts). */
  outsideControllers(): readonly string[];
  /** What this controller has seen another controller's disk hold (machines/paxos/voteEvidence.ts), for its restart's recall. */
  voteEvidence(controllerId: string): VoteEvidence;
  /** The core's state, for inspection and tests. */
  core(): ViewControllerState | undefined;
  stop(): void;
}

export interface RejoinHealth extends RejoiningAcceptors {
  readonly acceptorMode: ViewControllerState["acceptor"]["mode"] | "none";
}

type ControllerOutput = Omit<ControllerStep<ViewCommand, View>, "state">;

/** One machine for every controller actor; each actor carries out the effects left in its snapshots. */
const controllerMachine = createControllerMachine<ViewCommand, View>();

type ControllerContext = ContextFrom<typeof controllerMachine>;

/**
 * The controller machine has one state and turns every event into one core step (an assign) and an
 * emit nobody here listens to: the actor host's shortcut takes that step itself, so a message or a
 * tick costs no xstate transition (several microseconds and a few objects each, on every hop of a
 * commit). Events keep their place in the mailbox, so the order of steps is as before.
 */
function stepPastXstate(context: ControllerContext, _state: unknown, event: ControllerInput<ViewCommand>): ControllerContext {
  return advanceCore(controllerCoreStep<ViewCommand, View>, context, event);
}

// Commits arrive on the view.commit broadcast subject, never on a controller's own paxos subject.
const controllerInboundTypes: readonly PaxosMessageType[] = paxosMessageTypes.filter((type) => type !== "paxos.commit");

/** Every problem with running `nodeId` under `config`; empty when it can run. */
export function controllerConfigProblems(nodeId: string, config: PaxosConfig): string[] {
  const problems = [...paxosConfigProblems(config), ...paxosWireConfigProblems(config)];
  if (!config.acceptorIds.includes(nodeId)) problems.push(`node ${nodeId} is not one of the controllers (${config.acceptorIds.join(", ")})`);
  return problems;
}

export function startControllerActor(ports: NodePorts, options: ControllerActorOptions): ControllerActor {
  const nodeId = ports.nodeId;
  const { config, observer } = options;
  const problems = controllerConfigProblems(nodeId, config);
  if (problems.length > 0) throw new RangeError(`controller ${nodeId}: ${problems.join("; ")}`);
  const subjects = clusterSubjects(ports.clusterId);
  const tickIntervalMs = options.tickIntervalMs ?? Math.max(1, Math.floor(config.heartbeatIntervalMs / 5));
  const log = ports.storage.open(paxosLogName);
  const appliedListeners = new Set<(applied: readonly AppliedCommand[], view: View, appliedSlots: number) => void>();
  const leadershipListeners = new Set<(leadership: Leadership) => void>();
  const subscriptions: Subscription[] = [];
  const loggedDrops = new Set<string>();
  let status: ControllerStatus = "running";
  let tickTimer: TimerId | undefined;
  let tickDueAtMs = 0;
  // An extra tick when the leader's next hedge is due (PaxosConfig.acceptHedgeMs), sooner than the regular one.
  let hedgeTimer: TimerId | undefined;
  let hedgeDueAtMs = Number.POSITIVE_INFINITY;
  let lastHedgeTickForMs = Number.NEGATIVE_INFINITY;
  let lastContext: unknown;
  let beforeSlot = 0;
  const prepacker = new SnapshotPrepacker();
  /** A compaction's log rewrite waits for the prepacker (maxRecordsPackedAtCompaction); then the state of that moment is written. */
  let rewriteHeld = false;
  const packedAtCompactionLimit = options.maxRecordsPackedAtCompaction ?? maxRecordsPackedAtCompaction;
  let mirror: ViewKvMirror | undefined;
  let acceptorMode: ViewControllerState["acceptor"]["mode"] | undefined;
  /**
   * Rejoined (or restarted with a floor, adopted from rejoin fences, above its own last snapshot) and its own view
   * does not cover its floor yet: the slots below live on peers only. `paxos.caught-up` says when that ends.
   */
  let awaitingCatchUp = false;
  let lastPreVote: ViewControllerState["proposer"]["preVote"] = null;
  let stepInput: string | undefined;
  let stepStartedAtMs = 0;
  let stepTookMs = 0;
  let lastSlowStepLogAtMs = Number.NEGATIVE_INFINITY;
  const rejoinWatch = new RejoiningMajorityWatch(config, nodeId);
  let rejoinJudgement: RejoiningAcceptors = { rejoining: [], majorityWithoutState: false };
  let majorityWithoutStateLoggedAtMs = Number.NEGATIVE_INFINITY;
  const outsideWatch = new OutsideControllerWatch(config.acceptorIds, nodeId);
  // The rejoin attempt this controller's acceptor is on, and who answered it so far (the core forgets at the next attempt).
  let rejoinAttempt = 0;
  let rejoinAnsweredBy: readonly string[] = [];

  if (log.discardedTailBytes > 0) {
    ports.metrics.increment(paxosRecoveredTailMetric, {}, log.discardedTailBytes);
    ports.log.write("warn", "paxos.torn-tail-cut", { bytes: log.discardedTailBytes, note: "records whose sync never completed; nothing was sent on their behalf" });
  }

  const deliverLocal = (message: ViewPaxosMessage): void => {
    if (message.type === "paxos.propose-reply") client.receive(message);
    else host.send({ type: "message", message, nowMs: ports.clock.now() });
  };
  const chunked = new ChunkedTransfer(ports, {
    accepts: chunkableMessageTypes.filter((type) => type !== "paxos.commit"),
    deliver: (message) => receiveOwn(message, "chunks"),
    progress: (from) => host.send({ type: "fetch-progress", from, nowMs: ports.clock.now() }),
    rejections: options.rejections,
    ...(options.transfer?.limits ? { limits: options.transfer.limits } : {}),
  });
  const transport = new PaxosTransport(ports, deliverLocal, chunked, options.transfer?.chunkAboveBytes);
  const writer = new DurableWriter<ViewDurableRecord, ViewPaxosMessage>({
    log,
    encode: (record) => encodeRecord(nodeId, record),
    send: (messages) => {
      for (const message of messages) {
        if (message.type === "paxos.snapshot") ports.log.write("info", "paxos.snapshot-served", { to: message.to, throughSlot: message.throughSlot });
        transport.send(message);
      }
    },
    synced: observer?.synced ? (records, rewritten) => observer.synced!(nodeId, records, rewritten) : undefined,
    fatal: (error) => fatal(`the paxos log failed: ${error}`),
    ...(options.deferDurableFlush ? { deferFlush: options.deferDurableFlush } : {}),
    ...(options.leaderOverlapsItsDisk
      ? { sendsAtOnce: (message: ViewPaxosMessage) => unattestedMessageTypes.has(message.type), syncInBackground: () => coreState()?.proposer.role === "leader" }
      : {}),
  });
  const client: ProposalClientActor = startProposalClient(ports, {
    controllerIds: config.acceptorIds,
    ...(options.client ? { limits: options.client } : {}),
    send: (message) => transport.send(message),
    chosenBelow: () => {
      const learner = coreState()?.learner;
      return learner === undefined ? 0 : knownChosenBelow(learner);
    },
  });

  // The first actor recovers from the records just checked below; a restart after an error reads the log as it is then.
  let recordsAtStart: readonly ViewDurableRecord[] | undefined;
  const creation: ControllerCreation<ViewCommand, View> = {
    nodeId,
    config,
    machine: viewStateMachine,
    get records() {
      const checked = recordsAtStart;
      recordsAtStart = undefined;
      const read = checked === undefined ? decodeRecords(log.readAll(), nodeId) : ({ ok: true, records: checked } as const);
      if (!read.ok) throw new Error(`cannot recover from the paxos log: ${read.error}`);
      observer?.recovered?.(nodeId, read.records);
      return read.records;
    },
    get nowMs() {
      return ports.clock.now();
    },
    get randomSeed() {
      return ports.random.int(0x1_0000_0000);
    },
    bootstrap: options.bootstrap,
    leaderAnnouncement: (ballot) => leaderElectedCommand(ballot.controllerId, ballot.round),
  };

  const readable = options.checkedRecords !== undefined ? ({ ok: true, records: options.checkedRecords } as const) : decodeRecords(log.readAll(), nodeId);
  const refuseToStart = (event: string, error: string, note: string, reason: string): ControllerActor => {
    ports.log.write("error", event, { error: error.slice(0, 300), note });
    ports.metrics.increment(paxosFatalMetric, { reason });
    client.stop();
    status = "failed";
    options.onFatal?.(error);
    return inertController(nodeId);
  };
  if (!readable.ok) {
    const foreign = readable.reason === "foreign";
    return refuseToStart(
      "paxos.unrecoverable",
      `cannot recover from the paxos log: ${readable.error}`,
      foreign
        ? "refusing to start: another controller's promises and votes under this id would count twice toward a majority"
        : "refusing to start: skipping a record could forget a promise or a vote",
      foreign ? "foreign-log" : "unreadable-log",
    );
  }
  const setChange = acceptorSetChange(recordedAcceptorSet(readable.records), config.acceptorIds);
  if (setChange !== null) return refuseToStart(acceptorSetChangedLogEvent, `refusing to start: ${setChange}`, acceptorSetChangeNote, "acceptor-set-changed");
  recordsAtStart = readable.records;
  /** What the other controllers' messages showed their disks hold, kept in this log too (peerEvidenceKeeper.ts). */
  const evidence = new PeerEvidenceKeeper(nodeId, config.acceptorIds, readable.records, ports.clock.now());

  const host: ActorHost<typeof controllerMachine> = createActorHost(controllerMachine, ports, {
    name: `paxos-controller/${nodeId}`,
    kind: "paxos-controller",
    input: creation,
    rejections: options.rejections,
    limits: { maxMailboxDepth: options.maxMailboxDepth ?? defaultControllerMailboxDepth },
    shortcut: (context, state, event) => {
      const startedAtMs = ports.clock.now();
      const next = stepPastXstate(context, state, event);
      stepStartedAtMs = startedAtMs;
      stepTookMs = ports.clock.now() - startedAtMs;
      stepInput = event.type === "message" ? event.message.type : event.type;
      return next;
    },
  });
  // Every step makes a new context holding that step's effects; a new actor's first one holds recovery's.
  host.onSnapshot((snapshot) => {
    const context = snapshot.context;
    if (context === lastContext) return;
    lastContext = context;
    if (context.steps === 0) {
      beforeSlot = context.core.learner.nextSlot;
      prepacker.start(context.core.learner.app);
      ports.log.write("info", "paxos.recovered", {
        appliedSlots: context.core.learner.nextSlot,
        promised: formatBallot(context.core.acceptor.promised),
        mode: context.core.acceptor.mode,
        bootstrap: options.bootstrap,
      });
    }
    const carryOutStartedAtMs = ports.clock.now();
    carryOut(context.output, context.core);
    if (stepInput !== undefined) noteSlowStep(stepInput, stepTookMs, ports.clock.now() - carryOutStartedAtMs);
    stepInput = undefined;
  });

  // What a step and its effects cost, so a stall of the event loop (and the election it may cause) can be
  // told apart from a slow disk or a starved CPU. Only the shortcut's steps are timed: every event but the first.
  function noteSlowStep(input: string, stepMs: number, carryOutMs: number): void {
    if (stepMs + carryOutMs < slowControllerStepMs) return;
    ports.metrics.increment(paxosSlowStepsMetric, { input });
    if (stepStartedAtMs - lastSlowStepLogAtMs < minSlowStepLogSpacingMs) return;
    lastSlowStepLogAtMs = stepStartedAtMs;
    ports.log.write("warn", "paxos.slow-step", { input, stepMs: Math.round(stepMs), carryOutMs: Math.round(carryOutMs), note: `this controller did nothing else meanwhile; further ones within ${minSlowStepLogSpacingMs} ms are only counted in ${paxosSlowStepsMetric}` });
  }

  function coreState(): ViewControllerState | undefined {
    return host.getSnapshot()?.context.core;
  }

  function countDrop(reason: string, detail: string): void {
    ports.metrics.increment(paxosDroppedMetric, { reason });
    if (loggedDrops.has(reason)) return;
    loggedDrops.add(reason);
    ports.log.write("warn", "paxos.message-dropped", { reason, detail: detail.slice(0, 200), note: `further ones are only counted in ${paxosDroppedMetric}` });
  }

  function carryOut(output: ControllerOutput, state: ViewControllerState): void {
    if (status !== "running") return;
    if (acceptorMode === "rejoining" && state.acceptor.mode === "voting") {
      ports.log.write("info", "paxos.rejoined", { promised: formatBallot(state.acceptor.promised), floorSlot: state.acceptor.floorSlot, votes: state.acceptor.votes.size, note: "fenced by a majority after an empty-disk start: voting again" });
      awaitingCatchUp = true;
    }
    acceptorMode = state.acceptor.mode;
    const behind = ownViewBehindFloor(state);
    if (behind) awaitingCatchUp = true;
    else if (awaitingCatchUp && state.acceptor.mode === "voting") {
      awaitingCatchUp = false;
      ports.log.write("info", "paxos.caught-up", {
        floorSlot: state.acceptor.floorSlot,
        snapshotThroughSlot: state.lastSnapshot?.throughSlot ?? 0,
        note: "its own view covers the floor its rejoin adopted: it holds the whole view again and counts as a controller with state (the next lost disk, added or removed controller may follow)",
      });
    }
    noteRejoinAttempt(state.acceptor.rejoin);
    const preVote = state.proposer.preVote;
    if (preVote !== null && preVote.ballot !== lastPreVote?.ballot) {
      // The one trace of a follower that stopped hearing its leader: elections nobody caused start here.
      ports.log.write("info", "paxos.election-started", { stage: "pre-vote", ballot: formatBallot(preVote.ballot), lastLeader: state.proposer.leaderId });
    }
    lastPreVote = preVote;
    if (output.droppedMessage !== null) countDrop("semantic", output.droppedMessage);
    // A snapshot installed from a peer is written at once, as before: its node is the one catching up, with two
    // others answering, while a rewrite held for later landed on it ~2 s on, when the benchmark had killed the
    // next leader and it was the new leader or its only follower (two step-downs in 12 failover rounds).
    const rewrite = output.rewrite !== null && !output.rewriteInstallsPeerSnapshot && holdsRewrite(output.rewrite) ? null : output.rewrite;
    // A rewrite replaces the log: it carries all the evidence; otherwise the step's records carry what is due.
    const nowMs = ports.clock.now();
    writer.submit(
      rewrite !== null
        ? { persist: output.persist, rewrite: [...rewrite, ...evidence.recordsForRewrite(nowMs)], messages: output.sendAfterSync }
        : { persist: evidence.withStepRecords(output.persist, nowMs), rewrite, messages: output.sendAfterSync },
    );
    // A log rewritten for a snapshot installed from a peer leaves a view of new record objects (after one
    // this controller took, the pass finds them packed).
    if (rewrite !== null) prepacker.start(state.learner.app);
    for (const refused of output.refused) {
      client.receive({ type: "paxos.propose-reply", from: nodeId, to: nodeId, commandId: refused.commandId, refusal: refused.refusal, leaderHint: state.proposer.leaderId });
    }
    const nextSlot = state.learner.nextSlot;
    if (output.applied.length > 0 || nextSlot !== beforeSlot) {
      chunked.installedThrough(nextSlot);
      ports.metrics.setGauge(viewRecordBytesGauge, viewRecordBytes(state.learner.app));
      client.applied(output.applied);
      for (const listener of appliedListeners) listener(output.applied, state.learner.app, nextSlot);
      if (mirror && state.proposer.role === "leader") mirror.offer(state.learner.app, nextSlot);
    }
    if (output.leadership) {
      const leadership = output.leadership;
      ports.log.write("info", "paxos.leadership", { role: leadership.role, leader: leadership.leaderId, ballot: formatBallot(leadership.ballot) });
      client.leaderHint(leadership.leaderId);
      if (mirror && leadership.role === "leader") {
        mirror.leadershipStarted();
        mirror.offer(state.learner.app, nextSlot);
      }
      for (const listener of leadershipListeners) listener(leadership);
    }
    observer?.stepped?.({ nodeId, nowMs: ports.clock.now(), beforeSlot, state, applied: output.applied });
    beforeSlot = nextSlot;
    scheduleHedgeTick(state);
  }

  /**
   * A rejoin that cannot finish says why, every `rejoinWaitingLogEveryAttempts` attempts: who answered
   * its last fence and how many it needs. (Two lost disks of three are also judged as a whole, judgeRejoins.)
   */
  function noteRejoinAttempt(rejoin: ViewControllerState["acceptor"]["rejoin"]): void {
    if (rejoin === null) {
      rejoinAttempt = 0;
      rejoinAnsweredBy = [];
      return;
    }
    if (rejoin.attempt !== rejoinAttempt && rejoinAttempt > 0 && rejoinAttempt % rejoinWaitingLogEveryAttempts === 0) {
      ports.log.write("warn", "paxos.rejoin-waiting", {
        attempts: rejoinAttempt,
        answeredBy: rejoinAnsweredBy.join(","),
        needed: majorityOf(config.acceptorIds.length),
        rejoining: rejoinJudgement.rejoining.join(","),
        note: "a rejoin needs the fence of a majority of the other controllers, each voting and reachable; it keeps asking",
      });
    }
    rejoinAttempt = rejoin.attempt;
    if (rejoin.replies.size !== rejoinAnsweredBy.length) rejoinAnsweredBy = [...rejoin.replies.keys()].sort();
  }

  /** Whether so many acceptors are rejoining that none can finish (rejoiningMajorityWatch.ts): logged, gauged, in the status. */
  function judgeRejoins(nowMs: number): void {
    const judged = rejoinWatch.judge(nowMs, acceptorMode === "rejoining");
    const before = rejoinJudgement;
    rejoinJudgement = judged;
    if (judged.rejoining.length !== before.rejoining.length) ports.metrics.setGauge(paxosRejoiningAcceptorsGauge, judged.rejoining.length);
    if (judged.majorityWithoutState !== before.majorityWithoutState) ports.metrics.setGauge(paxosMajorityWithoutStateGauge, judged.majorityWithoutState ? 1 : 0);
    if (judged.majorityWithoutState && (!before.majorityWithoutState || nowMs - majorityWithoutStateLoggedAtMs >= majorityWithoutStateReminderMs)) {
      majorityWithoutStateLoggedAtMs = nowMs;
      ports.log.write("error", "paxos.majority-without-state", {
        rejoining: judged.rejoining.join(","),
        acceptors: config.acceptorIds.length,
        votingNeeded: majorityOf(config.acceptorIds.length),
        note: "these controllers started without their Paxos state (a lost disk, or an empty or wrong data directory) and each needs a majority of the others voting to rejoin: nothing commits until an operator acts (docs/paxos.md, A majority without state)",
      });
    } else if (!judged.majorityWithoutState && before.majorityWithoutState) {
      ports.log.write("info", "paxos.majority-without-state-cleared", { rejoining: judged.rejoining.join(","), note: "a majority can vote again" });
    }
  }

  /** A message only controllers send, from one outside this set: dropped and counted, and logged when that controller is new to the list (outsideControllerWatch.ts). */
  function droppedFromOutsideController(senderId: string, messageType: string, detail: string): void {
    countDrop("not-a-controller", detail);
    if (!outsideWatch.heard(senderId, ports.clock.now())) return;
    ports.metrics.setGauge(paxosOutsideControllersGauge, outsideWatch.running().length);
    ports.log.write("warn", "paxos.outside-controller-running", {
      controller: senderId,
      sends: messageType,
      acceptors: config.acceptorIds.join(","),
      note: "a controller outside this controller's set still runs: a removed controller that was not stopped (stop it for good), or one whose set differs (during a growth, this controller may not be stepped yet); its messages are dropped (docs/paxos.md, Removing controllers)",
    });
  }

  function forgetQuietOutsideControllers(nowMs: number): void {
    const quiet = outsideWatch.forgetQuiet(nowMs);
    if (quiet.length === 0) return;
    ports.metrics.setGauge(paxosOutsideControllersGauge, outsideWatch.running().length);
    for (const senderId of quiet) {
      ports.log.write("info", "paxos.outside-controller-quiet", { controller: senderId, quietMs: outsideControllerQuietMs, note: "not heard for this long: stopped, or cut off from this controller" });
    }
  }

  /** Whether this rewrite waits for its snapshot's records to be packed (maxRecordsPackedAtCompaction); starts that packing if so. */
  function holdsRewrite(records: readonly ViewDurableRecord[]): boolean {
    let snapshot: ViewSnapshot | undefined;
    for (const record of records) if (record.kind === "snapshot") snapshot = record.snapshot as ViewSnapshot;
    if (snapshot === undefined || unpackedSnapshotRecords(snapshot, packedAtCompactionLimit + 1) <= packedAtCompactionLimit) return false;
    // A newer compaction while one waits replaces it: the rewrite writes the state of its own moment anyway.
    rewriteHeld = true;
    prepacker.startSnapshot(snapshot);
    ports.metrics.increment(paxosRewritesHeldMetric);
    return true;
  }

  function writeHeldRewrite(): void {
    if (!rewriteHeld || prepacker.active) return;
    rewriteHeld = false;
    const core = coreState();
    if (core) writer.submit({ persist: [], rewrite: [...controllerRecords(core), ...evidence.recordsForRewrite(ports.clock.now())], messages: [] });
  }

  function scheduleHedgeTick(state: ViewControllerState): void {
    const dueAtMs = nextAcceptHedgeAtMs(state.proposer);
    // One extra tick per due time at most: a tick that could not hedge (it only ever can) must not loop.
    if (dueAtMs === null || dueAtMs >= hedgeDueAtMs || dueAtMs <= lastHedgeTickForMs) return;
    if (hedgeTimer !== undefined) ports.clock.clearTimeout(hedgeTimer);
    hedgeDueAtMs = dueAtMs;
    hedgeTimer = ports.clock.setTimeout(() => {
      hedgeTimer = undefined;
      lastHedgeTickForMs = hedgeDueAtMs;
      hedgeDueAtMs = Number.POSITIVE_INFINITY;
      host.send({ type: "tick", nowMs: ports.clock.now() });
    }, Math.max(0, dueAtMs - ports.clock.now()));
  }

  function fatal(error: string): void {
    if (status !== "running") return;
    ports.log.write("error", "paxos.fatal", { error: error.slice(0, 300), note: "the controller stopped; restart it to recover from its log" });
    ports.metrics.increment(paxosFatalMetric, { reason: "storage" });
    shutDown("failed");
    options.onFatal?.(error);
  }

  function shutDown(final: ControllerStatus): void {
    status = final;
    if (tickTimer !== undefined) ports.clock.clearTimeout(tickTimer);
    tickTimer = undefined;
    if (hedgeTimer !== undefined) ports.clock.clearTimeout(hedgeTimer);
    hedgeTimer = undefined;
    for (const subscription of subscriptions) subscription.unsubscribe();
    subscriptions.length = 0;
    writer.stop();
    chunked.stop();
    client.stop();
    mirror?.stop();
    host.dispose();
  }

  function receive(netMessage: NetMessage, allowed: readonly PaxosMessageType[]): ViewPaxosMessage | undefined {
    const envelope = decodeCounted(paxosWireRegistry, options.rejections, netMessage.subject, netMessage.data, allowed);
    return envelope === undefined ? undefined : paxosMessageFromEnvelope(envelope);
  }

  /** A message on this node's own subject, whole or completed from chunks. */
  function receiveOwn(message: ViewPaxosMessage, subject: string): void {
    if (status !== "running") return;
    if (message.to !== nodeId) {
      countDrop("misaddressed", `${message.type} to ${message.to} arrived on ${subject}`);
      return;
    }
    if (!messageTypesFromLearners.has(message.type) && !config.acceptorIds.includes(message.from)) {
      droppedFromOutsideController(message.from, message.type, `${message.type} from ${message.from}, not one of ${config.acceptorIds.join(", ")}, arrived on ${subject}`);
      return;
    }
    if (message.type === "paxos.propose-reply") client.receive(message);
    else {
      // Catch-up by snapshot is rare and costly on both ends (a whole view encoded, moved and rebuilt): worth a line each.
      if (message.type === "paxos.snapshot") ports.log.write("info", "paxos.snapshot-received", { from: message.from, throughSlot: message.throughSlot });
      else if (message.type === "paxos.rejoin-fence") rejoinWatch.fenceFrom(message.from, ports.clock.now());
      evidence.note(message);
      host.send({ type: "message", message, nowMs: ports.clock.now() } satisfies ControllerInput<ViewCommand>);
    }
  }

  function scheduleTick(): void {
    tickDueAtMs = ports.clock.now() + tickIntervalMs;
    tickTimer = ports.clock.setTimeout(tick, tickIntervalMs);
  }
  function tick(): void {
    const lateMs = ports.clock.now() - tickDueAtMs;
    scheduleTick();
    if (lateMs < lateTickDeferralMs) host.send({ type: "tick", nowMs: ports.clock.now() });
    else {
      // This process was held (an event-loop stall, a pause, a starved CPU), and its timers run before
      // it reads its sockets. A tick now would judge silence on stale news: a leader would step down for
      // acks waiting unread, a follower campaign against heartbeats it has not read yet. The tick goes
      // behind whatever arrives in this turn instead.
      ports.metrics.increment(paxosLateTicksMetric);
      ports.clock.setTimeout(() => {
        if (status === "running") host.send({ type: "tick", nowMs: ports.clock.now() });
      }, 0);
    }
    if (status === "running") {
      prepacker.tick();
      writeHeldRewrite();
      judgeRejoins(ports.clock.now());
      forgetQuietOutsideControllers(ports.clock.now());
    }
  }

  if (options.kvMirror !== false && options.kvMirror !== undefined) {
    if (ports.stream) mirror = startViewKvMirror({ ...ports, stream: ports.stream }, options.kvMirror);
    else ports.log.write("warn", "view.mirror-disabled", { reason: "this node has no Stream port" });
  }

  host.start();
  subscriptions.push(
    ports.network.subscribe(subjects.paxos(nodeId), (netMessage) => {
      const message = transport.receiveOwn(netMessage, controllerInboundTypes, options.rejections);
      if (message) receiveOwn(message, netMessage.subject);
    }),
    ports.network.subscribe(subjects.viewCommit, (netMessage) => {
      if (transport.isOwnBroadcastEcho(netMessage.data)) return;
      const message = receive(netMessage, ["paxos.commit"]);
      if (!message || message.from === nodeId) return;
      if (!config.acceptorIds.includes(message.from)) droppedFromOutsideController(message.from, message.type, `a commit broadcast from ${message.from}, not one of ${config.acceptorIds.join(", ")}`);
      else host.send({ type: "message", message, nowMs: ports.clock.now() });
    }),
    ports.network.subscribe(subjects.viewFetch, (netMessage) => {
      const message = receive(netMessage, ["paxos.fetch"]);
      if (!message || message.to !== nodeId) return;
      if (netMessage.reply !== undefined) transport.rememberFetchInbox(message.from, netMessage.reply);
      host.send({ type: "message", message, nowMs: ports.clock.now() });
    }),
  );
  scheduleTick();

  return {
    nodeId,
    get status() {
      return status;
    },
    leadership() {
      const state = coreState();
      return state ? leadershipOf(state) : { role: "follower", leaderId: "", ballot: { round: 0, controllerId: "" } };
    },
    holdsLease() {
      const state = coreState();
      return status === "running" && state !== undefined && controllerHoldsLease(state, ports.clock.now());
    },
    view() {
      return coreState()?.learner.app ?? viewStateMachine.initialState;
    },
    appliedSlots() {
      return coreState()?.learner.nextSlot ?? 0;
    },
    propose(command, done) {
      return client.propose(command, done);
    },
    onApplied(listener) {
      appliedListeners.add(listener);
      return { unsubscribe: () => void appliedListeners.delete(listener) };
    },
    onLeadership(listener) {
      leadershipListeners.add(listener);
      return { unsubscribe: () => void leadershipListeners.delete(listener) };
    },
    voteEvidence(controllerId) {
      return evidence.of(controllerId);
    },
    rejoinHealth() {
      return { acceptorMode: acceptorMode ?? "none", ...rejoinJudgement };
    },
    outsideControllers() {
      return outsideWatch.running();
    },
    core: coreState,
    stop() {
      if (status === "running") shutDown("stopped");
    },
  };
}

/** What a controller that refused to start looks like: failed, and never anything else. */
function inertController(nodeId: string): ControllerActor {
  return {
    nodeId,
    status: "failed",
    leadership: () => ({ role: "follower", leaderId: "", ballot: { round: 0, controllerId: "" } }),
    holdsLease: () => false,
    view: () => viewStateMachine.initialState,
    appliedSlots: () => 0,
    propose: () => ({ ok: false, error: "the controller failed to start" }),
    onApplied: () => ({ unsubscribe: () => undefined }),
    onLeadership: () => ({ unsubscribe: () => undefined }),
    rejoinHealth: () => ({ acceptorMode: "none", rejoining: [], majorityWithoutState: false }),
    outsideControllers: () => [],
    voteEvidence: () => noVoteEvidence,
    core: () => undefined,
    stop: () => undefined,
  };
}

export type { ProposalOutcome };

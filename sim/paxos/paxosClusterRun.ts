/**
 * A simulated cluster of the real Paxos actors: 3 or 5 controllers
 * (actors/paxos/controllerActor.ts) and a few host learners
 * (actors/paxos/learnerActor.ts) in one SimWorld, talking through the real
 * wire codec over the simulated network, persisting through simulated disks,
 * and mirroring the view into a simulated JetStream KV bucket.
 *
 * One seed fixes everything: the cluster's clocks (offsets, drift), the
 * network (latency, loss, duplication, reordering), and a random schedule of
 * faults during the chaos phase: partitions (also one-way), crashes that
 * lose unsynced storage (sometimes leaving a torn tail) and restarts, pauses,
 * clock drift changes and NATS server outages for the mirror, while clients
 * on random nodes propose view commands. Then everything heals and a probe
 * command must commit, every learner converge on one view, and the mirror
 * reach it, each within a bound. With `removeControllers`, controllers are
 * also removed from the acceptor set during the chaos, as an operator does it
 * with `haring acceptors shrink` (docs/paxos.md, "Removing controllers"): each
 * other controller in turn is stopped, its log given an `init` naming the
 * smaller set, and started with it, while faults go on; the removed ones are
 * stopped for good before or after. With `addControllers`, controllers are
 * added the same way (`haring acceptors grow`, "Adding controllers"): each
 * old controller stepped to the larger set, then each added one started on
 * an empty disk, rejoining; where the growth rule relies on it, one old
 * controller is sometimes stepped last, after the added ones voted, as if
 * forgotten meanwhile.
 *
 * Checked throughout (paxosInvariants.ts): agreement, one applied sequence,
 * views never going back, leases exclusive, client outcomes naming the slot
 * that holds the command, no command taking effect twice; at the end, every
 * command a client saw committed is in the final view at that slot, and the
 * KV mirror never went back.
 */
import { paxosTransfersMetric, type ChunkedTransferSettings } from "../../actors/paxos/chunkedTransfer.ts";
import { paxosRewritesHeldMetric, startControllerActor, type ControllerActor } from "../../actors/paxos/controllerActor.ts";
import { decodeRecords, encodeRecord, paxosLogName, type ViewDurableRecord } from "../../actors/paxos/paxosRecords.ts";
import { startLearnerActor, type LearnerActor } from "../../actors/paxos/learnerActor.ts";
import { createBootstrapAnswerer } from "../../actors/paxos/bootstrapAnswerer.ts";
import { startBootstrapGate, startBootstrapResponder, type BootstrapGate } from "../../actors/paxos/bootstrapGate.ts";
import type { NodePorts } from "../../actors/ports/nodePorts.ts";
import { createRejectionCounter } from "../../actors/codec/rejectionCounter.ts";
import type { Clock } from "../../actors/ports/clock.ts";
import type { Random } from "../../actors/ports/random.ts";
import type { LogLevel } from "../../actors/ports/telemetry.ts";
import { defaultViewKvMirrorOptions, storedMirrorSlot, type ViewKvMirrorOptions } from "../../actors/view/viewKvMirror.ts";
import { parseManifest, readMirroredValue, type MirrorReadResult } from "../../actors/view/viewKvLayout.ts";
import { defaultTransferLimits, minTransferChunkBytes } from "../../machines/paxos/chunkTransfer.ts";
import { acceptorGrowthProblem, acceptorShrinkProblem, lastInitRecord, ownViewBehindFloorProblem, steppedInitRecord } from "../../machines/paxos/acceptorSet.ts";
import { createPaxosConfig, majorityOf, maxAcceptors, type PaxosConfig } from "../../machines/paxos/config.ts";
import { ownViewBehindFloor } from "../../machines/paxos/controllerNode.ts";
import { holdsLease } from "../../machines/paxos/proposer.ts";
import { durableVotingState, evidenceShortfall, recallPeers } from "../../machines/paxos/voteEvidence.ts";
import type { ProposalOutcome } from "../../machines/paxos/proposalClient.ts";
import type { ViewCommand } from "../../machines/view/viewCommands.ts";
import { canonicalViewJson } from "../../machines/view/viewSnapshot.ts";
import { SimStreamServer, type SimStreamClient } from "../simStream.ts";
import { shuffled } from "../shuffled.ts";
import { SimWorld } from "../world.ts";
import { PaxosInvariants } from "./paxosInvariants.ts";
import { randomViewCommand } from "./randomViewCommand.ts";

/** Timings of the simulated cluster, fast enough for many seeds; the pure harness (test/paxos/clusterHarness.ts) uses them too. */
export const simPaxosTimings: Partial<Omit<PaxosConfig, "acceptorIds">> = {
  heartbeatIntervalMs: 40,
  commitBeaconIntervalMs: 200,
  leaseDurationMs: 200,
  clockDriftMarginMs: 20,
  electionTimeoutMs: 220,
  electionJitterMs: 120,
  prepareTimeoutMs: 120,
  acceptRetryMs: 60,
  maxCommandsPerBatch: 4,
  maxInFlightSlots: 6,
  maxRetainedSlots: 16,
  snapshotEverySlots: 12,
  maxBufferedChosenSlots: 64,
  maxFetchSlots: 8,
  catchUpAfterMs: 60,
  fetchTimeoutMs: 120,
  // Covers leaseDurationMs and prepareTimeoutMs, see docs/paxos.md.
  rejoinQuarantineMs: 300,
  rejoinRetryMs: 150,
};

export const simClientLimits = { maxOutstandingProposals: 256, maxProposeAttempts: 8, retryAfterMs: 150, maxRetryDelayMs: 600 } as const;

export const simMirrorOptions: Partial<ViewKvMirrorOptions> = { minIntervalMs: 100, retryAfterMs: 300 };

export const simStreamRequestTimeoutMs = 400;

/** The bootstrap gate's probes in the simulator (`bootstrapGate`); its quarantine is the config's `rejoinQuarantineMs`, as in the process. */
export const simBootstrapGateTimings = { probeIntervalMs: 100, requestTimeoutMs: 100 } as const;

/**
 * `bootstrapGate` with a set change: a controller whose gate refused (another set heard) starts again after
 * `setChangeRetryMs`, at most this many times in a row; more is a liveness failure.
 */
const maxGateRefusals = 200;

/** A set change waits this long before asking again whether it may begin or step a controller, at most `maxSetChangeWaits` times in a row. */
const setChangeRetryMs = 50;
const maxSetChangeWaits = 200;

interface Growth {
  readonly added: readonly string[];
  readonly grown: readonly string[];
  /** The old controllers in the order they are stepped, without `late`. */
  readonly order: string[];
  /** Stepped only after the added controllers voted, or undefined. */
  readonly late: string | undefined;
  readonly newConfig: PaxosConfig;
  readonly gapMs: number;
  attempts: number;
}

interface SetChange {
  readonly removed: readonly string[];
  readonly remaining: readonly string[];
  /** The remaining controllers in the order they are stepped. */
  readonly order: readonly string[];
  readonly newConfig: PaxosConfig;
  readonly gapMs: number;
  readonly retireFirst: boolean;
  /** Waits in a row (to begin, or to step the same controller). */
  attempts: number;
}

export const paxosClusterLimits = { minControllers: 1, maxControllers: 9, maxHosts: 64, maxChaosMs: 600_000 } as const;

/** Clock drift allowed in the run, well inside the lease's drift margin (10% with the timings above). */
export const maxSimDriftPpm = 10_000;

export interface PaxosClusterRunOptions {
  readonly seed: number;
  readonly controllers: number;
  readonly hosts: number;
  /** Virtual time with faults and load before everything heals. */
  readonly chaosMs: number;
  /** After healing, the probe must commit and every learner converge within this. */
  readonly healBoundMs: number;
  /** After converging, the KV mirror must hold the final view within this. */
  readonly mirrorBoundMs: number;
  readonly config?: Partial<Omit<PaxosConfig, "acceptorIds">>;
  readonly transcriptLevel?: LogLevel;
  /**
   * Percent of controller crashes that also lose the disk (the controller restarts empty and must
   * rejoin). Only while no other controller is rejoining: losing a majority's disks is not survivable.
   */
  readonly diskLossPercent?: number;
  /** Move every snapshot, promise and rejoin-state above 512 bytes in small chunks (`simChunkedTransfer`), so small views exercise the chunked path. */
  readonly chunkedTransfers?: boolean;
  /** Controllers send unattested messages at once and leaders sync in the background, as controller processes do (ControllerActorOptions). */
  readonly leaderOverlapsItsDisk?: boolean;
  /** Every compaction with a record not packed yet writes its log later, after background packing (`maxRecordsPackedAtCompaction` 0), as large views do in controller processes. */
  readonly holdRewrites?: boolean;
  /** Removes this many controllers (at random) from the acceptor set during the chaos, one stopped controller at a time; 0 by default. */
  readonly removeControllers?: number;
  /** Adds this many controllers to the acceptor set during the chaos, one stopped old controller at a time, then each added one on an empty disk; 0 by default. */
  readonly addControllers?: number;
  /** Steps the logs even where `acceptorShrinkProblem` or `acceptorGrowthProblem` refuses: only for the tests that show the rules are needed. */
  readonly ignoreSetRules?: boolean;
  /**
   * Where the growth rule lets an old controller lag, always step one last, only once the chaos is over, and when the
   * added ones vote, cut the late one and two other old ones off from the rest: the longest lag and the split that
   * needs the rule, for the same tests.
   */
  readonly lagUntilHeal?: boolean;
  /**
   * Controllers start as controller processes do on an empty disk (runtime/controller/main.ts): every config says
   * `bootstrap`, as operators leave it, and the bootstrap gate (actors/paxos/bootstrapGate.ts) decides whether to
   * create the cluster or rejoin, at the first start and after every lost disk; every controller answers the
   * others' probes. Controllers crash only once every one passed its first gate: a new cluster whose first start was
   * interrupted is started again from empty directories (docs/paxos.md, "Bootstrap: only when the cluster never
   * ran"). With `removeControllers`, a gate that hears another set refuses, as the process does (exit 1), and the
   * controller is started again a little later, as an operator does, at most `maxGateRefusals` times in a row. Not
   * with `addControllers`: its forgotten-step shape would keep the added controllers' gates refusing until the step
   * that waits for them to vote.
   */
  readonly bootstrapGate?: boolean;
  /** With `bootstrapGate`, every controller answers `fresh` whatever it did: only for the test that shows the answers matter. */
  readonly answerFreshAlways?: boolean;
}

/** Chunked transfer settings that make the fuzz's small messages travel in 4 KiB chunks, retried fast. */
export const simChunkedTransfer: ChunkedTransferSettings = {
  chunkAboveBytes: 512,
  limits: { ...defaultTransferLimits, chunkBytes: minTransferChunkBytes, chunksInFlight: 3, retryAfterMs: 30, maxRetries: 6, transferTimeoutMs: 2_000, senderIdleMs: 1_000 },
};

export const defaultPaxosClusterRunOptions = { controllers: 3, hosts: 2, chaosMs: 1_500, healBoundMs: 3_000, mirrorBoundMs: 3_000 } as const;

export interface PaxosClusterStats {
  readonly slotsChosen: number;
  readonly commandsProposed: number;
  readonly commandsCommitted: number;
  readonly commandsRejected: number;
  readonly commandsWithoutOutcome: number;
  readonly crashes: number;
  readonly disksLost: number;
  readonly partitions: number;
  readonly pauses: number;
  readonly outages: number;
  readonly leaderChanges: number;
  readonly mirrorWrites: number;
  readonly messagesDelivered: number;
  readonly messagesRejected: number;
  /** Chunked transfers completed by any node. */
  readonly transfersCompleted: number;
  /** Compactions whose log rewrite waited for background packing (`holdRewrites`), and log rewrites completed, by all controllers. */
  readonly rewritesHeld: number;
  readonly rewritesDone: number;
  /** Virtual ms from healing to the probe's commit; -1 when it did not commit. */
  readonly probeCommitMs: number;
  /** Controllers removed from (`removeControllers`) or added to (`addControllers`) the acceptor set, and the steps that recorded the new set in a log. */
  readonly controllersRemoved: number;
  readonly controllersAdded: number;
  readonly setSteps: number;
  /** `bootstrapGate`: the gates' decisions, to create the cluster or to rejoin it, or to refuse (another set heard during a set change). */
  readonly gateBootstraps: number;
  readonly gateRejoins: number;
  readonly gateRefusals: number;
}

export interface PaxosClusterRunResult {
  readonly seed: number;
  readonly ok: boolean;
  readonly failures: readonly string[];
  readonly stats: PaxosClusterStats;
  readonly transcript: string;
}

function checkOptions(options: PaxosClusterRunOptions): void {
  const check = (name: string, value: number, min: number, max: number) => {
    if (!Number.isSafeInteger(value) || value < min || value > max) throw new RangeError(`${name} must be a whole number in [${min}, ${max}], got ${value}`);
  };
  check("seed", options.seed, 0, Number.MAX_SAFE_INTEGER);
  check("controllers", options.controllers, paxosClusterLimits.minControllers, paxosClusterLimits.maxControllers);
  check("hosts", options.hosts, 0, paxosClusterLimits.maxHosts);
  check("chaosMs", options.chaosMs, 0, paxosClusterLimits.maxChaosMs);
  check("healBoundMs", options.healBoundMs, 1, paxosClusterLimits.maxChaosMs);
  check("mirrorBoundMs", options.mirrorBoundMs, 1, paxosClusterLimits.maxChaosMs);
  check("diskLossPercent", options.diskLossPercent ?? 0, 0, 100);
  check("removeControllers", options.removeControllers ?? 0, 0, options.controllers - 1);
  check("addControllers", options.addControllers ?? 0, 0, paxosClusterLimits.maxControllers - options.controllers);
  if ((options.removeControllers ?? 0) > 0 && (options.addControllers ?? 0) > 0) throw new RangeError("removeControllers and addControllers: one set change per run");
  if (options.bootstrapGate && (options.addControllers ?? 0) > 0) throw new RangeError("bootstrapGate: not with addControllers");
  if (options.answerFreshAlways && !options.bootstrapGate) throw new RangeError("answerFreshAlways: only with bootstrapGate");
}

export function runPaxosCluster(options: Partial<PaxosClusterRunOptions> & { readonly seed: number }): PaxosClusterRunResult {
  const full: PaxosClusterRunOptions = { ...defaultPaxosClusterRunOptions, ...options };
  checkOptions(full);
  return new PaxosClusterRun(full).run();
}

type Member = { readonly kind: "controller"; actor: ControllerActor | undefined } | { readonly kind: "host"; actor: LearnerActor | undefined };

class PaxosClusterRun {
  private readonly world: SimWorld;
  private readonly server: SimStreamServer;
  private readonly config: PaxosConfig;
  /** Each controller's config from its next start on; hosts' for theirs. A set change moves them one at a time. */
  private readonly controllerConfigs = new Map<string, PaxosConfig>();
  private hostConfig: PaxosConfig;
  private readonly controllerIds: string[];
  /** The set after the change (the probe records it); `controllerIds` until then. */
  private finalControllerIds: readonly string[];
  /** Removed controllers, stopped for good. */
  private readonly retired = new Set<string>();
  /** A set change was scheduled and has not finished its last step. */
  private setChangePending = false;
  private readonly hostIds: string[];
  private readonly members = new Map<string, Member>();
  private readonly streamClients = new Map<string, SimStreamClient>();
  private readonly invariants: PaxosInvariants;
  private readonly workload: Random;
  private readonly faults: Random;
  private healed = false;
  private commandCounter = 0;
  private rewritesDone = 0;
  private readonly outcomes = new Map<string, ProposalOutcome & { readonly atMs: number }>();
  /** Controllers that lost their disk (or were added) and do not vote yet, or whose own durable view does not cover their floor yet. */
  private readonly rejoinPending = new Set<string>();
  private counts = { crashes: 0, disksLost: 0, partitions: 0, pauses: 0, outages: 0, leaderChanges: 0, mirrorWrites: 0, controllersRemoved: 0, controllersAdded: 0, setSteps: 0, gateBootstraps: 0, gateRejoins: 0, gateRefusals: 0 };
  /** `lagUntilHeal`: the split around the late controller was made, and chaos neither heals nor moves it. */
  private splitHeld = false;
  /** A growth began and has not finished: no disk is lost meanwhile (diskLossAllowed). */
  private growing = false;
  /** Controllers added by a set change (they start on empty disks, never bootstrapping). */
  private readonly addedControllerIds: string[] = [];
  /** Once a set change began: the set it moves to. Disks are then lost only where that set can still fence a rejoin. */
  private newSet: readonly string[] | undefined;
  /** `bootstrapGate`: controllers past their first gate (or started on a log); none crashes before all are. */
  private readonly passedFirstGate = new Set<string>();
  /** `bootstrapGate`: refusals in a row per controller, since its last start that passed its gate. */
  private readonly gateRefusalsInARow = new Map<string, number>();
  private mirrorSlot = -1;
  private mirrorValue: string | undefined;
  private inspector: SimStreamClient | undefined;

  constructor(private readonly options: PaxosClusterRunOptions) {
    this.world = new SimWorld({
      seed: options.seed,
      clusterId: "sim",
      transcriptLevel: options.transcriptLevel ?? "warn",
      extraPorts: ({ nodeId, clock }) => {
        // A short API timeout, so a request caught by a server outage fails soon after it (the real client's is 5 s).
        const client = this.server.client(nodeId, { clock, requestTimeoutMs: simStreamRequestTimeoutMs });
        this.streamClients.set(nodeId, client);
        return { stream: client };
      },
    });
    const world = this.world;
    const serverClock: Clock = {
      now: () => world.clock.now(),
      setTimeout: (callback, delayMs) => world.clock.schedule(delayMs, callback),
      clearTimeout: (handle) => world.clock.cancel(handle),
    };
    this.server = new SimStreamServer(serverClock, { clusterSize: 1 });
    world.onNodeLifecycle((event) => {
      if (event.type === "crashed") this.streamClients.get(event.nodeId)?.close();
    });
    this.controllerIds = Array.from({ length: options.controllers }, (_, index) => `c${index + 1}`);
    this.hostIds = Array.from({ length: options.hosts }, (_, index) => `h${index + 1}`);
    this.config = createPaxosConfig(this.controllerIds, { ...simPaxosTimings, ...options.config });
    for (const id of this.controllerIds) this.controllerConfigs.set(id, this.config);
    this.hostConfig = this.config;
    this.finalControllerIds = this.controllerIds;
    this.invariants = new PaxosInvariants(options.seed, this.controllerIds, () => world.now());
    this.workload = world.forkRandom("paxos-workload");
    this.faults = world.forkRandom("paxos-faults");
  }

  run(): PaxosClusterRunResult {
    this.watchMirror();
    for (const id of this.controllerIds) this.addController(id);
    for (const id of this.hostIds) this.addHost(id);
    this.skewClocks();
    this.scheduleChaos();
    if ((this.options.removeControllers ?? 0) > 0) this.scheduleRemoval(this.options.removeControllers!);
    if ((this.options.addControllers ?? 0) > 0) this.scheduleGrowth(this.options.addControllers!);
    this.scheduleWorkload();
    this.world.runUntil(this.options.chaosMs);
    const probeCommitMs = this.invariants.ok ? this.healAndProbe() : -1;
    if (this.invariants.ok && probeCommitMs >= 0) this.checkFinalState();
    const counters = this.world.networkCounters();
    let messagesRejected = 0;
    let transfersCompleted = 0;
    let rewritesHeld = 0;
    for (const id of this.world.nodeIds()) {
      rewritesHeld += this.world.metrics(id).counterTotal(paxosRewritesHeldMetric);
      messagesRejected += this.world.metrics(id).counterTotal("haring_messages_rejected_total");
      for (const carries of ["paxos.snapshot", "paxos.promise", "paxos.rejoin-state"]) transfersCompleted += this.world.metrics(id).counter(paxosTransfersMetric, { event: "completed", carries });
    }
    const outcomes = [...this.outcomes.values()];
    return {
      seed: this.options.seed,
      ok: this.invariants.ok,
      failures: this.invariants.violations,
      stats: {
        slotsChosen: this.invariants.slotsChosen,
        commandsProposed: this.commandCounter,
        commandsCommitted: outcomes.filter((outcome) => outcome.kind === "committed").length,
        commandsRejected: outcomes.filter((outcome) => outcome.kind === "rejected").length,
        commandsWithoutOutcome: outcomes.filter((outcome) => outcome.kind === "no-outcome").length,
        ...this.counts,
        messagesDelivered: counters.delivered,
        messagesRejected,
        transfersCompleted,
        rewritesHeld,
        rewritesDone: this.rewritesDone,
        probeCommitMs,
      },
      transcript: this.world.transcript(),
    };
  }

  // ---- nodes ----

  private addController(id: string): void {
    const member: Member = { kind: "controller", actor: undefined };
    this.members.set(id, member);
    this.world.addNode(id, (ports) => {
      const incarnation = this.world.incarnation(id);
      const clock = this.world.nodeClock(id);
      const start = (bootstrap: boolean): ControllerActor => {
        const actor = startControllerActor(ports, {
          config: this.controllerConfigs.get(id)!,
          bootstrap,
          rejections: createRejectionCounter(ports),
          client: simClientLimits,
          kvMirror: simMirrorOptions,
          ...(this.options.chunkedTransfers ? { transfer: simChunkedTransfer } : {}),
          ...(this.options.leaderOverlapsItsDisk ? { leaderOverlapsItsDisk: true } : {}),
          ...(this.options.holdRewrites ? { maxRecordsPackedAtCompaction: 0 } : {}),
          observer: {
            synced: (nodeId, records, rewritten) => {
              if (rewritten) this.rewritesDone++;
              this.invariants.synced(nodeId, records);
            },
            // A crash may leave whole records of a write whose sync never completed (a torn prefix that ends on a record
            // boundary): they are durable now, and a recovered vote counts like one whose sync was reported.
            recovered: (nodeId, records) => {
              this.invariants.recovered(nodeId, records);
              this.checkRecall(nodeId, records);
            },
            stepped: (report) => {
              // Rejoined once it votes and its own durable view covers the floor its fences gave it: until then the slots below
              // are on its peers alone, and losing one of those too is a second controller without state.
              if (this.rejoinPending.has(id) && report.state.acceptor.mode === "voting" && !ownViewBehindFloor(report.state) && this.ownViewProblem(id) === null) {
                this.rejoinPending.delete(id);
              }
              this.invariants.learnerStepped(id, incarnation, report.beforeSlot, report.state.learner, report.applied);
              const proposer = report.state.proposer;
              const leaseEndsAtGlobalMs = holdsLease(proposer, report.nowMs)
                ? this.world.now() + (proposer.leader!.leaseUntilMs - report.nowMs) / (1 + clock.driftPpm / 1e6)
                : -1;
              this.invariants.lease(id, leaseEndsAtGlobalMs);
            },
          },
          onFatal: (error) => this.invariants.fail(`controller ${id} stopped: ${error}`),
        });
        actor.onLeadership((leadership) => {
          if (leadership.role === "leader") this.counts.leaderChanges++;
        });
        member.actor = actor;
        return actor;
      };
      if (this.options.bootstrapGate) return this.startThroughGate(id, ports, member, start);
      // The first boot creates the cluster; a restarted node recovers from its disk (or rejoins if it is empty), as an added one does from the start.
      const actor = start(incarnation === 1 && !this.addedControllerIds.includes(id));
      return {
        stop: () => {
          this.invariants.crashed(id);
          actor.stop();
        },
      };
    });
  }

  /**
   * `bootstrapGate`: starts as a controller process does (runtime/controller/main.ts). It answers the others' probes
   * from the start; on a log it runs at once, on an empty disk (the first start, or a lost disk) its config's
   * `bootstrap` is a wish and the gate decides. Checked besides the usual invariants: no gate creates the cluster
   * once a slot was chosen (PaxosInvariants.gateBootstrapped).
   */
  private startThroughGate(id: string, ports: NodePorts, member: Member, start: (bootstrap: boolean) => ControllerActor): { stop(): void } {
    const config = this.controllerConfigs.get(id)!;
    member.actor = undefined;
    const emptyDisk = ports.storage.open(paxosLogName).readAll().length === 0;
    const answerer = createBootstrapAnswerer(emptyDisk);
    const responder = startBootstrapResponder(ports, {
      controllerIds: config.acceptorIds,
      answer: () => (this.options.answerFreshAlways ? "fresh" : answerer.answer()),
      rejections: createRejectionCounter(ports),
    });
    let actor: ControllerActor | undefined;
    const run = (bootstrap: boolean): void => {
      this.passedFirstGate.add(id);
      actor = start(bootstrap);
      answerer.controllerStarted(actor);
    };
    let gate: BootstrapGate | undefined;
    if (!emptyDisk) run(false);
    else {
      gate = startBootstrapGate(ports, {
        controllerIds: config.acceptorIds,
        rejections: createRejectionCounter(ports),
        timings: { ...simBootstrapGateTimings, quarantineMs: config.rejoinQuarantineMs },
        onDecision: (decision) => {
          gate = undefined;
          answerer.passedGate(decision.kind === "bootstrap");
          if (decision.kind === "refuse") {
            this.gateRefused(id, decision.error);
            return;
          }
          this.gateRefusalsInARow.delete(id);
          if (decision.kind === "rejoin") {
            this.counts.gateRejoins++;
            // Without state like a lost disk (also at a first start that came after the others began): no other disk is lost until it votes.
            this.rejoinPending.add(id);
          } else {
            this.counts.gateBootstraps++;
            this.invariants.gateBootstrapped(id);
          }
          run(decision.kind === "bootstrap");
        },
      });
    }
    return {
      stop: () => {
        this.invariants.crashed(id);
        gate?.stop();
        responder.unsubscribe();
        answerer.stop();
        actor?.stop();
      },
    };
  }

  /**
   * A gate refused: another controller answered with another set. Only a set change explains that; the process exits
   * 1 and the operator starts it again once the others took their steps (docs/paxos.md, "Removing controllers").
   */
  private gateRefused(id: string, error: string): void {
    if ((this.options.removeControllers ?? 0) === 0) {
      this.invariants.fail(`controller ${id} refused to start: ${error}`);
      return;
    }
    this.counts.gateRefusals++;
    const inARow = (this.gateRefusalsInARow.get(id) ?? 0) + 1;
    this.gateRefusalsInARow.set(id, inARow);
    if (inARow > maxGateRefusals) {
      this.invariants.fail(`liveness: the bootstrap gate of ${id} refused ${inARow} times in a row: ${error}`);
      return;
    }
    // Not inside the gate's own callback: the process exits on the next turn.
    this.world.schedule(0, () => {
      if (this.world.nodeState(id) === "crashed") return;
      this.world.crash(id);
      this.world.schedule(setChangeRetryMs, () => {
        if (this.world.nodeState(id) === "crashed" && !this.retired.has(id)) this.world.restart(id);
      });
    });
  }

  /**
   * A controller restarted on its own log must pass the vote recall (actors/paxos/voteRecall.ts): nothing any running
   * controller saw of its disk may be missing from the log, or the recall would refuse a log that is not an old copy.
   */
  private checkRecall(nodeId: string, records: readonly ViewDurableRecord[]): void {
    const own = durableVotingState(nodeId, this.controllerConfigs.get(nodeId)!, records);
    if (own === null) return;
    const { asked } = recallPeers(own, this.controllerConfigs.get(nodeId)!.acceptorIds, nodeId);
    for (const [peerId, peer] of this.members) {
      if (!asked.includes(peerId) || peer.kind !== "controller" || peer.actor === undefined || this.world.nodeState(peerId) === "crashed") continue;
      const shortfall = evidenceShortfall(own, peer.actor.voteEvidence(nodeId));
      if (shortfall !== undefined) this.invariants.fail(`vote recall: ${nodeId} restarted on its own log, which ${peerId}'s evidence refuses: ${shortfall}`);
    }
  }

  private addHost(id: string): void {
    const member: Member = { kind: "host", actor: undefined };
    this.members.set(id, member);
    this.world.addNode(id, (ports) => {
      const incarnation = this.world.incarnation(id);
      const actor = startLearnerActor(ports, {
        config: this.hostConfig,
        rejections: createRejectionCounter(ports),
        client: simClientLimits,
        ...(this.options.chunkedTransfers ? { transfer: simChunkedTransfer } : {}),
        observer: { stepped: (report) => this.invariants.learnerStepped(id, incarnation, report.beforeSlot, report.state, report.applied) },
      });
      member.actor = actor;
      return { stop: () => actor.stop() };
    });
  }

  /** Clocks start ahead of global time by up to 5 s and drift by up to ±1%; a clock never steps back or jumps later. */
  private skewClocks(): void {
    const random = this.faults;
    for (const id of this.world.nodeIds()) this.world.setClockSkew(id, random.int(5_000), random.int(2 * maxSimDriftPpm + 1) - maxSimDriftPpm);
  }

  /** Sees every version of the mirrored view, and checks it never goes back. */
  private watchMirror(): void {
    const serverClock = this.server.clock;
    const inspector = (this.inspector = this.server.client("inspector", { clock: serverClock }));
    const options = { ...defaultViewKvMirrorOptions, ...simMirrorOptions };
    inspector.ensureKv({ bucket: options.bucket, replicas: options.replicas, history: options.history, maxValueBytes: options.maxValueBytes }, (outcome) => {
      if (!outcome.ok) {
        this.invariants.fail(`the inspector could not create the view bucket: ${outcome.error}`);
        return;
      }
      inspector.kvWatch(options.bucket, this.world.clusterId, (entry) => {
        const slot = storedMirrorSlot(entry.value);
        if (slot < 0) this.invariants.fail(`the view mirror holds a value that is not a mirrored view (revision ${entry.revision})`);
        if (slot < this.mirrorSlot) this.invariants.fail(`the view mirror went back from slot ${this.mirrorSlot} to ${slot}`);
        this.mirrorSlot = Math.max(this.mirrorSlot, slot);
        this.mirrorValue = new TextDecoder().decode(entry.value);
        this.counts.mirrorWrites++;
      });
    });
  }

  // ---- faults ----

  private upNodes(): string[] {
    return this.world.nodeIds().filter((id) => this.world.nodeState(id) === "up");
  }

  private scheduleChaos(): void {
    const random = this.faults;
    const world = this.world;
    world.setLatency({ baseMs: 0.2 + random.next() * 2, jitterMs: random.next() * 5 });
    world.setLoss(random.next() * 0.15);
    world.setDuplication(random.next() * 0.1);
    world.setReorder({ fraction: random.next() * 0.3, maxExtraDelayMs: 1 + random.int(20) });
    world.setSyncLatency(0.5 + random.next() * 4);
    world.setTornWrites(0.5);
    const chaosMs = this.options.chaosMs;
    const events = 3 + random.int(10);
    for (let index = 0; index < events; index++) {
      const atMs = 100 + random.int(Math.max(1, chaosMs - 150));
      const kind = random.int(100);
      world.schedule(atMs, () => {
        if (this.healed) return;
        if (kind < 30) this.crashSomeNode(random);
        // `lagUntilHeal`'s split around the late controller holds until the heal.
        else if (kind < 55) {
          if (!this.splitHeld) this.partition(random);
        } else if (kind < 65) {
          if (!this.splitHeld) world.heal();
        }
        else if (kind < 77) this.pauseSomeNode(random);
        else if (kind < 85) world.setLoss(random.next() * 0.3);
        else if (kind < 93) this.changeDrift(random);
        else this.streamOutage(random);
      });
    }
  }

  private crashSomeNode(random: Random): void {
    const gatesPending = this.options.bootstrapGate === true && this.passedFirstGate.size < this.controllerIds.length;
    const up = this.upNodes().filter((id) => !gatesPending || !this.controllerConfigs.has(id));
    if (up.length === 0) return;
    const id = up[random.int(up.length)]!;
    this.world.crash(id);
    this.counts.crashes++;
    const diskLossPercent = this.options.diskLossPercent ?? 0;
    if (diskLossPercent > 0 && this.controllerConfigs.has(id) && random.int(100) < diskLossPercent && this.rejoinPending.size === 0 && this.diskLossAllowed()) {
      this.world.disk(id).wipe();
      this.invariants.diskLost(id);
      this.rejoinPending.add(id);
      this.counts.disksLost++;
    }
    this.world.schedule(50 + random.int(600), () => {
      if (!this.healed && this.world.nodeState(id) === "crashed" && !this.retired.has(id)) this.world.restart(id);
    });
  }

  /**
   * A rejoin needs the fences of a majority of the set among the others: a set of 2 has no such majority, and while
   * added controllers have not all voted, a larger set's majority may need every old controller (3 → 5: a lost disk
   * among the old three leaves two, and neither it nor an added one could rejoin).
   */
  private diskLossAllowed(): boolean {
    return !this.growing && (this.newSet === undefined || this.newSet.length >= 3);
  }

  // ---- a set change: controllers removed, as `haring acceptors shrink` does it ----

  /**
   * Starts between a tenth and four tenths into the chaos (later if it would leave two controllers while one is
   * rejoining) and takes half of it, or more. Each remaining controller in a random order is stopped (if it runs),
   * its log gets the `init` naming the smaller set, and it starts again with the new config, as a careful operator
   * does with the tool: one whose durable log does not cover its floor yet is left running and tried again later (and
   * if that changed between the look and the stop, the tool refuses and it starts with the old config again); a log
   * without an `init` (a lost disk) is left as it is, and that controller rejoins in the new set. The removed
   * controllers are stopped for good before the first step (only once every remaining controller's own view covers
   * its floor, as `haring inspect` shows) or after the last; the hosts' configs change last.
   */
  private scheduleRemoval(count: number): void {
    const random = this.faults;
    const chaosMs = this.options.chaosMs;
    const inOrder = shuffled(random, this.controllerIds);
    const removed = inOrder.slice(0, count);
    const remaining = this.controllerIds.filter((id) => !removed.includes(id));
    // The steps go in the shuffled order of the controllers that stay.
    const order = inOrder.slice(count);
    const retireFirst = random.int(2) === 0;
    const newConfig = createPaxosConfig(remaining, { ...simPaxosTimings, ...this.options.config });
    const gapMs = Math.max(1, Math.floor((chaosMs * 0.5) / (order.length + 1)));
    const change: SetChange = { removed, remaining, order, newConfig, gapMs, retireFirst, attempts: 0 };
    this.setChangePending = true;
    this.world.schedule(Math.floor(chaosMs * (0.1 + 0.3 * random.next())), () => this.beginRemoval(change));
  }

  private beginRemoval(change: SetChange): void {
    // A set of two cannot fence a rejoin (one other, a majority of two): the change waits for a lost disk to rejoin first.
    const waitForRejoin = change.remaining.length < 3 && this.rejoinPending.size > 0;
    const waitForViews = change.retireFirst && change.remaining.some((id) => this.ownViewProblem(id) !== null);
    if (waitForRejoin || waitForViews) {
      this.waitThen(change, `the set change never began: ${waitForRejoin ? "a rejoin never completed" : "a remaining controller's view never covered its floor"}`, () => this.beginRemoval(change));
      return;
    }
    change.attempts = 0;
    this.newSet = change.remaining;
    this.finalControllerIds = change.remaining;
    if (change.retireFirst) for (const id of change.removed) this.retire(id);
    this.world.schedule(1 + this.faults.int(change.gapMs), () => this.stepNext(change, 0));
  }

  private stepNext(change: SetChange, index: number): void {
    const random = this.faults;
    if (index === change.order.length) {
      if (!change.retireFirst) for (const id of change.removed) this.retire(id);
      this.hostConfig = change.newConfig;
      this.setChangePending = false;
      return;
    }
    const id = change.order[index]!;
    // As an operator reads `haring inspect` first: a controller still catching up is left running until its view covers
    // its floor. One still rejoining is stepped (its new config is all it takes): it may need the removed ones' fences.
    const problem = this.world.nodeState(id) === "crashed" ? null : this.ownViewProblem(id);
    if (problem !== null && (problem !== "rejoining" || change.remaining.length < 3)) {
      this.waitThen(change, `the set change never stepped ${id}: its view never covered its floor`, () => this.stepNext(change, index));
      return;
    }
    const stepped = this.stepController(id, change.remaining, change.newConfig);
    if (!this.invariants.ok) return;
    if (!stepped && ++change.attempts > maxSetChangeWaits) {
      this.invariants.fail(`the set change never stepped ${id}: its view never covered its floor`);
      return;
    }
    if (stepped) change.attempts = 0;
    const restartAfterMs = 10 + random.int(100);
    this.world.schedule(restartAfterMs, () => {
      if (this.world.nodeState(id) === "crashed") this.world.restart(id);
    });
    this.world.schedule(restartAfterMs + (stepped ? 1 + random.int(change.gapMs) : setChangeRetryMs), () => this.stepNext(change, stepped ? index + 1 : index));
  }

  /** Asks `again` once more after `setChangeRetryMs`; after `maxSetChangeWaits` waits in a row the change is stuck, a liveness failure named by `stuck`. */
  private waitThen(change: { attempts: number }, stuck: string, again: () => void): void {
    if (++change.attempts > maxSetChangeWaits) this.invariants.fail(stuck);
    else this.world.schedule(setChangeRetryMs, again);
  }

  /** Why the controller's durable log (what `haring inspect` shows) does not hold its own view yet: still rejoining, or its view short of its floor; null when it does. */
  private ownViewProblem(id: string): string | null {
    const read = decodeRecords(this.world.disk(id).durableRecords(paxosLogName), id);
    if (!read.ok) return read.error;
    return lastInitRecord(read.records) !== undefined ? ownViewBehindFloorProblem(id, read.records) : "rejoining";
  }

  /** Stops the controller and moves its log to the set `to`, as the tool does; false (nothing written) when the tool refuses, with the set rule's refusal a violation. */
  private stepController(id: string, to: readonly string[], config: PaxosConfig, kind: "shrink" | "grow" = "shrink"): boolean {
    if (this.world.nodeState(id) !== "crashed") this.world.crash(id);
    const disk = this.world.disk(id);
    const read = decodeRecords(disk.durableRecords(paxosLogName), id);
    if (!read.ok) {
      this.invariants.fail(`the set change could not read ${id}'s log: ${read.error}`);
      return false;
    }
    const last = lastInitRecord(read.records);
    if (last !== undefined && !this.options.ignoreSetRules) {
      const current = last.acceptors ?? this.controllerIds;
      const problem = kind === "shrink" ? acceptorShrinkProblem(current, to) : acceptorGrowthProblem(current, to, maxAcceptors);
      if (problem !== null) {
        this.invariants.fail(`the set change on ${id}: ${problem}`);
        return false;
      }
      if (kind === "shrink" && ownViewBehindFloorProblem(id, read.records) !== null) return false;
    }
    if (last !== undefined) disk.appendDurably(paxosLogName, encodeRecord(id, steppedInitRecord(last, to)));
    // Its next start picks rounds above every round its log knows (or, without a log, above any it was voted at).
    const roundsKnownUpTo = last === undefined ? 0 : (durableVotingState(id, this.controllerConfigs.get(id)!, read.records)?.roundsKnownUpTo ?? 0);
    this.invariants.ballotsCountWith(id, Math.max(roundsKnownUpTo, this.invariants.maxRoundVotedFor(id)), to);
    this.controllerConfigs.set(id, config);
    this.counts.setSteps++;
    return true;
  }

  // ---- a set change: controllers added, as `haring acceptors grow` does it ----

  /**
   * Starts between a tenth and four tenths into the chaos: each old controller in a random order is stopped (if it
   * runs), its log gets the `init` naming the larger set (a lost disk only gets the new config), and it starts with
   * the new config; then each added controller starts on an empty disk, each after the one before caught up. It
   * begins only while no lost disk rejoins, and no disk is lost until it is done (diskLossAllowed). Where the growth
   * rule lets an old controller lag (a majority of the new set below the old set's size), a third of the runs step
   * one of them only after the added ones voted. The hosts' configs change last.
   */
  private scheduleGrowth(count: number): void {
    const random = this.faults;
    const chaosMs = this.options.chaosMs;
    const order = shuffled(random, this.controllerIds);
    const added = Array.from({ length: count }, (_, index) => `c${this.controllerIds.length + index + 1}`);
    const grown = [...this.controllerIds, ...added];
    const mayLag = majorityOf(grown.length) < this.controllerIds.length;
    const late = mayLag && (this.options.lagUntilHeal || random.int(3) === 0) ? order.pop() : undefined;
    const change: Growth = { added, grown, order, late, newConfig: createPaxosConfig(grown, { ...simPaxosTimings, ...this.options.config }), gapMs: Math.max(1, Math.floor((chaosMs * 0.5) / (order.length + count + 1))), attempts: 0 };
    this.setChangePending = true;
    const begin = (): void => {
      // Not while a lost disk rejoins: the added ones would make two controllers without state.
      if (this.rejoinPending.size > 0) {
        this.waitThen(change, "the set change never began: a rejoin never completed", begin);
        return;
      }
      change.attempts = 0;
      this.growing = true;
      this.finalControllerIds = grown;
      this.growNext(change, 0);
    };
    this.world.schedule(Math.floor(chaosMs * (0.1 + 0.3 * random.next())), begin);
  }

  /** Steps `order[index]`, or once they are all done starts the added controllers, then the late one, then the hosts. */
  private growNext(change: Growth, index: number): void {
    const random = this.faults;
    if (index < change.order.length) {
      this.stepThenContinue(change.order[index]!, change.grown, change.newConfig, () => this.growNext(change, index + 1), change.gapMs);
      return;
    }
    const next = change.added.find((id) => !this.members.has(id));
    if (next !== undefined) {
      // One controller without state at a time: the added one before, or a lost disk, rejoins first.
      if (this.rejoinPending.size > 0) {
        this.waitThen(change, `the set change never started ${next}: a rejoin never completed`, () => this.growNext(change, index));
        return;
      }
      change.attempts = 0;
      this.addedControllerIds.push(next);
      this.controllerConfigs.set(next, change.newConfig);
      this.invariants.ballotsCountWith(next, 0, change.grown);
      this.invariants.diskLost(next);
      this.rejoinPending.add(next);
      this.addController(next);
      this.world.setClockSkew(next, random.int(5_000), random.int(2 * maxSimDriftPpm + 1) - maxSimDriftPpm);
      this.counts.controllersAdded++;
      this.world.schedule(1 + random.int(change.gapMs), () => this.growNext(change, index));
      return;
    }
    if (this.rejoinPending.size > 0) {
      this.waitThen(change, "the set change never finished: an added controller never rejoined", () => this.growNext(change, index));
      return;
    }
    const finish = (): void => {
      this.hostConfig = change.newConfig;
      this.growing = false;
      this.setChangePending = false;
    };
    const late = change.late;
    if (late === undefined) {
      finish();
    } else if (this.options.lagUntilHeal && !this.healed) {
      if (!this.splitHeld) {
        this.splitHeld = true;
        const oldSide = [late, ...change.order.slice(0, 2)];
        this.world.partition([oldSide, this.world.nodeIds().filter((id) => !oldSide.includes(id))]);
      }
      this.world.schedule(setChangeRetryMs, () => this.growNext(change, index));
    } else {
      this.stepThenContinue(late, change.grown, change.newConfig, finish, change.gapMs);
    }
  }

  /** Steps one old controller to the larger set (stop, log, config, start) and calls `then` once it took; a step the tool refuses ends the change. */
  private stepThenContinue(id: string, to: readonly string[], config: PaxosConfig, then: () => void, gapMs: number): void {
    const random = this.faults;
    if (!this.stepController(id, to, config, "grow")) return;
    this.world.schedule(10 + random.int(100), () => {
      if (this.world.nodeState(id) === "crashed") this.world.restart(id);
    });
    this.world.schedule(10 + random.int(100) + 1 + random.int(gapMs), then);
  }

  /** Stopped for good: never restarted, no longer a member whose view must converge. */
  private retire(id: string): void {
    if (this.world.nodeState(id) !== "crashed") this.world.crash(id);
    this.retired.add(id);
    this.members.delete(id);
    this.rejoinPending.delete(id);
    this.counts.controllersRemoved++;
  }

  private pauseSomeNode(random: Random): void {
    const up = this.upNodes();
    if (up.length === 0) return;
    this.world.pause(up[random.int(up.length)]!, 30 + random.int(400));
    this.counts.pauses++;
  }

  private partition(random: Random): void {
    this.world.heal();
    this.counts.partitions++;
    const ids = this.world.nodeIds();
    const sides = ids.map(() => random.int(2));
    if (random.int(3) === 0) {
      // One-way: side 0 cannot reach side 1, which still reaches side 0.
      for (let from = 0; from < ids.length; from++) {
        for (let to = 0; to < ids.length; to++) if (sides[from] === 0 && sides[to] === 1) this.world.blockLink(ids[from]!, ids[to]!);
      }
      return;
    }
    const groups = [ids.filter((_, index) => sides[index] === 0), ids.filter((_, index) => sides[index] === 1)].filter((group) => group.length > 0);
    if (groups.length === 2) this.world.partition(groups);
  }

  private changeDrift(random: Random): void {
    const ids = this.world.nodeIds();
    const id = ids[random.int(ids.length)]!;
    const clock = this.world.nodeClock(id);
    // The same reading from now on, only the rate changes.
    this.world.setClockSkew(id, clock.offsetMs, random.int(2 * maxSimDriftPpm + 1) - maxSimDriftPpm);
  }

  private streamOutage(random: Random): void {
    if (!this.server.available) return;
    this.server.setAvailable(false);
    this.counts.outages++;
    this.world.schedule(100 + random.int(700), () => this.server.setAvailable(true));
  }

  // ---- workload ----

  private scheduleWorkload(): void {
    const submit = (): void => {
      if (this.healed) return;
      const up = this.upNodes();
      if (up.length > 0) this.propose(up[this.workload.int(up.length)]!, this.randomCommand());
      this.world.schedule(5 + this.workload.int(40), submit);
    };
    this.world.schedule(this.workload.int(50), submit);
  }

  private propose(nodeId: string, command: ViewCommand): boolean {
    const actor = this.members.get(nodeId)?.actor;
    if (!actor) return false;
    const result = actor.propose(command, (outcome) => {
      this.outcomes.set(outcome.commandId, { ...outcome, atMs: this.world.now() });
      this.invariants.clientOutcome(outcome);
    });
    if (!result.ok && !result.error.includes("stopped") && !result.error.includes("failed to start")) this.invariants.fail(`propose on ${nodeId} refused: ${result.error}`);
    return result.ok;
  }

  private randomCommand(): ViewCommand {
    return randomViewCommand(this.workload, `cmd-${this.commandCounter++}`);
  }


  // ---- healing, liveness and the final state ----

  private healAndProbe(): number {
    const world = this.world;
    this.healed = true;
    world.heal();
    world.setLoss(0);
    world.setDuplication(0);
    world.setReorder({ fraction: 0, maxExtraDelayMs: 0 });
    this.server.setAvailable(true);
    const restartAll = (): void => {
      for (const id of world.nodeIds()) {
        if (world.nodeState(id) === "paused") world.resume(id);
        else if (world.nodeState(id) === "crashed" && !this.retired.has(id)) world.restart(id);
      }
    };
    restartAll();
    // The operator finishes a set change before the probe: its steps restart controllers, and with them their proposals.
    if (this.setChangePending) {
      const changeDeadlineMs = world.now() + this.options.healBoundMs;
      while (this.setChangePending && world.now() < changeDeadlineMs && this.invariants.ok) world.runFor(20);
      if (this.setChangePending) {
        this.invariants.fail(`liveness: the set change did not finish within ${this.options.healBoundMs}ms of healing`);
        return -1;
      }
      restartAll();
    }
    const healedAtMs = world.now();
    const probeId = `probe-${this.options.seed}`;
    const proposers = world.nodeIds().filter((id) => !this.retired.has(id));
    const prober = proposers[this.workload.int(proposers.length)]!;
    const probe: ViewCommand = { id: probeId, type: "controllers.set", controllerIds: [...this.finalControllerIds] };
    // A controller still at its bootstrap gate (`bootstrapGate`) runs no actor yet: the probe goes in once it does.
    let probeProposed = this.propose(prober, probe);
    const deadlineMs = healedAtMs + this.options.healBoundMs;
    let committedAtMs = -1;
    while (world.now() < deadlineMs && this.invariants.ok) {
      world.runFor(20);
      if (!probeProposed) probeProposed = this.propose(prober, probe);
      if (committedAtMs < 0) {
        const outcome = this.outcomes.get(probeId);
        if (outcome && outcome.kind !== "no-outcome") committedAtMs = outcome.atMs;
        else if (outcome) {
          this.invariants.fail(`the probe got no outcome on ${prober}: ${outcome.reason}`);
          return -1;
        }
      }
      if (committedAtMs >= 0 && this.converged()) return committedAtMs - healedAtMs;
    }
    if (!this.invariants.ok) return -1;
    const summary = [...this.members].map(([id, member]) => `${id}:${member.actor?.appliedSlots() ?? "-"}${member.kind === "controller" ? `/${member.actor?.leadership().role ?? "-"}/${member.actor?.status ?? "-"}` : ""}`);
    this.invariants.fail(`liveness: ${committedAtMs < 0 ? "the probe did not commit" : "the learners did not converge"} within ${this.options.healBoundMs}ms of healing (${summary.join(" ")})`);
    return -1;
  }

  private learnerViews(): Array<{ readonly id: string; readonly slots: number; readonly json: () => string }> {
    const views = [];
    for (const [id, member] of this.members) {
      const actor = member.actor;
      if (!actor) continue;
      views.push({ id, slots: actor.appliedSlots(), json: () => canonicalViewJson(actor.view()) });
    }
    return views;
  }

  /** The mirrored value whole: as stored, or assembled from its parts by the manifest (viewKvLayout.ts). */
  private readMirror(): string | undefined {
    if (this.mirrorValue === undefined || parseManifest(new TextEncoder().encode(this.mirrorValue)) === null) return this.mirrorValue;
    let result: MirrorReadResult | undefined;
    readMirroredValue(this.inspector!, defaultViewKvMirrorOptions.bucket, this.world.clusterId, (outcome) => (result = outcome));
    while (result === undefined) this.world.runFor(5);
    return result.ok && result.value ? new TextDecoder().decode(result.value) : undefined;
  }

  private converged(): boolean {
    const views = this.learnerViews();
    if (views.length !== this.members.size) return false;
    for (const member of this.members.values()) if (member.kind === "controller" && member.actor?.status !== "running") return false;
    const target = views[0]!.slots;
    if (views.some((view) => view.slots !== target)) return false;
    const distinct = new Set(views.map((view) => view.json()));
    if (distinct.size !== 1) {
      this.invariants.fail(`learners at slot ${target} hold ${distinct.size} different views`);
      return false;
    }
    return true;
  }

  /**
   * Clients still retrying commands from the chaos phase may commit more after the probe, so the final
   * view is the one all learners hold once the mirror has caught up with it too.
   */
  private checkFinalState(): void {
    const deadlineMs = this.world.now() + this.options.mirrorBoundMs;
    let finalSlot = -1;
    let finalJson = "";
    for (;;) {
      if (this.converged()) {
        const views = this.learnerViews();
        finalSlot = views[0]!.slots;
        if (this.mirrorSlot === finalSlot) {
          finalJson = views[0]!.json();
          if (this.readMirror()?.endsWith(`"view":${finalJson}}`)) break;
        }
      }
      if (!this.invariants.ok) return;
      if (this.world.now() >= deadlineMs) {
        this.invariants.fail(`the view mirror holds slot ${this.mirrorSlot}, not the learners' slot ${finalSlot}, ${this.options.mirrorBoundMs}ms after the probe committed`);
        return;
      }
      this.world.runFor(20);
    }
    const finalView = [...this.members.values()][0]!.actor!.view();
    for (const [commandId, slot] of this.invariants.committed) {
      const remembered = finalView.recentCommandIndex.get(commandId);
      if (!remembered) this.invariants.fail(`command ${commandId}, committed at slot ${slot}, is missing from the final view`);
      else if (remembered.slot !== slot) this.invariants.fail(`command ${commandId} was committed at slot ${slot}, the final view has it at ${remembered.slot}`);
    }
  }
}

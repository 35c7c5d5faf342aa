/**
 * A pure, deterministic randomized cluster for the Paxos cores: 3 or 5
 * controllers (acceptor + proposer + learner each) and a few host learners,
 * driven on a virtual clock with its own message pool. One seed fixes
 * everything: latencies, loss, duplication, reordering, partitions (also
 * one-way), crashes that lose unsynced records and unsent messages, restarts,
 * restarts from an empty disk, clock rates, and the client commands.
 *
 * Checked throughout by the same PaxosInvariants as the actor-level
 * simulation (sim/paxos/paxosInvariants.ts): agreement on durable votes,
 * every learner applying the chosen values with the same outcomes and epochs,
 * epochs never going back while a learner runs, client outcomes naming the
 * slot that holds the command, no command taking effect twice, exclusive
 * leases, and no promise or vote from a wiped disk before its rejoin.
 * Then the network heals, crashed controllers restart, and a probe command
 * must commit and every learner converge to the same view within a bound.
 */
import { createSeededRandom } from "../../actors/seededRandom.ts";
import type { Random } from "../../actors/ports/random.ts";
import { formatBallot } from "../../machines/paxos/ballot.ts";
import { createPaxosConfig, type PaxosConfig } from "../../machines/paxos/config.ts";
import {
  createControllerNode,
  stepControllerNode,
  type ControllerInput,
  type ControllerNodeState,
} from "../../machines/paxos/controllerNode.ts";
import { createLearner, stepLearner, type LearnerInput, type LearnerState } from "../../machines/paxos/learner.ts";
import { learnerBroadcast, type PaxosMessage } from "../../machines/paxos/messages.ts";
import { holdsLease } from "../../machines/paxos/proposer.ts";
import {
  createProposalClient,
  defaultProposalClientLimits,
  stepProposalClient,
  type ProposalClientInput,
  type ProposalClientState,
  type ProposalOutcome,
} from "../../machines/paxos/proposalClient.ts";
import type { DurableRecord } from "../../machines/paxos/records.ts";
import { describeSlotValue } from "../../machines/paxos/values.ts";
import type { ViewCommand } from "../../machines/view/viewCommands.ts";
import { canonicalViewJson } from "../../machines/view/viewSnapshot.ts";
import { leaderElectedCommand, viewStateMachine } from "../../machines/view/viewStateMachine.ts";
import type { View } from "../../machines/view/viewTypes.ts";
import { simPaxosTimings } from "../../sim/paxos/paxosClusterRun.ts";
import { PaxosInvariants } from "../../sim/paxos/paxosInvariants.ts";
import { VirtualClock } from "../../sim/virtualClock.ts";
import { randomViewCommand } from "../../sim/paxos/randomViewCommand.ts";

type Command = ViewCommand;
type Message = PaxosMessage<Command>;
type Record = DurableRecord<Command>;

export interface ClusterRunOptions {
  readonly seed: number;
  readonly acceptorCount: number;
  readonly hostLearnerCount: number;
  /** Virtual time with faults before the network heals. */
  readonly chaosMs: number;
  /** After healing, a probe must commit and all learners converge within this. */
  readonly healBoundMs: number;
  /** Tick period of every node. */
  readonly tickMs: number;
  /** Upper bound of one-way latency (duplicates included). */
  readonly maxLatencyMs: number;
  readonly config?: Partial<Omit<PaxosConfig, "acceptorIds">>;
  /** Receives one line per delivery, fault and leadership change, for debugging a seed. */
  readonly trace?: (line: string) => void;
}

export interface ClusterRunResult {
  readonly seed: number;
  /** Invariant violations, each naming the seed; empty when the run is correct. */
  readonly failures: readonly string[];
  readonly slotsChosen: number;
  readonly commandsCommitted: number;
  readonly crashes: number;
  readonly wipes: number;
  readonly messagesDelivered: number;
  readonly probeCommitMs: number;
}

interface QueuedWrite {
  readonly records: readonly Record[];
  readonly rewrite: readonly Record[] | null;
  readonly messages: readonly Message[];
}

interface ControllerSim {
  readonly id: string;
  alive: boolean;
  incarnation: number;
  state: ControllerNodeState<Command, View> | null;
  disk: Record[];
  diskWiped: boolean;
  queue: QueuedWrite[];
  syncPending: boolean;
  rate: number;
  offsetMs: number;
  client: ProposalClientState<Command>;
}

interface HostSim {
  readonly id: string;
  alive: boolean;
  incarnation: number;
  learner: LearnerState<Command, View>;
  client: ProposalClientState<Command>;
}

/** The simulated cluster's timings (sim/paxos/paxosClusterRun.ts): the pure harness and the actors' simulation run alike. */
export const paxosHarnessConfig = simPaxosTimings;

export const defaultClusterRunOptions = {
  acceptorCount: 3,
  hostLearnerCount: 2,
  chaosMs: 900,
  healBoundMs: 3_000,
  tickMs: 20,
  maxLatencyMs: 30,
} as const;

export function runCluster(options: Partial<ClusterRunOptions> & { seed: number }): ClusterRunResult {
  return new ClusterRun({ ...defaultClusterRunOptions, ...options }).run();
}

class ClusterRun {
  private readonly clock = new VirtualClock();
  private readonly random: Random;
  private readonly faultRandom: Random;
  private readonly netRandom: Random;
  private readonly config: PaxosConfig;
  private readonly controllers: ControllerSim[] = [];
  private readonly hosts: HostSim[] = [];
  private readonly invariants: PaxosInvariants;
  /** Directed links that drop everything: "from>to". */
  private readonly cut = new Set<string>();
  private lossRate = 0;
  private duplicateRate = 0;
  /** slot → ballot → value description → acceptors with a durable vote. */
  private readonly outcomes: Array<ProposalOutcome & { atMs: number }> = [];
  private commandCounter = 0;
  private crashes = 0;
  private wipes = 0;
  private messagesDelivered = 0;
  private healed = false;

  constructor(private readonly options: ClusterRunOptions) {
    const root = createSeededRandom(options.seed);
    this.random = root.fork("workload");
    this.faultRandom = root.fork("faults");
    this.netRandom = root.fork("network");
    const ids = Array.from({ length: options.acceptorCount }, (_, index) => `c${index + 1}`);
    this.invariants = new PaxosInvariants(options.seed, ids, () => this.clock.now());
    this.config = createPaxosConfig(ids, { ...paxosHarnessConfig, ...options.config });
    const clientConfig = { ...defaultProposalClientLimits, controllerIds: ids, retryAfterMs: 150, maxRetryDelayMs: 600, maxProposeAttempts: 8 };
    const clockRandom = root.fork("clocks");
    for (const id of ids) {
      this.controllers.push({
        id,
        alive: false,
        incarnation: 0,
        state: null,
        disk: [],
        diskWiped: false,
        queue: [],
        syncPending: false,
        // Clocks run at slightly different rates (±1%); the lease's drift margin covers 10%.
        rate: 0.99 + clockRandom.next() * 0.02,
        offsetMs: clockRandom.int(10_000),
        client: createProposalClient<Command>(id, clientConfig),
      });
    }
    for (let index = 0; index < options.hostLearnerCount; index++) {
      const id = `h${index + 1}`;
      this.hosts.push({
        id,
        alive: true,
        incarnation: 0,
        learner: createLearner({ learnerId: id, config: this.config, machine: viewStateMachine, records: [], nowMs: 0 }),
        client: createProposalClient<Command>(id, clientConfig),
      });
    }
  }

  private fail(message: string): void {
    this.invariants.fail(message);
  }

  private nodeNow(node: ControllerSim): number {
    return node.offsetMs + this.clock.now() * node.rate;
  }

  run(): ClusterRunResult {
    for (const node of this.controllers) this.start(node, true);
    for (const host of this.hosts) this.scheduleHostTick(host);
    this.scheduleChaos();
    this.scheduleWorkload();
    this.clock.runUntil(this.options.chaosMs);
    const probeCommitMs = this.invariants.ok ? this.healAndProbe() : -1;
    return {
      seed: this.options.seed,
      failures: this.invariants.violations,
      slotsChosen: this.invariants.slotsChosen,
      commandsCommitted: this.outcomes.filter((outcome) => outcome.kind === "committed").length,
      crashes: this.crashes,
      wipes: this.wipes,
      messagesDelivered: this.messagesDelivered,
      probeCommitMs,
    };
  }

  // ---- controllers: start, crash, step, sync ----

  private start(node: ControllerSim, bootstrap: boolean): void {
    this.options.trace?.(`${this.clock.now()} start ${node.id}`);
    node.alive = true;
    node.incarnation++;
    node.queue = [];
    node.syncPending = false;
    const created = createControllerNode<Command, View>({
      nodeId: node.id,
      config: this.config,
      machine: viewStateMachine,
      records: node.disk,
      nowMs: this.nodeNow(node),
      randomSeed: this.faultRandom.int(0x1_0000_0000),
      bootstrap,
      leaderAnnouncement: (ballot) => leaderElectedCommand(ballot.controllerId, ballot.round),
    });
    node.state = created.state;
    this.invariants.learnerStarted(node.id, node.incarnation, created.state.learner.app.epoch);
    if (created.persist.length > 0) this.enqueueWrite(node, { records: created.persist, rewrite: null, messages: [] });
    const incarnation = node.incarnation;
    const phase = this.faultRandom.int(this.options.tickMs) + 1;
    const tick = (): void => {
      if (!node.alive || node.incarnation !== incarnation) return;
      this.stepController(node, { type: "tick", nowMs: this.nodeNow(node) });
      this.stepClient(node, { type: "tick", nowMs: this.nodeNow(node) });
      this.clock.schedule(this.options.tickMs, tick);
    };
    this.clock.schedule(phase, tick);
  }

  /** Only one controller may hold the leader lease at any instant of global time. */
  private checkLease(node: ControllerSim): void {
    const state = node.state;
    const holds = state !== null && holdsLease(state.proposer, this.nodeNow(node));
    this.invariants.lease(node.id, holds ? (state.proposer.leader!.leaseUntilMs - node.offsetMs) / node.rate : -1);
  }

  private crash(node: ControllerSim, wipeDisk: boolean): void {
    this.invariants.crashed(node.id);
    this.options.trace?.(`${this.clock.now()} crash ${node.id}${wipeDisk ? " wiping its disk" : ""}`);
    node.alive = false;
    node.incarnation++;
    node.state = null;
    // Unsynced records and the messages waiting for them die with the process.
    node.queue = [];
    node.syncPending = false;
    if (wipeDisk) {
      node.disk = [];
      node.diskWiped = true;
      this.wipes++;
      this.invariants.diskLost(node.id);
    }
    this.crashes++;
  }

  private stepController(node: ControllerSim, input: ControllerInput<Command>): void {
    const state = node.state!;
    const before = state.learner.nextSlot;
    const step = stepControllerNode(state, input);
    node.state = step.state;
    this.checkLease(node);
    this.invariants.learnerStepped(node.id, node.incarnation, before, step.state.learner, step.applied);
    if (step.rewrite || step.persist.length > 0 || step.sendAfterSync.length > 0) {
      this.enqueueWrite(node, { records: step.persist, rewrite: step.rewrite, messages: step.sendAfterSync });
    }
    if (step.applied.length > 0) this.stepClient(node, { type: "applied", applied: step.applied, nowMs: this.nodeNow(node) });
    if (step.leadership) this.options.trace?.(`${this.clock.now()} ${node.id} leadership ${step.leadership.role} ${step.leadership.leaderId} ${formatBallot(step.leadership.ballot)}`);
    if (step.leadership && step.leadership.leaderId !== "") this.stepClient(node, { type: "leader-hint", leaderId: step.leadership.leaderId });
  }

  private enqueueWrite(node: ControllerSim, write: QueuedWrite): void {
    if (write.records.length === 0 && write.rewrite === null && node.queue.length === 0) {
      for (const message of write.messages) this.send(message);
      return;
    }
    node.queue.push(write);
    if (node.syncPending) return;
    node.syncPending = true;
    const incarnation = node.incarnation;
    this.clock.schedule(this.netRandom.int(4), () => {
      if (!node.alive || node.incarnation !== incarnation) return;
      node.syncPending = false;
      const queue = node.queue;
      node.queue = [];
      for (const item of queue) {
        if (item.rewrite) node.disk = [...item.rewrite];
        else node.disk.push(...item.records);
        this.invariants.synced(node.id, item.rewrite ?? item.records);
      }
      for (const item of queue) for (const message of item.messages) this.send(message);
    });
  }

  // ---- hosts ----

  private scheduleHostTick(host: HostSim): void {
    const incarnation = host.incarnation;
    const tick = (): void => {
      if (!host.alive || host.incarnation !== incarnation) return;
      this.stepHost(host, { type: "tick", nowMs: this.clock.now() });
      this.stepClient(host, { type: "tick", nowMs: this.clock.now() });
      this.clock.schedule(this.options.tickMs, tick);
    };
    this.clock.schedule(this.faultRandom.int(this.options.tickMs) + 1, tick);
  }

  private stepHost(host: HostSim, input: LearnerInput<Command>): void {
    const before = host.learner.nextSlot;
    const step = stepLearner(host.learner, input);
    host.learner = step.state;
    this.invariants.learnerStepped(host.id, host.incarnation, before, step.state, step.applied);
    for (const message of step.sendAfterSync) this.send(message);
    if (step.applied.length > 0) this.stepClient(host, { type: "applied", applied: step.applied, nowMs: this.clock.now() });
  }

  private stepClient(node: ControllerSim | HostSim, input: ProposalClientInput<Command>): void {
    const step = stepProposalClient(node.client, input);
    node.client = step.state;
    for (const message of step.send) this.send(message);
    for (const outcome of step.outcomes) {
      this.outcomes.push({ ...outcome, atMs: this.clock.now() });
      this.invariants.clientOutcome(outcome);
    }
  }

  // ---- network ----

  private send(message: Message): void {
    if (message.to === learnerBroadcast) {
      for (const host of this.hosts) this.transmit({ ...message, to: host.id });
      return;
    }
    this.transmit(message);
  }

  private transmit(message: Message): void {
    if (this.cut.has(`${message.from}>${message.to}`)) return;
    if (this.netRandom.next() < this.lossRate) return;
    const copies = this.netRandom.next() < this.duplicateRate ? 2 : 1;
    for (let copy = 0; copy < copies; copy++) {
      // Independent latencies reorder messages; none lives longer than maxLatencyMs.
      this.clock.schedule(1 + this.netRandom.int(this.options.maxLatencyMs), () => this.deliver(message));
    }
  }

  private deliver(message: Message): void {
    if (this.cut.has(`${message.from}>${message.to}`)) return;
    this.options.trace?.(`${this.clock.now()} ${message.from}->${message.to} ${describeMessage(message)}`);
    const controller = this.controllers.find((node) => node.id === message.to);
    if (controller) {
      if (!controller.alive) return;
      this.messagesDelivered++;
      if (message.type === "paxos.propose-reply") this.stepClient(controller, { type: "message", message, nowMs: this.nodeNow(controller) });
      else this.stepController(controller, { type: "message", message, nowMs: this.nodeNow(controller) });
      return;
    }
    const host = this.hosts.find((node) => node.id === message.to);
    if (!host || !host.alive) return;
    this.messagesDelivered++;
    if (message.type === "paxos.propose-reply") this.stepClient(host, { type: "message", message, nowMs: this.clock.now() });
    else {
      if (message.type === "paxos.commit") this.stepClient(host, { type: "leader-hint", leaderId: message.from });
      this.stepHost(host, { type: "message", message, nowMs: this.clock.now() });
    }
  }

  // ---- faults and workload ----

  private scheduleChaos(): void {
    const random = this.faultRandom;
    this.lossRate = random.next() * 0.2;
    this.duplicateRate = random.next() * 0.1;
    const events = 2 + random.int(6);
    for (let index = 0; index < events; index++) {
      const atMs = 100 + random.int(Math.max(1, this.options.chaosMs - 150));
      const kind = random.int(100);
      this.clock.schedule(atMs, () => {
        if (this.healed) return;
        if (kind < 30) this.crashSomeController(random);
        else if (kind < 45) this.restartSomeController(random);
        else if (kind < 75) this.partition(random);
        else if (kind < 85) this.cut.clear();
        else if (kind < 92) this.crashHost(random);
        else this.lossRate = random.next() * 0.3;
      });
    }
  }

  private crashSomeController(random: Random): void {
    const alive = this.controllers.filter((node) => node.alive);
    if (alive.length === 0) return;
    const node = alive[random.int(alive.length)]!;
    // Losing a disk is survivable while every other acceptor still has its own (see docs/paxos.md).
    const othersIntact = this.controllers.every((other) => other === node || (!other.diskWiped && other.state?.acceptor.mode !== "rejoining"));
    const wipe = othersIntact && random.int(4) === 0;
    this.crash(node, wipe);
    this.clock.schedule(50 + random.int(400), () => {
      if (!node.alive && !this.healed) this.start(node, false);
    });
  }

  private restartSomeController(random: Random): void {
    const node = this.controllers[random.int(this.controllers.length)]!;
    if (node.alive) this.crash(node, false);
    this.start(node, false);
  }

  private crashHost(random: Random): void {
    if (this.hosts.length === 0) return;
    const host = this.hosts[random.int(this.hosts.length)]!;
    host.alive = false;
    host.incarnation++;
    const incarnation = host.incarnation;
    this.clock.schedule(50 + random.int(300), () => {
      // A host crashed again while down restarts once, at its last crash's time: restarting a running host
      // would reset its learner within one incarnation (seed 137 once did, after its timing moved).
      if (host.alive || host.incarnation !== incarnation) return;
      // A host learner keeps nothing on disk: it restarts empty and catches up.
      host.alive = true;
      host.learner = createLearner({ learnerId: host.id, config: this.config, machine: viewStateMachine, records: [], nowMs: this.clock.now() });
      this.scheduleHostTick(host);
    });
  }

  private partition(random: Random): void {
    this.cut.clear();
    this.options.trace?.(`${this.clock.now()} partition`);
    const names = [...this.controllers.map((node) => node.id), ...this.hosts.map((host) => host.id)];
    const side = new Map(names.map((name) => [name, random.int(2)]));
    const oneWay = random.int(3) === 0;
    for (const from of names) {
      for (const to of names) {
        if (side.get(from) === side.get(to)) continue;
        if (!oneWay || side.get(from) === 0) this.cut.add(`${from}>${to}`);
      }
    }
  }

  private scheduleWorkload(): void {
    const submit = (): void => {
      if (this.healed) return;
      this.submitRandomCommand();
      this.clock.schedule(5 + this.random.int(40), submit);
    };
    this.clock.schedule(this.random.int(50), submit);
  }

  private submitRandomCommand(): void {
    const clients: Array<ControllerSim | HostSim> = [...this.controllers.filter((node) => node.alive), ...this.hosts.filter((host) => host.alive)];
    if (clients.length === 0) return;
    const node = clients[this.random.int(clients.length)]!;
    const nowMs = "rate" in node ? this.nodeNow(node) : this.clock.now();
    this.stepClient(node, { type: "submit", command: this.randomCommand(), nowMs });
  }

  private randomCommand(): Command {
    return randomViewCommand(this.random, `cmd-${this.commandCounter++}`);
  }


  // ---- healing and liveness ----

  private healAndProbe(): number {
    this.healed = true;
    this.cut.clear();
    this.lossRate = 0;
    this.duplicateRate = 0;
    for (const node of this.controllers) if (!node.alive) this.start(node, false);
    const healedAtMs = this.clock.now();
    const probeId = `probe-${this.options.seed}`;
    const prober = this.controllers[this.random.int(this.controllers.length)]!;
    this.stepClient(prober, { type: "submit", command: { id: probeId, type: "controllers.set", controllerIds: this.controllers.map((node) => node.id) }, nowMs: this.nodeNow(prober) });
    const deadlineMs = healedAtMs + this.options.healBoundMs;
    let committedAtMs = -1;
    while (this.clock.now() < deadlineMs && this.invariants.ok) {
      this.clock.runFor(20);
      if (committedAtMs < 0) {
        const outcome = this.outcomes.find((item) => item.commandId === probeId);
        if (outcome && outcome.kind !== "no-outcome") committedAtMs = outcome.atMs;
        else if (outcome) {
          this.fail(`probe got no outcome: ${outcome.reason}`);
          break;
        }
      }
      if (committedAtMs >= 0 && this.converged()) return committedAtMs - healedAtMs;
    }
    if (!this.invariants.ok) return -1;
    const summary = [
      ...this.controllers.map((node) => `${node.id}:${node.state?.learner.nextSlot}/${node.state?.proposer.role}/${node.state?.acceptor.mode}/${formatBallot(node.state?.proposer.ballot ?? { round: 0, controllerId: "" })}`),
      ...this.hosts.map((host) => `${host.id}:${host.learner.nextSlot}/hint ${host.learner.commitHint}/buffered ${host.learner.buffered.size}/fetch ${host.learner.fetch?.target ?? "-"}@${host.learner.fetch?.sentAtMs ?? "-"}/${host.alive ? "up" : "down"}`),
    ].join(" ");
    this.fail(`liveness: ${committedAtMs < 0 ? "probe not committed" : "learners did not converge"} within ${this.options.healBoundMs}ms of healing (${summary})`);
    return -1;
  }

  private converged(): boolean {
    const learners = [...this.controllers.map((node) => node.state!.learner), ...this.hosts.map((host) => host.learner)];
    const target = Math.max(...learners.map((learner) => learner.nextSlot));
    if (learners.some((learner) => learner.nextSlot !== target)) return false;
    const views = new Set(learners.map((learner) => canonicalViewJson(learner.app)));
    if (views.size !== 1) {
      this.fail(`learners at slot ${target} hold ${views.size} different views`);
      return false;
    }
    return true;
  }
}

function describeMessage(message: Message): string {
  switch (message.type) {
    case "paxos.prepare":
      return `prepare ${formatBallot(message.ballot)} from ${message.fromSlot}`;
    case "paxos.promise":
      return `promise ${formatBallot(message.ballot)} floor ${message.floorSlot} votes ${message.votes.length}`;
    case "paxos.accept":
      return `accept ${formatBallot(message.ballot)} slot ${message.slot} ${describeSlotValue(message.value)} commit ${message.commitIndex}`;
    case "paxos.accepted":
      return `accepted ${formatBallot(message.ballot)} slot ${message.slot}`;
    case "paxos.heartbeat":
      return `heartbeat ${formatBallot(message.ballot)} commit ${message.commitIndex}`;
    case "paxos.heartbeat-ack":
      return `heartbeat-ack ${formatBallot(message.ballot)}`;
    case "paxos.reject":
      return `reject ${formatBallot(message.ballot)} ${message.reason} promised ${formatBallot(message.promised)} lease ${message.leaseHolderId}+${message.leaseRemainingMs}`;
    default:
      return message.type;
  }
}

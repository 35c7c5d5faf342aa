/**
 * A simulated cluster for manager tests: real Paxos controllers (each with a
 * monitor, the failure detector and the manager), hosts with the real host
 * agent (leases, isolation, watchdog), a learner, the command executor as a
 * command multicast member over the simulated JetStream, the VM supervisor,
 * and simulated hypervisors whose own record says which VM ran where.
 *
 * Setup goes through the view like an operator would: hosts registered, VMs
 * added unplaced; the manager places and starts them.
 */
import { createRejectionCounter } from "../../actors/codec/rejectionCounter.ts";
import { startGuestAgent } from "../../actors/guest/guestAgentActor.ts";
import { startDetectorOnController } from "../../actors/detection/detectorOnController.ts";
import { startHostCommandNode, type HostCommandNode } from "../../actors/hostCommands/hostCommandNode.ts";
import type { HostLeaseState } from "../../actors/hostCommands/hostCommandExecutor.ts";
import { startManagerOnController, type ManagerOnController } from "../../actors/manager/managerOnController.ts";
import { startControllerActor, type ControllerActor } from "../../actors/paxos/controllerActor.ts";
import { startLearnerActor, type LearnerActor } from "../../actors/paxos/learnerActor.ts";
import type { Clock } from "../../actors/ports/clock.ts";
import type { NodePorts } from "../../actors/ports/nodePorts.ts";
import type { HeartbeatSenderHost } from "../../actors/heartbeat/heartbeatSenderActor.ts";
import {
  defaultDetectorTickMs,
  defaultFailureDetectorConfig,
  defaultHostAgentConfig,
  defaultMonitorAgentConfig,
  type FailureDetectorConfig,
  type HostAgentConfig,
} from "../../machines/detection/detectionConfig.ts";
import type { ManagerConfig } from "../../machines/manager/managerConfig.ts";
import type { ManagerNoteParams } from "../../machines/manager/managerMachine.ts";
import { createPaxosConfig, type PaxosConfig } from "../../machines/paxos/config.ts";
import type { ViewCommand } from "../../machines/view/viewCommands.ts";
import type { View, VmPriority } from "../../machines/view/viewTypes.ts";
import { DetectionGroundTruth } from "../../sim/detection/detectionGroundTruth.ts";
import { startDetectionHostAgent, startReportingMonitor } from "../../sim/detection/detectionNodes.ts";
import { SimWatchdogs } from "../../sim/detection/simWatchdog.ts";
import { SimHypervisors } from "../../sim/simHypervisor.ts";
import type { SimStreamClient} from "../../sim/simStream.ts";
import { SimStreamServer } from "../../sim/simStream.ts";
import { SimWorld } from "../../sim/world.ts";

export interface HostSpec {
  readonly id: string;
  readonly cpu?: number;
  readonly memoryMiB?: number;
  /** Its simulated hypervisor migrates live. */
  readonly liveMigration?: boolean;
}

export interface VmSpec {
  readonly id: string;
  readonly cpu?: number;
  readonly memoryMiB?: number;
  readonly priority?: VmPriority;
  readonly antiAffinity?: readonly string[];
  readonly virt?: "full" | "para";
}

export interface ManagerClusterOptions {
  readonly seed: number;
  readonly controllers?: number;
  readonly hosts: readonly HostSpec[];
  readonly vms: readonly VmSpec[];
  readonly manager?: Partial<ManagerConfig>;
  readonly detector?: Partial<FailureDetectorConfig>;
  readonly hostAgent?: Partial<HostAgentConfig>;
  /** A host reset by its watchdog boots again after this long; null: it stays down. */
  readonly rebootAfterWatchdogMs?: number | null;
  /** Run guest agents in the VMs and watch them (guest hang tests). */
  readonly guests?: boolean;
  readonly transcriptLevel?: "debug" | "info" | "warn";
}

export interface RecordedNote extends ManagerNoteParams {
  readonly atMs: number;
  readonly controllerId: string;
}

export class ManagerCluster {
  readonly world: SimWorld;
  readonly hypervisors = new SimHypervisors();
  readonly server: SimStreamServer;
  readonly truth: DetectionGroundTruth;
  readonly watchdogs: SimWatchdogs;
  readonly paxosConfig: PaxosConfig;
  readonly detectorConfig: FailureDetectorConfig;
  readonly hostConfig: HostAgentConfig;
  readonly controllerIds: readonly string[];
  readonly hostIds: readonly string[];
  readonly controllers = new Map<string, ControllerActor>();
  readonly managers = new Map<string, ManagerOnController>();
  readonly learners = new Map<string, LearnerActor>();
  readonly hostNodes = new Map<string, HostCommandNode>();
  readonly senders = new Map<string, HeartbeatSenderHost>();
  readonly notes: RecordedNote[] = [];
  /** hostId → the latest global time any of its incarnations held a lease until. */
  readonly leaseUntilGlobalMs = new Map<string, number>();
  private readonly streamClients = new Map<string, SimStreamClient>();
  private readonly vmSpecs = new Map<string, VmSpec>();

  constructor(readonly options: ManagerClusterOptions) {
    this.detectorConfig = { ...defaultFailureDetectorConfig, ...options.detector };
    this.hostConfig = { ...defaultHostAgentConfig, ...options.hostAgent };
    this.controllerIds = Array.from({ length: options.controllers ?? 3 }, (_, index) => `c${index + 1}`);
    this.hostIds = options.hosts.map((host) => host.id);
    for (const host of options.hosts) if (host.liveMigration === true) this.hypervisors.setLiveMigration(host.id, true);
    for (const vm of options.vms) this.vmSpecs.set(vm.id, vm);
    this.paxosConfig = createPaxosConfig(this.controllerIds);
    const hostIds = new Set(this.hostIds);
    this.world = new SimWorld({
      seed: options.seed,
      clusterId: "sim",
      transcriptLevel: options.transcriptLevel ?? "warn",
      extraPorts: (context) => {
        const stream = this.server.client(context.nodeId, { clock: context.clock });
        this.streamClients.set(context.nodeId, stream);
        return { stream, ...(hostIds.has(context.nodeId) ? { hypervisor: this.hypervisors.hypervisorFor(context) } : {}) };
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
    this.truth = new DetectionGroundTruth(world, { trackLeases: false, hypervisors: () => this.hypervisors });
    this.watchdogs = new SimWatchdogs(world, this.hostConfig.watchdogTimeoutMs, options.rebootAfterWatchdogMs ?? null);
    if (options.guests) this.hypervisors.runGuests((vmId) => (ports) => this.bootGuest(vmId, ports));
    for (const id of this.controllerIds) world.addNode(id, (ports) => this.bootController(id, ports));
    for (const id of this.hostIds) world.addNode(id, (ports) => this.bootHost(id, ports));
  }

  private bootController(controllerId: string, ports: NodePorts) {
    const rejections = createRejectionCounter(ports);
    const controller = startControllerActor(ports, { config: this.paxosConfig, bootstrap: this.world.incarnation(controllerId) === 1, rejections, kvMirror: false });
    this.controllers.set(controllerId, controller);
    const monitor = startReportingMonitor(ports, defaultMonitorAgentConfig);
    const onController = startManagerOnController(ports, {
      controller,
      rejections,
      ...(this.options.manager ? { config: this.options.manager } : {}),
      vmDefinition: (vmId) => ({ virtualization: this.vmSpecs.get(vmId)?.virt ?? "full" }),
      onNote: (note) => this.notes.push({ ...note, atMs: this.world.now(), controllerId }),
    });
    this.managers.set(controllerId, onController);
    const detector = startDetectorOnController(ports, {
      controller,
      config: this.detectorConfig,
      tickIntervalMs: defaultDetectorTickMs,
      rejections,
      onProposal: (proposal) => {
        this.truth.recordProposal(proposal);
        onController.detectorProposal(proposal);
      },
    });
    const applied = controller.onApplied((_applied, view) => this.truth.noteView(view));
    if (this.world.incarnation(controllerId) === 1 && controllerId === this.controllerIds[0]) {
      for (const host of this.options.hosts) controller.propose({ id: `register-${host.id}`, type: "host.register", hostId: host.id, capacity: { cpu: host.cpu ?? 16, memoryMiB: host.memoryMiB ?? 65_536 } });
      for (const vm of this.options.vms) controller.propose(this.vmAddCommand(vm));
    }
    return {
      stop: () => {
        applied.unsubscribe();
        detector.stop();
        onController.stop();
        monitor.dispose();
        controller.stop();
      },
    };
  }

  vmAddCommand(vm: VmSpec): ViewCommand {
    return {
      id: `add-${vm.id}`,
      type: "vm.add",
      vmId: vm.id,
      resources: { cpu: vm.cpu ?? 2, memoryMiB: vm.memoryMiB ?? 4_096 },
      priority: vm.priority ?? "medium",
      rules: { affinity: [], antiAffinity: [...(vm.antiAffinity ?? [])] },
      desiredState: "running",
    };
  }

  private bootHost(hostId: string, ports: NodePorts) {
    const rejections = createRejectionCounter(ports);
    const sender = startDetectionHostAgent(ports, { monitorIds: this.controllerIds, hostConfig: this.hostConfig, truth: this.truth, watchdogs: this.watchdogs });
    this.senders.set(hostId, sender);
    sender.onSnapshot((snapshot) => {
      const context = snapshot.context;
      if (context.phase !== "leased") return;
      const globalUntil = context.leaseUntilMs + (this.world.now() - ports.clock.now());
      if (globalUntil > (this.leaseUntilGlobalMs.get(hostId) ?? 0)) this.leaseUntilGlobalMs.set(hostId, globalUntil);
    });
    const learner = startLearnerActor(ports, { config: this.paxosConfig, rejections });
    this.learners.set(hostId, learner);
    const lease = (): HostLeaseState | undefined => {
      const context = sender.getSnapshot()?.context;
      return context === undefined ? undefined : { phase: context.phase, incarnation: context.incarnation, leaseUntilMs: context.leaseUntilMs };
    };
    const node = startHostCommandNode(ports, {
      views: learner,
      lease,
      rejections,
      ...(this.options.guests ? { watchGuest: () => true, guestConfig: { guestBootGraceMs: 5_000 } } : {}),
    });
    this.hostNodes.set(hostId, node);
    return {
      stop: () => {
        node.stop();
        learner.stop();
        sender.dispose();
      },
    };
  }

  private bootGuest(vmId: string, ports: NodePorts) {
    const agent = startGuestAgent(ports, { vmId });
    return { stop: () => agent.dispose() };
  }

  /** The controller leading with a lease now, if any. */
  leaderId(): string | undefined {
    for (const [id, controller] of this.controllers) if (this.world.nodeState(id) === "up" && controller.holdsLease()) return id;
    return undefined;
  }

  /** The view of the first controller that is up. */
  view(): View {
    for (const [id, controller] of this.controllers) if (this.world.nodeState(id) === "up") return controller.view();
    throw new Error("no controller is up");
  }

  /** Hosts a VM is active on now, by the hypervisors' own record. */
  activeHosts(vmId: string): readonly string[] {
    return this.hypervisors.registry.activeHosts(vmId);
  }

  /** Every VM active on exactly one host, and that host up in the view. */
  allRunning(vmIds: readonly string[] = this.options.vms.map((vm) => vm.id)): boolean {
    return vmIds.every((vmId) => this.activeHosts(vmId).length === 1);
  }

  runUntil(condition: () => boolean, limitMs: number, stepMs = 50): number | undefined {
    const deadline = this.world.now() + limitMs;
    while (this.world.now() < deadline) {
      this.world.runFor(Math.min(stepMs, deadline - this.world.now()));
      if (condition()) return this.world.now();
    }
    return undefined;
  }

  /** Times the VM became active on a host other than `hostId` after `sinceMs`, by the hypervisors' record. */
  activationsElsewhere(vmId: string, hostId: string, sinceMs: number): { atMs: number; hostId: string }[] {
    return this.hypervisors.registry
      .history()
      .filter((record) => record.vmId === vmId && record.active && record.hostId !== hostId && record.atMs >= sinceMs)
      .map((record) => ({ atMs: record.atMs, hostId: record.hostId }));
  }

  notesOf(note: string): RecordedNote[] {
    return this.notes.filter((recorded) => recorded.note === note);
  }
}

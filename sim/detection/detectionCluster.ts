/**
 * A simulated cluster for host-level failure detection: hosts running the real
 * host agent (heartbeats, leases, fencing, probes), monitors as their own
 * nodes, and one controller node `c1` running the real failure detector.
 *
 * Until the Paxos wiring (actors/paxos) runs here, `c1` is a deterministic
 * leader stand-in: it holds leadership with a lease from the start (or when
 * told) and records every proposal instead of committing it. Ground truth is
 * recorded next to it — which host incarnations ended (crash, watchdog reset,
 * self-isolation) and when — so a proposal can be checked against what really
 * happened, and with `vmsPerHost` the simulated hypervisors' own record of
 * which VM ran where. With `vmMonitoring` the hosts also watch their VMs (and
 * guest agents run in them) as a host process does, and every VM and guest
 * report that reaches a controller is recorded (vmDetection.ts).
 */
import { createRejectionCounter } from "../../actors/codec/rejectionCounter.ts";
import { startFailureDetector, type FailureDetectorHandle } from "../../actors/detection/failureDetectorActor.ts";
import { startControllerActor, type ControllerActor } from "../../actors/paxos/controllerActor.ts";
import type { HeartbeatMonitorHost } from "../../actors/heartbeat/heartbeatMonitorActor.ts";
import type { HeartbeatSenderHost } from "../../actors/heartbeat/heartbeatSenderActor.ts";
import type { NodePorts } from "../../actors/ports/nodePorts.ts";
import type { LogLevel } from "../../actors/ports/telemetry.ts";
import {
  defaultDetectorTickMs,
  defaultFailureDetectorConfig,
  defaultHostAgentConfig,
  defaultMonitorAgentConfig,
  detectionConfigProblems,
  type FailureDetectorConfig,
  type HostAgentConfig,
  type MonitorAgentConfig,
} from "../../machines/detection/detectionConfig.ts";
import { createPaxosConfig } from "../../machines/paxos/config.ts";
import type { HostState } from "../../machines/view/viewTypes.ts";
import { leaderMsCovering } from "../../machines/detection/leaseArithmetic.ts";
import { SimHypervisors } from "../simHypervisor.ts";
import type { NetworkFaultSettings } from "../simNetwork.ts";
import { SimWorld } from "../world.ts";
import {
  DetectionGroundTruth,
  type CommittedHostState,
  type EndedIncarnation,
  type IsolationRecord,
  type ProposalCheck,
  type RecordedProposal,
} from "./detectionGroundTruth.ts";
import { startControllerDetector, startDetectionHostAgent, startReportingMonitor } from "./detectionNodes.ts";
import { SimWatchdogs } from "./simWatchdog.ts";
import {
  guestAgentBoot,
  listenForVmReports,
  startHostVmMonitoring,
  vmMonitorConfigOf,
  VmReportLog,
  withoutEvents,
  type HostVmMonitoring,
  type VmMonitoringOptions,
} from "./vmDetection.ts";
import type { VirtualizationType } from "../../actors/ports/hypervisor.ts";
import type { VmMonitorConfig } from "../../machines/vm/vmHealth.ts";

export { maxRecordedEvents } from "./detectionGroundTruth.ts";
export type { CommittedHostState, EndedIncarnation, IsolationRecord, ProposalCheck, RecordedProposal } from "./detectionGroundTruth.ts";

export const detectionClusterLimits = { maxHosts: 20_000, maxMonitors: 64, maxVmsPerHost: 100 } as const;
export const leaderNodeId = "c1";
/** Hosts are added at random times within this window from the start. */
export const hostBootSpreadMs = 1_000;
/** With `vmsPerHost`, each host's VMs are started at this time. */
export const vmPlacementAtMs = 2_500;

export interface DetectionClusterOptions {
  readonly seed: number;
  readonly hosts: number;
  readonly monitors: number;
  readonly detector?: Partial<FailureDetectorConfig>;
  readonly hostAgent?: Partial<HostAgentConfig>;
  readonly monitorAgent?: Partial<MonitorAgentConfig>;
  readonly network?: Partial<NetworkFaultSettings>;
  /**
   * Simulated hypervisors with this many running VMs per host; isolation powers them off through the port.
   * A list is cycled over the hosts (`[1, 2]`: h1 one VM, h2 two, ...), and then VMs alternate full and
   * para virtualization across the whole cluster.
   */
  readonly vmsPerHost?: number | readonly number[];
  /** When each live host's VMs are placed and started (default `vmPlacementAtMs`): after the hosts hold leases. */
  readonly vmPlacementAtMs?: number;
  /** Hosts watch their VMs (batched poller, VM actors, guest watchdogs) and report to the controllers; needs `vmsPerHost`. */
  readonly vmMonitoring?: VmMonitoringOptions;
  /** Hosts have hardware watchdogs (default true). */
  readonly watchdogs?: boolean;
  /** A host reset by its watchdog boots again after this long; null (default): it stays down. */
  readonly rebootAfterWatchdogMs?: number | null;
  /** The stand-in leader takes leadership at boot (default true). Ignored with `paxosControllers`. */
  readonly leaderAtStart?: boolean;
  /**
   * Instead of separate monitors and the leader stand-in: this many real Paxos
   * controllers (`c1`…), each running a monitor and the failure detector on its
   * controller; hosts are registered in the view at start and proposals are
   * committed. `monitors` is then ignored.
   */
  readonly paxosControllers?: number;
  /** Record when each host incarnation held a lease (costs a snapshot listener per host): `checkProposals` then judges by it. */
  readonly trackLeases?: boolean;
  readonly tickIntervalMs?: number;
  readonly transcriptLevel?: LogLevel;
}

/** The capacity hosts are registered with in `paxosControllers` mode. */
export const simHostCapacity = { cpu: 64, memoryMiB: 262_144 } as const;

export interface PlacedVm {
  readonly hostId: string;
  readonly vmId: string;
  readonly virtualization: VirtualizationType;
}

export class DetectionCluster {
  readonly world: SimWorld;
  /** VM and guest reports as they reached the controllers (with `vmMonitoring`). */
  readonly vmReports = new VmReportLog();
  /** Every VM placed, in placement order. */
  readonly placedVms: PlacedVm[] = [];
  private readonly vmMonitoring: VmMonitoringOptions | undefined;
  private readonly vmConfig: VmMonitorConfig;
  private readonly hostVmMonitoring = new Map<string, HostVmMonitoring>();
  readonly detectorConfig: FailureDetectorConfig;
  readonly hostConfig: HostAgentConfig;
  readonly monitorConfig: MonitorAgentConfig;
  readonly tickIntervalMs: number;
  readonly hostIds: readonly string[];
  readonly monitorIds: readonly string[];
  readonly hypervisors: SimHypervisors | undefined;
  readonly watchdogs: SimWatchdogs;
  /** What really happened, next to what was proposed and committed. */
  readonly truth: DetectionGroundTruth;
  private readonly monitorHosts = new Map<string, HeartbeatMonitorHost>();
  private readonly detectors = new Map<string, FailureDetectorHandle>();
  readonly controllers = new Map<string, ControllerActor>();
  readonly controllerIds: readonly string[];
  private readonly withWatchdogs: boolean;

  constructor(options: DetectionClusterOptions) {
    const check = (name: string, value: number, min: number, max: number) => {
      if (!Number.isSafeInteger(value) || value < min || value > max) throw new RangeError(`${name} must be a whole number in [${min}, ${max}], got ${value}`);
    };
    check("hosts", options.hosts, 1, detectionClusterLimits.maxHosts);
    check("monitors", options.monitors, 1, detectionClusterLimits.maxMonitors);
    const vmCounts = typeof options.vmsPerHost === "number" || options.vmsPerHost === undefined ? [options.vmsPerHost ?? 0] : options.vmsPerHost;
    if (vmCounts.length < 1 || vmCounts.length > options.hosts) throw new RangeError(`vmsPerHost as a list needs 1 to ${options.hosts} entries, got ${vmCounts.length}`);
    for (const count of vmCounts) check("vmsPerHost", count, 0, detectionClusterLimits.maxVmsPerHost);
    const alternateAcrossCluster = typeof options.vmsPerHost !== "number";
    const vmPlacementAt = options.vmPlacementAtMs ?? vmPlacementAtMs;
    if (!Number.isFinite(vmPlacementAt) || vmPlacementAt < 0) throw new RangeError(`vmPlacementAtMs must be a time from the start, got ${vmPlacementAt}`);
    this.vmMonitoring = options.vmMonitoring;
    this.vmConfig = vmMonitorConfigOf(options.vmMonitoring ?? {});
    this.detectorConfig = { ...defaultFailureDetectorConfig, ...options.detector };
    this.hostConfig = { ...defaultHostAgentConfig, ...options.hostAgent };
    this.monitorConfig = { ...defaultMonitorAgentConfig, ...options.monitorAgent };
    const problems = detectionConfigProblems(this.detectorConfig, this.hostConfig, this.monitorConfig);
    if (problems.length > 0) throw new RangeError(`detection config: ${problems.join("; ")}`);
    this.tickIntervalMs = options.tickIntervalMs ?? defaultDetectorTickMs;
    this.withWatchdogs = options.watchdogs ?? true;
    const hasVms = vmCounts.some((count) => count > 0);
    if (options.vmMonitoring !== undefined && !hasVms) throw new RangeError("vmMonitoring needs vmsPerHost");
    const hypervisors = hasVms ? new SimHypervisors() : undefined;
    this.hypervisors = hypervisors;
    this.world = new SimWorld({
      seed: options.seed,
      clusterId: "sim",
      ...(options.network === undefined ? {} : { network: options.network }),
      transcriptLevel: options.transcriptLevel ?? "warn",
      ...(hypervisors === undefined
        ? {}
        : {
            extraPorts: (context) => {
              if (!context.nodeId.startsWith("h")) return {};
              const hypervisor = hypervisors.hypervisorFor(context);
              return { hypervisor: hypervisor === undefined || options.vmMonitoring?.hypervisorEvents !== false ? hypervisor : withoutEvents(hypervisor) };
            },
          }),
    });
    this.watchdogs = new SimWatchdogs(this.world, this.hostConfig.watchdogTimeoutMs, options.rebootAfterWatchdogMs ?? null);
    const paxosControllers = options.paxosControllers ?? 0;
    check("paxosControllers", paxosControllers, 0, 9);
    this.controllerIds = Array.from({ length: paxosControllers }, (_, index) => `c${index + 1}`);
    this.monitorIds = paxosControllers > 0 ? this.controllerIds : Array.from({ length: options.monitors }, (_, index) => `m${index + 1}`);
    this.hostIds = Array.from({ length: options.hosts }, (_, index) => `h${index + 1}`);
    this.truth = new DetectionGroundTruth(this.world, { trackLeases: options.trackLeases ?? false, hypervisors: () => this.hypervisors });
    const guestAgents = options.vmMonitoring !== undefined && (options.vmMonitoring.guestAgents ?? true);
    if (hypervisors !== undefined && guestAgents) hypervisors.runGuests((vmId) => guestAgentBoot(vmId, options.vmMonitoring?.guestAgent));

    if (paxosControllers > 0) {
      for (const controllerId of this.controllerIds) this.world.addNode(controllerId, (ports) => this.bootController(controllerId, ports));
    } else {
      this.world.addNode(leaderNodeId, (ports) => {
        const detector = startFailureDetector(ports, {
          config: this.detectorConfig,
          tickIntervalMs: this.tickIntervalMs,
          rejections: createRejectionCounter(ports),
          onProposal: (proposal) => this.truth.recordProposal(proposal),
        });
        this.detectors.set(leaderNodeId, detector);
        if (options.leaderAtStart ?? true) detector.setLeadership(true, Number.MAX_SAFE_INTEGER);
        // the stand-in leads from the start, so whatever reaches it reaches the leader
        const reports = this.vmMonitoring === undefined ? undefined : listenForVmReports(ports, this.vmReports, () => true);
        return {
          stop: () => {
            reports?.unsubscribe();
            detector.stop();
          },
        };
      });
      for (const monitorId of this.monitorIds) {
        this.world.addNode(monitorId, (ports) => {
          const monitor = startReportingMonitor(ports, this.monitorConfig);
          this.monitorHosts.set(monitorId, monitor);
          return { stop: () => monitor.dispose() };
        });
      }
    }
    // Hosts boot over one second, as a real cluster would, so their heartbeats are not in lockstep.
    const bootOffsets = this.world.forkRandom("host-boot");
    for (const hostId of this.hostIds) {
      const offsetMs = bootOffsets.int(hostBootSpreadMs);
      if (offsetMs === 0) this.world.addNode(hostId, (ports) => this.bootHost(ports));
      else this.world.schedule(offsetMs, () => this.world.addNode(hostId, (ports) => this.bootHost(ports)));
    }
    if (hypervisors !== undefined) {
      // VMs start once every host holds a lease (a host isolates at boot, which would stop them).
      this.world.schedule(vmPlacementAt, () => {
        let ordinal = 0;
        this.hostIds.forEach((hostId, hostIndex) => {
          const count = vmCounts[hostIndex % vmCounts.length]!;
          for (let index = 1; index <= count; index++, ordinal++) {
            if (this.world.nodeState(hostId) === "crashed") continue;
            const virtualization: VirtualizationType = (alternateAcrossCluster ? ordinal % 2 === 1 : index % 2 === 0) ? "para" : "full";
            const vmId = `${hostId}-vm${index}`;
            hypervisors.placeVm(hostId, { vmId, virtualization, vcpus: 1, memoryMiB: 512 });
            this.placedVms.push({ hostId, vmId, virtualization });
            this.hostVmMonitoring.get(hostId)?.watch(vmId);
          }
        });
      });
    }
  }

  get proposals(): RecordedProposal[] {
    return this.truth.proposals;
  }

  get isolations(): IsolationRecord[] {
    return this.truth.isolations;
  }

  get ended(): EndedIncarnation[] {
    return this.truth.ended;
  }

  get committed(): CommittedHostState[] {
    return this.truth.committed;
  }

  /** A controller node: Paxos, a monitor, and the failure detector following the controller's lease. */
  private bootController(controllerId: string, ports: NodePorts) {
    const controller = startControllerActor(ports, {
      config: createPaxosConfig(this.controllerIds),
      // The first boot creates the cluster; a restarted node recovers from its disk.
      bootstrap: this.world.incarnation(controllerId) === 1,
      rejections: createRejectionCounter(ports),
      kvMirror: false,
    });
    this.controllers.set(controllerId, controller);
    const monitor = startReportingMonitor(ports, this.monitorConfig);
    this.monitorHosts.set(controllerId, monitor);
    const onController = startControllerDetector(ports, { controller, detectorConfig: this.detectorConfig, tickIntervalMs: this.tickIntervalMs, truth: this.truth });
    this.detectors.set(controllerId, onController.detector);
    const reports = this.vmMonitoring === undefined ? undefined : listenForVmReports(ports, this.vmReports, () => controller.holdsLease());
    if (this.world.incarnation(controllerId) === 1 && controllerId === this.controllerIds[0]) {
      // Every host is known to the view from the start (the proposal client retries until a leader is elected).
      for (const hostId of this.hostIds) controller.propose({ id: `register-${hostId}`, type: "host.register", hostId, capacity: { ...simHostCapacity } });
    }
    return {
      stop: () => {
        reports?.unsubscribe();
        onController.stop();
        monitor.dispose();
        controller.stop();
      },
    };
  }

  private bootHost(ports: NodePorts) {
    const sender = startDetectionHostAgent(ports, {
      monitorIds: this.monitorIds,
      hostConfig: this.hostConfig,
      truth: this.truth,
      ...(this.withWatchdogs ? { watchdogs: this.watchdogs } : {}),
    });
    const hostId = ports.nodeId;
    const monitoring =
      this.vmMonitoring === undefined
        ? undefined
        : startHostVmMonitoring(ports, {
            vmConfig: this.vmConfig,
            guestWatchdog: (this.vmMonitoring.guestAgents ?? true) ? { ...this.vmMonitoring.guestWatchdog } : undefined,
            incarnation: () => sender.getSnapshot()?.context.incarnation ?? 0,
          });
    if (monitoring !== undefined) this.hostVmMonitoring.set(hostId, monitoring);
    return {
      stop: () => {
        if (monitoring !== undefined && this.hostVmMonitoring.get(hostId) === monitoring) this.hostVmMonitoring.delete(hostId);
        monitoring?.stop();
        sender.dispose();
      },
    };
  }

  /** The stand-in's detector; with `paxosControllers`, the detector of the controller holding the lease (else the first). */
  get leader(): FailureDetectorHandle {
    for (const [controllerId, controller] of this.controllers) {
      if (this.world.nodeState(controllerId) === "up" && controller.holdsLease()) return this.detectors.get(controllerId)!;
    }
    const first = this.detectors.get(this.controllerIds[0] ?? leaderNodeId);
    if (first === undefined) throw new RangeError("no detector is running");
    return first;
  }

  /** With `paxosControllers`: the controller holding the lease now, if any. */
  leaderControllerId(): string | undefined {
    for (const [controllerId, controller] of this.controllers) if (this.world.nodeState(controllerId) === "up" && controller.holdsLease()) return controllerId;
    return undefined;
  }

  /** With `paxosControllers`: when the view first committed this host in this state, if it did after `sinceMs`. */
  committedAtMs(hostId: string, state: HostState, sinceMs = 0): number | undefined {
    return this.truth.committedAtMs(hostId, state, sinceMs);
  }

  sender(hostId: string): HeartbeatSenderHost {
    const sender = this.truth.sender(hostId);
    if (sender === undefined) throw new RangeError(`unknown host ${hostId}`);
    return sender;
  }

  monitor(monitorId: string): HeartbeatMonitorHost {
    const monitor = this.monitorHosts.get(monitorId);
    if (monitor === undefined) throw new RangeError(`unknown monitor ${monitorId}`);
    return monitor;
  }

  /** The host agent's current incarnation and lease phase, or undefined while the node is down. */
  hostAgent(hostId: string): { incarnation: number; phase: string; leaseUntilMs: number } | undefined {
    if (this.world.nodeState(hostId) === "crashed") return undefined;
    const context = this.sender(hostId).getSnapshot()?.context;
    return context === undefined ? undefined : { incarnation: context.incarnation, phase: context.phase, leaseUntilMs: context.leaseUntilMs };
  }

  hostFailedProposals(): RecordedProposal[] {
    return this.truth.hostFailedProposals();
  }

  /** Proposals that claim an incarnation failed before it had ended, or while its VMs still ran. */
  checkProposals(): ProposalCheck {
    return this.truth.checkProposals();
  }

  /** Whether any VM of this host was active on it at `atMs`, by the hypervisors' own history. */
  vmsActiveAt(hostId: string, atMs: number): boolean {
    return this.truth.vmsActiveAt(hostId, atMs);
  }

  /** Self-isolations after the first lease (boot isolations are not counted): each means a host lost its lease. */
  leaseLosses(): IsolationRecord[] {
    return this.truth.leaseLosses();
  }

  /** Upper bound on crash → proposal with every monitor reporting: the lease and isolation wait, a tick, and slack for latency. */
  crashDetectionBoundMs(): number {
    const config = this.detectorConfig;
    return leaderMsCovering(config.hostLeaseMs + config.maxIsolationDelayMs, config.maxClockRateErrorPpm) + this.tickIntervalMs + 50;
  }

  /** From a term start, no declaration comes before this (grants of a previous leader must run out). */
  termStartWaitMs(): number {
    const config = this.detectorConfig;
    return leaderMsCovering(config.authorityValidForMs + config.hostLeaseMs + config.maxIsolationDelayMs, config.maxClockRateErrorPpm);
  }

  /** Runs until a host-failed proposal for `hostId` is recorded after `sinceMs`, or `limitMs` passes; its time or undefined. */
  runUntilProposed(hostId: string, sinceMs: number, limitMs: number): number | undefined {
    const deadline = this.world.now() + limitMs;
    const stepMs = this.tickIntervalMs;
    while (this.world.now() < deadline) {
      this.world.runFor(Math.min(stepMs, deadline - this.world.now()));
      const found = this.proposals.find((recorded) => recorded.atMs >= sinceMs && recorded.proposal.type === "host-failed" && recorded.proposal.hostId === hostId);
      if (found !== undefined) return found.atMs;
    }
    return undefined;
  }
}

/**
 * The detection pieces of a simulated node, booted the same way wherever a
 * simulation needs them (DetectionCluster, the scenario detection component):
 *
 * - a monitor that reports digests to the leader and grants leases while it
 *   holds authority;
 * - the failure detector on a Paxos controller, following its lease and
 *   committing through it;
 * - a host agent: heartbeats with leases, isolation through the host's
 *   Hypervisor port (or a recorder without one), and a simulated watchdog.
 *
 * Each records into a DetectionGroundTruth, so what the detector proposed can
 * be judged against what happened.
 */
import { createRejectionCounter } from "../../actors/codec/rejectionCounter.ts";
import { startDetectorOnController } from "../../actors/detection/detectorOnController.ts";
import type { FailureDetectorHandle } from "../../actors/detection/failureDetectorActor.ts";
import { hypervisorIsolation } from "../../actors/detection/hostIsolation.ts";
import { startHeartbeatMonitor, type HeartbeatMonitorHost } from "../../actors/heartbeat/heartbeatMonitorActor.ts";
import { startHeartbeatSender, type HeartbeatSenderHost } from "../../actors/heartbeat/heartbeatSenderActor.ts";
import type { ControllerActor } from "../../actors/paxos/controllerActor.ts";
import type { NodePorts } from "../../actors/ports/nodePorts.ts";
import type { FailureDetectorConfig, HostAgentConfig, MonitorAgentConfig } from "../../machines/detection/detectionConfig.ts";
import type { DetectionGroundTruth } from "./detectionGroundTruth.ts";
import type { SimWatchdogs } from "./simWatchdog.ts";

/** A monitor that answers heartbeats and reports digests to the leader (leases granted while it holds authority). */
export function startReportingMonitor(ports: NodePorts, monitorConfig: MonitorAgentConfig): HeartbeatMonitorHost {
  return startHeartbeatMonitor(ports, { rejections: createRejectionCounter(ports), reporting: monitorConfig });
}

export interface ControllerDetectorOptions {
  readonly controller: ControllerActor;
  readonly detectorConfig: FailureDetectorConfig;
  readonly tickIntervalMs: number;
  readonly truth: DetectionGroundTruth;
}

export interface ControllerDetector {
  readonly detector: FailureDetectorHandle;
  stop(): void;
}

/** The failure detector on a controller: active while it holds the lease; proposals and committed host states go to the ground truth. */
export function startControllerDetector(ports: NodePorts, options: ControllerDetectorOptions): ControllerDetector {
  const { controller, truth } = options;
  const onController = startDetectorOnController(ports, {
    controller,
    config: options.detectorConfig,
    tickIntervalMs: options.tickIntervalMs,
    rejections: createRejectionCounter(ports),
    onProposal: (proposal) => truth.recordProposal(proposal),
  });
  const applied = controller.onApplied((_applied, view) => truth.noteView(view));
  return {
    detector: onController.detector,
    stop: () => {
      applied.unsubscribe();
      onController.stop();
    },
  };
}

export interface DetectionHostAgentOptions {
  readonly monitorIds: readonly string[];
  readonly hostConfig: HostAgentConfig;
  readonly truth: DetectionGroundTruth;
  /** Absent: the host has no hardware watchdog. */
  readonly watchdogs?: SimWatchdogs;
}

/** A host agent with leases: isolates itself (through the Hypervisor port when the node has one) when its lease runs out. */
export function startDetectionHostAgent(ports: NodePorts, options: DetectionHostAgentOptions): HeartbeatSenderHost {
  const { hostConfig, truth } = options;
  const hostId = ports.nodeId;
  const responder = ports.hypervisor === undefined ? undefined : hypervisorIsolation(ports.hypervisor, ports.log);
  const sender = startHeartbeatSender(ports, {
    monitorIds: options.monitorIds,
    config: hostConfig,
    ackTimeoutMs: hostConfig.ackTimeoutMs,
    rejections: createRejectionCounter(ports),
    lease: {
      maxAcceptedLeaseMs: hostConfig.maxAcceptedLeaseMs,
      isolationResponse: hostConfig.isolationResponse,
      isolation: truth.isolationRecorder(hostId, responder, ports.clock),
      ...(options.watchdogs === undefined ? {} : { watchdog: options.watchdogs.watchdogFor(hostId) }),
    },
  });
  truth.watchSender(hostId, sender);
  return sender;
}

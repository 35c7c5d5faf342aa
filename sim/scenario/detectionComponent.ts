/**
 * Host-level failure detection as a scenario component, wired as
 * DetectionCluster's `paxosControllers` mode (sim/detection/detectionNodes.ts):
 * host agents with leases, isolation through the host's Hypervisor port and a
 * simulated watchdog; monitors that report digests to the leader and grant
 * leases while they hold its authority; the failure detector on every
 * controller, active while it holds the Paxos lease and committing through it.
 * The heartbeat component runs these actors in place of its plain ones;
 * hosts are brought up in the view by the detector when first heard.
 *
 * With the hypervisor component, a host's cluster.json VMs start once it holds
 * its first lease (a host isolates itself at boot, which would stop them).
 *
 * It tells the heartbeat component's `heartbeat.acked` which monitors can
 * keep a host: those that can exchange messages with the controller holding
 * the Paxos lease now (only the active leader answers digests, and a monitor
 * without its authority answers `no-authority`, a miss to the host). While
 * there is no leader, or every monitor a host reaches is cut from it (a
 * minority partition, a one-way cut), the host is excused; that a leader
 * comes back is `paxos.commits`' business.
 *
 * Invariants, judged from ground truth (sim/detection/detectionGroundTruth.ts):
 * - `detection.no-false-failure`: a host is declared failed (the view commits
 *   the detector's declaration) only for an incarnation that had ended, or
 *   that never held a lease again from the declaration on (the host agent's
 *   own lease phase);
 * - `detection.fenced-before-restart`: when a VM starts on another host while
 *   the view holds its former host failed (the host it still ran on: a VM
 *   stopped there has no former host), that host's incarnation had already
 *   ended (isolated or crashed) before the start.
 */
import type { HeartbeatSenderHost } from "../../actors/heartbeat/heartbeatSenderActor.ts";
import {
  defaultDetectorTickMs,
  defaultFailureDetectorConfig,
  defaultHostAgentConfig,
  defaultMonitorAgentConfig,
  detectionConfigProblems,
  type FailureDetectorConfig,
  type HostAgentConfig,
  type IsolationResponse,
  type MonitorAgentConfig,
} from "../../machines/detection/detectionConfig.ts";
import { DetectionGroundTruth } from "../detection/detectionGroundTruth.ts";
import { startControllerDetector, startDetectionHostAgent, startReportingMonitor } from "../detection/detectionNodes.ts";
import { SimWatchdogs } from "../detection/simWatchdog.ts";
import { scenarioCapabilities } from "./capabilities.ts";
import type { ScenarioComponent } from "./clusterAssembly.ts";
import type { HeartbeatComponentApi } from "./heartbeatComponent.ts";
import { heartbeatComponentName } from "./heartbeatComponent.ts";
import type { HypervisorComponentApi } from "./hypervisorComponent.ts";
import type { PaxosComponentApi } from "./paxosComponent.ts";

export const detectionComponentName = "detection";
export const hostStateCommittedEvent = "view.host-state";
export const detectionCheckMs = 100;
const maxViolationsKept = 1_000;
const maxLeaseChangesKept = 100_000;

export interface DetectionComponentSettings {
  readonly detector: FailureDetectorConfig;
  readonly hostAgent: HostAgentConfig;
  readonly monitorAgent: MonitorAgentConfig;
  readonly watchdogs: boolean;
  /** A host reset by its watchdog boots again after this long; undefined: it stays down. */
  readonly rebootAfterWatchdogMs: number | undefined;
}

export interface DetectionComponentApi {
  readonly truth: DetectionGroundTruth;
  readonly watchdogs: SimWatchdogs;
  readonly settings: DetectionComponentSettings;
  /** The host agent of a host's current incarnation (undefined while it is down). */
  hostAgent(hostId: string): HeartbeatSenderHost | undefined;
}

export const detectionComponent: ScenarioComponent<DetectionComponentSettings> = {
  name: detectionComponentName,
  provides: [scenarioCapabilities.detection],
  uses: [scenarioCapabilities.heartbeat, scenarioCapabilities.paxos],

  readSettings(reader) {
    const heartbeatIntervalMs = reader.duration("interval", { min: 1, max: 60_000, fallback: defaultHostAgentConfig.heartbeatIntervalMs });
    const ackTimeoutMs = reader.duration("ackTimeout", { min: 1, max: 60_000, fallback: Math.max(1, Math.floor(heartbeatIntervalMs * 0.8)) });
    const missedAcksBeforeSwitch = reader.integer("missedAcksBeforeSwitch", { min: 1, max: 100, fallback: defaultHostAgentConfig.missedAcksBeforeSwitch });
    const driftBackAfterMs = reader.duration("driftBack", { min: 1, max: 24 * 3_600_000, fallback: defaultHostAgentConfig.driftBackAfterMs });
    const hostLeaseMs = reader.duration("hostLease", { min: 1, max: 600_000, fallback: defaultFailureDetectorConfig.hostLeaseMs });
    const suspectAfterMs = reader.duration("suspectAfter", { min: 1, max: 600_000, fallback: defaultFailureDetectorConfig.suspectAfterMs });
    const authorityValidForMs = reader.duration("authorityValidFor", { min: 1, max: 600_000, fallback: defaultFailureDetectorConfig.authorityValidForMs });
    const maxIsolationDelayMs = reader.duration("maxIsolationDelay", { min: 1, max: 600_000, fallback: defaultFailureDetectorConfig.maxIsolationDelayMs });
    const isolationResponse = reader.oneOf<IsolationResponse>("isolationResponse", ["power-off", "shutdown"], defaultHostAgentConfig.isolationResponse);
    const watchdogs = reader.oneOf("watchdogs", ["on", "off"], "on") === "on";
    const rebootAfterWatchdogMs = reader.has("rebootAfterWatchdog") ? reader.duration("rebootAfterWatchdog", { min: 0, max: 3_600_000, fallback: 0 }) : undefined;
    reader.finish();
    return {
      detector: { ...defaultFailureDetectorConfig, hostLeaseMs, suspectAfterMs, authorityValidForMs, maxIsolationDelayMs },
      hostAgent: {
        ...defaultHostAgentConfig,
        heartbeatIntervalMs,
        ackTimeoutMs,
        missedAcksBeforeSwitch,
        driftBackAfterMs,
        maxAcceptedLeaseMs: hostLeaseMs,
        watchdogTimeoutMs: maxIsolationDelayMs,
        isolationResponse,
      },
      monitorAgent: { ...defaultMonitorAgentConfig },
      watchdogs,
      rebootAfterWatchdogMs,
    };
  },

  checkCluster(cluster, settings) {
    const problems: string[] = [];
    if (cluster.monitorIds.length === 0) problems.push("detection needs monitors (add \"monitors\")");
    if (cluster.componentSettings.has(heartbeatComponentName)) {
      problems.push("with detection, the host agents' heartbeat timings are set under components.detection (interval, ackTimeout, missedAcksBeforeSwitch, driftBack), not components.heartbeat");
    }
    for (const problem of detectionConfigProblems(settings.detector, settings.hostAgent, settings.monitorAgent)) problems.push(`components.detection: ${problem}`);
    return problems;
  },

  start(context, settings) {
    const { world, cluster, log } = context;
    const heartbeat = context.api<HeartbeatComponentApi>(scenarioCapabilities.heartbeat)!;
    const paxos = context.api<PaxosComponentApi>(scenarioCapabilities.paxos)!;
    const hypervisor = context.api<HypervisorComponentApi>(scenarioCapabilities.hypervisor);
    const monitorIds = cluster.monitorIds;
    const agents = new Map<string, HeartbeatSenderHost>();
    /** Hosts the view held failed or fenced, so a later `up` is logged as a rejoin. */
    const downInView = new Set<string>();
    /** When the view first held every host up: the cluster has formed. */
    let formedAtMs = Number.POSITIVE_INFINITY;
    const upOnce = new Set<string>();
    const truth = new DetectionGroundTruth(world, {
      trackLeases: true,
      hypervisors: () => hypervisor?.hypervisors,
      onCommitted: (record) => {
        if (record.state === "up" && upOnce.size < cluster.hosts.length) {
          upOnce.add(record.hostId);
          if (upOnce.size === cluster.hosts.length) formedAtMs = world.now();
        }
        if (record.state === "joining") return;
        if (record.state === "up" && !downInView.has(record.hostId)) return;
        if (record.state === "failed" || record.state === "fenced") downInView.add(record.hostId);
        else if (record.state === "up") downInView.delete(record.hostId);
        log.write("info", hostStateCommittedEvent, { host: record.hostId, state: record.state, incarnation: record.incarnation });
      },
    });
    /** hostId → times its agent's lease phase changed, alternating lost (even index) and regained. */
    const leaseGaps = new Map<string, number[]>();
    const withoutLease = (hostId: string, atMs: number): boolean => {
      const changes = leaseGaps.get(hostId) ?? [];
      let index = 0;
      while (index < changes.length && changes[index]! <= atMs) index++;
      return index % 2 === 1;
    };
    const watchdogs = new SimWatchdogs(world, settings.hostAgent.watchdogTimeoutMs, settings.rebootAfterWatchdogMs ?? null);

    paxos.hostsComeUpThroughDetection();
    hypervisor?.deferPlacement();
    heartbeat.useActors({
      sender: settings.hostAgent,
      // a forming cluster and a host without a lease (cut off, fenced) switch targets all the time: only the others say something
      logSwitch: (hostId, atMs) => atMs >= formedAtMs && !withoutLease(hostId, atMs),
      startMonitor: (ports) => startReportingMonitor(ports, settings.monitorAgent),
      // a monitor grants (and so keeps its hosts) only under authority from the leader of the moment, which needs both ways to it
      monitorCanAck: (monitorId) => {
        const leaderId = paxos.leaderId();
        if (leaderId === undefined) return false;
        return monitorId === leaderId || (world.fabric.canReach(monitorId, leaderId) && world.fabric.canReach(leaderId, monitorId));
      },
      startSender: (ports) => {
        const hostId = ports.nodeId;
        const agent = startDetectionHostAgent(ports, { monitorIds, hostConfig: settings.hostAgent, truth, ...(settings.watchdogs ? { watchdogs } : {}) });
        agents.set(hostId, agent);
        const changes = leaseGaps.get(hostId) ?? [];
        leaseGaps.set(hostId, changes);
        // a restarted host has no lease until it is granted one
        if (world.incarnation(hostId) > 1 && changes.length % 2 === 0) changes.push(world.now());
        let leased = false;
        agent.onSnapshot((snapshot) => {
          const now = snapshot.context.phase === "leased";
          if (now === leased) return;
          leased = now;
          // gaps count from the first grant on (before it, the cluster is forming)
          if ((changes.length === 0 && now) || changes.length >= maxLeaseChangesKept) return;
          changes.push(world.now());
        });
        if (hypervisor !== undefined && world.incarnation(hostId) === 1) {
          const placing = agent.onSnapshot((snapshot) => {
            if (snapshot.context.phase !== "leased") return;
            placing.unsubscribe();
            hypervisor.placeHostVms(hostId);
          });
        }
        return agent;
      },
    });

    // ---- a VM started elsewhere while its former host is failed in the view: that host must have fenced itself first
    const fenceViolations: { vmId: string; detail: string }[] = [];
    if (hypervisor !== undefined) {
      const lastActive = new Map<string, { hostId: string; sinceMs: number }>();
      hypervisor.hypervisors.registry.onRecord((record) => {
        const previous = lastActive.get(record.vmId);
        if (!record.active) {
          // Stopped there (shut off, crashed, migrated out): a later start elsewhere runs it once, whether or not that host
          // fenced itself (fuzz seed 300166: a VM migrated onto an incarnation that had ended was powered off at once).
          if (previous?.hostId === record.hostId) lastActive.delete(record.vmId);
          return;
        }
        lastActive.set(record.vmId, { hostId: record.hostId, sinceMs: record.atMs });
        if (previous === undefined || previous.hostId === record.hostId) return;
        const declared = truth.committed.find((entry) => entry.hostId === previous.hostId && entry.state === "failed" && entry.atMs >= previous.sinceMs && entry.atMs <= record.atMs);
        if (declared === undefined) return;
        if (truth.endedBetween(previous.hostId, previous.sinceMs, record.atMs)) return;
        if (fenceViolations.length < maxViolationsKept) {
          fenceViolations.push({ vmId: record.vmId, detail: `started on ${record.hostId} while ${previous.hostId} (failed in the view since ${declared.atMs.toFixed(3)}ms) had not fenced itself` });
        }
      });
    }

    const api: DetectionComponentApi = {
      truth,
      watchdogs,
      settings,
      hostAgent: (hostId) => (world.nodeState(hostId) === "crashed" ? undefined : agents.get(hostId)),
    };

    return {
      api,
      bootController(ports) {
        const controller = paxos.controller(ports.nodeId);
        if (controller === undefined) throw new Error(`controller ${ports.nodeId} has no Paxos controller actor`);
        const onController = startControllerDetector(ports, { controller, detectorConfig: settings.detector, tickIntervalMs: defaultDetectorTickMs, truth });
        return { stop: () => onController.stop() };
      },
      invariants: [
        {
          name: "detection.no-false-failure",
          everyMs: detectionCheckMs,
          check(_nowMs, violation) {
            for (const recorded of truth.hostFailedProposals()) {
              if (truth.justified(recorded)) continue;
              const { hostId, incarnation } = recorded.proposal;
              // Judged once the view holds it: a declaration the view refused (an incarnation it never held up, as a host
              // in maintenance or already failed at an older one: fuzz seeds 300556, 300885) makes nothing happen.
              if (!truth.committed.some((entry) => entry.hostId === hostId && entry.state === "failed" && entry.incarnation === incarnation && entry.atMs >= recorded.atMs)) continue;
              violation(`${hostId}#${incarnation}`, `declared failed at ${recorded.atMs.toFixed(3)}ms while incarnation ${incarnation} still held a lease`);
            }
          },
        },
        {
          name: "detection.fenced-before-restart",
          everyMs: detectionCheckMs,
          check(_nowMs, violation) {
            for (const { vmId, detail } of fenceViolations) violation(vmId, detail);
          },
        },
      ],
      finish() {
        const proposals = truth.proposals;
        log.write("info", "detection.summary", {
          declaredFailed: proposals.filter((recorded) => recorded.proposal.type === "host-failed").length,
          isolations: truth.isolations.filter((record) => record.reason !== "boot").length,
          watchdogResets: watchdogs.resets().length,
        });
      },
    };
  },
};

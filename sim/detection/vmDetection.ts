/**
 * VM-level and guest-level detection on the hosts of a DetectionCluster, wired
 * as the host process wires it: per host one hypervisor event subscription and
 * one batched poller (actors/vm/vmHostPoller.ts), a VM actor per VM (VM
 * monitor plus guest watchdog, actors/vm/vmWatch.ts), a guest agent inside each
 * VM's guest node, and every health change published as the VM supervisor
 * publishes it to the manager: `host.vm-report` / `host.guest-report` on
 * `mgr.report` (actors/hostCommands/hostReports.ts), fire and forget.
 *
 * The reports are recorded where they arrive (on every controller, or on the
 * leader stand-in), with whether that node held the leader lease then: a
 * report that reached the leader is one the manager (active only there) knows.
 * The supervisor itself needs the VMs placed in the view (so does the
 * manager); this host reporter stands in for it so that a 1,000-host run needs
 * no VM registration through Paxos.
 */
import { createRejectionCounter } from "../../actors/codec/rejectionCounter.ts";
import { startGuestAgent } from "../../actors/guest/guestAgentActor.ts";
import { hostReportMessages, hostReportSubject } from "../../actors/hostCommands/hostReports.ts";
import type { Hypervisor } from "../../actors/ports/hypervisor.ts";
import type { Subscription } from "../../actors/ports/network.ts";
import type { NodePorts } from "../../actors/ports/nodePorts.ts";
import { createVmEventRouter } from "../../actors/vm/vmEventRouter.ts";
import { createVmHostPoller } from "../../actors/vm/vmHostPoller.ts";
import { startVmWatch, type VmWatch } from "../../actors/vm/vmWatch.ts";
import type { GuestWatchdogConfig } from "../../machines/guest/guestWatchdog.ts";
import type { GuestAgentConfig } from "../../machines/guest/guestAgent.ts";
import { defaultVmMonitorConfig, type VmMonitorConfig } from "../../machines/vm/vmHealth.ts";
import type { NodeBoot } from "../world.ts";

/** Reports kept by one VmReportLog; later ones are counted in `dropped`. */
export const maxRecordedVmReports = 1_000_000;
export const vmReportsPublishedMetric = "haring_sim_vm_reports_published_total";

export interface VmMonitoringOptions {
  /** Guest agents inside every VM and a guest watchdog next to every VM monitor (default true). */
  readonly guestAgents?: boolean;
  /**
   * False: the hosts hear no hypervisor events, so a VM is seen only by the batched poll (the worst case of a
   * driver whose events are themselves polled, like libvirt's here). Default true.
   */
  readonly hypervisorEvents?: boolean;
  readonly vm?: Partial<VmMonitorConfig>;
  readonly guestWatchdog?: Partial<GuestWatchdogConfig>;
  readonly guestAgent?: Partial<GuestAgentConfig>;
}

export type VmReportLevel = "vm" | "guest";

export interface VmReportRecord {
  readonly atMs: number;
  /** The node the report arrived at. */
  readonly receivedBy: string;
  /** That node held the leader lease when it arrived (the manager there acts on it). */
  readonly atLeader: boolean;
  readonly hostId: string;
  readonly vmId: string;
  readonly level: VmReportLevel;
  readonly health: string;
}

/** Every VM and guest report that reached a controller, in arrival order. */
export class VmReportLog {
  readonly records: VmReportRecord[] = [];
  /** Received but not kept (past `maxRecordedVmReports`). */
  dropped = 0;
  /** Messages on the report subject that did not decode. */
  rejected = 0;

  record(record: VmReportRecord): void {
    if (this.records.length >= maxRecordedVmReports) this.dropped++;
    else this.records.push(record);
  }

  /** When a report of this VM, level and health first reached the leader at or after `sinceMs`. */
  firstAtLeader(vmId: string, level: VmReportLevel, health: string, sinceMs: number): number | undefined {
    for (const record of this.records) {
      if (record.atLeader && record.atMs >= sinceMs && record.vmId === vmId && record.level === level && record.health === health) return record.atMs;
    }
    return undefined;
  }
}

/** On a controller (or the stand-in): records each report on `mgr.report` with whether this node leads now. */
export function listenForVmReports(ports: NodePorts, log: VmReportLog, holdsLease: () => boolean): Subscription {
  return ports.network.subscribe(hostReportSubject(ports.clusterId), (message) => {
    const decoded = hostReportMessages.decode(message.data, ["host.vm-report", "host.guest-report"]);
    if (!decoded.ok) {
      log.rejected++;
      return;
    }
    const { t: type, body } = decoded.message;
    log.record({
      atMs: ports.clock.now(),
      receivedBy: ports.nodeId,
      atLeader: holdsLease(),
      hostId: body.hostId,
      vmId: body.vmId,
      level: type === "host.vm-report" ? "vm" : "guest",
      health: body.health,
    });
  });
}

export interface HostVmMonitoring {
  /** Starts the VM actor of a VM placed (and started) on this host. */
  watch(vmId: string): void;
  readonly watchedVms: number;
  stop(): void;
}

export interface HostVmMonitoringOptions {
  readonly vmConfig: VmMonitorConfig;
  readonly guestWatchdog: Partial<GuestWatchdogConfig> | undefined;
  /** The host agent's incarnation, which the reports carry. */
  readonly incarnation: () => number;
}

/** On a host: the shared event subscription and batched poller, a VM actor per watched VM, reports published to the manager's subject. */
export function startHostVmMonitoring(ports: NodePorts, options: HostVmMonitoringOptions): HostVmMonitoring {
  const hypervisor = ports.hypervisor;
  if (hypervisor === undefined) throw new Error(`host ${ports.nodeId} has no hypervisor port`);
  const hostId = ports.nodeId;
  const subject = hostReportSubject(ports.clusterId);
  const rejections = createRejectionCounter(ports);
  const router = createVmEventRouter(hypervisor);
  const poller = createVmHostPoller({
    clock: ports.clock,
    hypervisor,
    metrics: ports.metrics,
    pollIntervalMs: options.vmConfig.vmPollIntervalMs,
    unreachableAfterPolls: options.vmConfig.vmUnreachableAfterPolls,
  });
  const watches = new Map<string, VmWatch>();
  let correlation = 0;
  const publish = (type: "host.vm-report" | "host.guest-report", vmId: string, health: string): void => {
    ports.metrics.increment(vmReportsPublishedMetric, { type });
    const body = { hostId, incarnation: options.incarnation(), vmId, health } as never;
    ports.network.publish(subject, hostReportMessages.encode(type, hostId, `report-${++correlation}`, body));
  };
  return {
    watch(vmId) {
      watches.get(vmId)?.dispose();
      watches.set(
        vmId,
        startVmWatch(ports, {
          vmId,
          desired: "running",
          router,
          poller,
          rejections,
          vmConfig: options.vmConfig,
          watchGuest: options.guestWatchdog !== undefined,
          ...(options.guestWatchdog === undefined ? {} : { guestConfig: options.guestWatchdog }),
          onVmReport: (report) => publish("host.vm-report", vmId, report.health),
          onGuestReport: (report) => publish("host.guest-report", vmId, report.health),
        }),
      );
    },
    get watchedVms() {
      return watches.size;
    },
    stop() {
      for (const watch of watches.values()) watch.dispose();
      watches.clear();
      poller.dispose();
      router.dispose();
    },
  };
}

/** The boot of a VM's guest node: the guest agent heartbeating over the simulated network. */
export function guestAgentBoot(vmId: string, config: Partial<GuestAgentConfig> | undefined): NodeBoot {
  return (ports) => {
    const agent = startGuestAgent(ports, { vmId, ...(config === undefined ? {} : { config }) });
    return { stop: () => agent.dispose() };
  };
}

/** The same hypervisor, deaf: nobody subscribed through it ever hears an event. */
export function withoutEvents(hypervisor: Hypervisor): Hypervisor {
  return {
    driver: hypervisor.driver,
    supportsLiveMigration: hypervisor.supportsLiveMigration,
    list: (done) => hypervisor.list(done),
    status: (vmId, done) => hypervisor.status(vmId, done),
    define: (definition, done) => hypervisor.define(definition, done),
    start: (vmId, done) => hypervisor.start(vmId, done),
    stop: (vmId, force, done) => hypervisor.stop(vmId, force, done),
    reset: (vmId, done) => hypervisor.reset(vmId, done),
    pause: (vmId, done) => hypervisor.pause(vmId, done),
    resume: (vmId, done) => hypervisor.resume(vmId, done),
    guestPing: (vmId, timeoutMs, done) => hypervisor.guestPing(vmId, timeoutMs, done),
    onEvent: () => ({ unsubscribe: () => undefined }),
    ...(hypervisor.migrate === undefined ? {} : { migrate: (vmId: string, targetHostId: string, done: Parameters<NonNullable<Hypervisor["migrate"]>>[2]) => hypervisor.migrate!(vmId, targetHostId, done) }),
  };
}

/** The VM monitor settings a run uses: the defaults, with the given overrides. */
export function vmMonitorConfigOf(options: VmMonitoringOptions): VmMonitorConfig {
  return { ...defaultVmMonitorConfig, ...options.vm };
}

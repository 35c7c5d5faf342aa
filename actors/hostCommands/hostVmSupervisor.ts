/**
 * On a host node: watches the VMs the learned view places here and that run
 * (actors/vm/vmWatch.ts: the VM monitor, and the guest watchdog where the VM
 * has a guest agent), and publishes their health to the manager
 * (hostReports.ts) with the incarnation the view knows this host by.
 *
 * A VM gets a watch once it runs here (seen in the hypervisor's list, or
 * started by the command executor) while the view places it here; the watch
 * goes when the view places it elsewhere or stops wanting it. Reports are
 * held back while the host holds no lease: an isolated host's VMs are being
 * powered off on purpose, and its reports would only make noise.
 * The host's capabilities are published at start and every
 * `capabilitiesIntervalMs`, so a new leader's manager learns them too.
 */
import type { RejectionCounter } from "../codec/rejectionCounter.ts";
import type { TimerId } from "../ports/clock.ts";
import type { Hypervisor } from "../ports/hypervisor.ts";
import type { Subscription } from "../ports/network.ts";
import type { NodePorts } from "../ports/nodePorts.ts";
import { createVmEventRouter, type VmEventRouter } from "../vm/vmEventRouter.ts";
import { startVmWatch, type VmWatch } from "../vm/vmWatch.ts";
import type { GuestWatchdogConfig } from "../../machines/guest/guestWatchdog.ts";
import type { VmMonitorConfig } from "../../machines/vm/vmHealth.ts";
import type { View } from "../../machines/view/viewTypes.ts";
import type { HostLeaseState, ViewSource } from "./hostCommandExecutor.ts";
import { hostReportMessages, hostReportSubject } from "./hostReports.ts";

export interface HostVmSupervisorOptions {
  readonly hypervisor: Hypervisor;
  readonly views: ViewSource;
  readonly lease: () => HostLeaseState | undefined;
  readonly rejections: RejectionCounter;
  /** Which VMs have a guest agent to watch (default: none). */
  readonly watchGuest?: (vmId: string) => boolean;
  readonly vmConfig?: Partial<VmMonitorConfig>;
  readonly guestConfig?: Partial<GuestWatchdogConfig>;
  readonly listIntervalMs?: number;
  readonly capabilitiesIntervalMs?: number;
  /** What to tell the manager about live migration; default false (the Hypervisor port has no migrate operation). */
  readonly supportsLiveMigration?: boolean;
}

export interface HostVmSupervisor {
  /** The executor started this VM here: watch it now. */
  started(vmId: string): void;
  readonly watchedVmIds: readonly string[];
  stop(): void;
}

export const defaultHostListIntervalMs = 1_000;
export const defaultCapabilitiesIntervalMs = 5_000;
export const maxWatchedVmsPerHost = 10_000;
export const hostReportsMetric = "haring_host_reports_total";

/** The incarnation the view knows this host by (the view numbers a first life 0), given the agent's own. */
export function reportedIncarnation(view: View, hostId: string, agentIncarnation: number): number {
  const host = view.hosts.get(hostId);
  if (host === undefined) return agentIncarnation;
  return host.incarnation === 0 || host.incarnation === agentIncarnation ? host.incarnation : agentIncarnation;
}

export function startHostVmSupervisor(ports: NodePorts, options: HostVmSupervisorOptions): HostVmSupervisor {
  const hostId = ports.nodeId;
  const { hypervisor, views } = options;
  const subject = hostReportSubject(ports.clusterId);
  const watches = new Map<string, VmWatch>();
  const router: VmEventRouter = createVmEventRouter(hypervisor);
  let correlation = 0;
  let stopped = false;
  let listTimer: TimerId | undefined;
  let capabilitiesTimer: TimerId | undefined;

  const placedHere = (view: View, vmId: string): boolean => {
    const vm = view.vms.get(vmId);
    return vm !== undefined && vm.desiredState === "running" && vm.placement?.hostId === hostId;
  };

  const publish = (type: "host.vm-report" | "host.guest-report", vmId: string, health: string): void => {
    const lease = options.lease();
    if (stopped || lease === undefined || lease.phase !== "leased") return;
    const incarnation = reportedIncarnation(views.view(), hostId, lease.incarnation);
    ports.metrics.increment(hostReportsMetric, { type });
    const body = { hostId, incarnation, vmId, health } as never;
    ports.network.publish(subject, hostReportMessages.encode(type, hostId, `report-${++correlation}`, body));
  };

  const watch = (vmId: string): void => {
    if (stopped || watches.has(vmId) || watches.size >= maxWatchedVmsPerHost) return;
    watches.set(
      vmId,
      startVmWatch(ports, {
        vmId,
        desired: "running",
        router,
        rejections: options.rejections,
        watchGuest: options.watchGuest?.(vmId) ?? false,
        ...(options.vmConfig ? { vmConfig: options.vmConfig } : {}),
        ...(options.guestConfig ? { guestConfig: options.guestConfig } : {}),
        onVmReport: (report) => publish("host.vm-report", vmId, report.health),
        onGuestReport: (report) => publish("host.guest-report", vmId, report.health),
      }),
    );
  };

  const unwatchMoved = (view: View): void => {
    for (const [vmId, vmWatch] of [...watches]) {
      if (placedHere(view, vmId)) continue;
      vmWatch.dispose();
      watches.delete(vmId);
    }
  };

  const list = (): void => {
    listTimer = undefined;
    if (stopped) return;
    hypervisor.list((listed) => {
      if (stopped) return;
      if (listed.ok) {
        const view = views.view();
        for (const status of listed.value) if ((status.state === "running" || status.state === "paused") && placedHere(view, status.vmId)) watch(status.vmId);
      }
      listTimer = ports.clock.setTimeout(list, options.listIntervalMs ?? defaultHostListIntervalMs);
    });
  };

  const announce = (): void => {
    capabilitiesTimer = undefined;
    if (stopped) return;
    ports.network.publish(
      subject,
      hostReportMessages.encode("host.capabilities", hostId, `caps-${++correlation}`, { hostId, supportsLiveMigration: options.supportsLiveMigration ?? false }),
    );
    capabilitiesTimer = ports.clock.setTimeout(announce, options.capabilitiesIntervalMs ?? defaultCapabilitiesIntervalMs);
  };

  const applied: Subscription = views.onApplied((_applied, view) => unwatchMoved(view));
  list();
  capabilitiesTimer = ports.clock.setTimeout(announce, 0);

  return {
    started(vmId) {
      if (placedHere(views.view(), vmId)) watch(vmId);
    },
    get watchedVmIds() {
      return [...watches.keys()];
    },
    stop() {
      stopped = true;
      applied.unsubscribe();
      if (listTimer !== undefined) ports.clock.clearTimeout(listTimer);
      if (capabilitiesTimer !== undefined) ports.clock.clearTimeout(capabilitiesTimer);
      for (const vmWatch of watches.values()) vmWatch.dispose();
      watches.clear();
      router.dispose();
    },
  };
}

/**
 * A VM actor (actors/vm/vmWatch.ts: the hypervisor side, and the guest agent
 * when asked) for every VM on this host's hypervisor. The hypervisor is
 * listed at start and every `rescanIntervalMs`: new VMs get a watch, VMs no
 * longer defined lose theirs. A VM's desired state is the view's when the
 * view knows the VM, else the host's own config's (the sim driver's
 * `running`), else what it was doing when first seen (a VM defined outside
 * haring is watched, not judged against a wish nobody had).
 *
 * The view has no command for VM health yet, so reports go to the JSON log
 * (`vm.health`), the metrics and the node's status file, and are published
 * as JSON on `haring.<cluster>.event.vm-health` for people and tools.
 *
 * A VM the manager's VM supervisor watches (placed here by the view) is not
 * watched twice: `supervised(vmId)` says so, its watch here is dropped at the
 * next scan, and the supervisor's reports come in through `report()`.
 *
 * Every VM actor on the host, these and the supervisor's
 * (`polledVmActorWatcher`), shares one `HostVmPolling`: one event
 * subscription and one batched `list` per poll interval (libvirt: one
 * `virsh domstats` for all domains) instead of a timer and a status call per
 * VM. A VM actor still asks for its own VM's status when it starts and when
 * the hypervisor sends an event for it.
 */
import type { RejectionCounter } from "../../actors/codec/rejectionCounter.ts";
import type { TimerId } from "../../actors/ports/clock.ts";
import type { Hypervisor } from "../../actors/ports/hypervisor.ts";
import type { NodePorts } from "../../actors/ports/nodePorts.ts";
import { clusterSubjects, isValidId } from "../../actors/subjects.ts";
import { unwatchedVmsMetric, vmActorWatcher, type VmReportSink, type VmWatcher } from "../../actors/hostCommands/hostVmSupervisor.ts";
import { createVmEventRouter, type VmEventRouter } from "../../actors/vm/vmEventRouter.ts";
import { createVmHostPoller, type VmHostPoller } from "../../actors/vm/vmHostPoller.ts";
import { startVmWatch, type VmWatch } from "../../actors/vm/vmWatch.ts";
import { defaultVmMonitorConfig, type VmDesiredState, type VmHealth, type VmMonitorConfig } from "../../machines/vm/vmHealth.ts";

/** VMs watched on one host at most; more are counted and left unwatched. */
export const maxWatchedVmsPerHost = 1_000;
export const vmListFailuresMetric = "haring_host_vm_list_failures_total";

/** The host's one event subscription and one batched poll, shared by all its VM actors. */
export interface HostVmPolling {
  readonly hypervisor: Hypervisor;
  readonly router: VmEventRouter;
  readonly poller: VmHostPoller;
  readonly vmConfig: VmMonitorConfig;
  dispose(): void;
}

export function createHostVmPolling(ports: NodePorts, hypervisor: Hypervisor, vmConfig: VmMonitorConfig = defaultVmMonitorConfig): HostVmPolling {
  const router = createVmEventRouter(hypervisor);
  const poller = createVmHostPoller({
    clock: ports.clock,
    hypervisor,
    metrics: ports.metrics,
    pollIntervalMs: vmConfig.vmPollIntervalMs,
    unreachableAfterPolls: vmConfig.vmUnreachableAfterPolls,
  });
  return {
    hypervisor,
    router,
    poller,
    vmConfig,
    dispose() {
      poller.dispose();
      router.dispose();
    },
  };
}

export interface PolledVmActorWatcherOptions {
  readonly rejections: RejectionCounter;
  readonly watchGuest: (vmId: string) => boolean;
}

/**
 * The VM supervisor's watcher (actors/hostCommands/hostVmSupervisor.ts) on the
 * host's shared polling: a VM actor per watched VM, polled with all the others.
 * Stopping it leaves the shared polling running (its owner disposes it).
 */
export function polledVmActorWatcher(ports: NodePorts, polling: HostVmPolling, options: PolledVmActorWatcherOptions, sink: VmReportSink): VmWatcher {
  const hostPorts: NodePorts = { ...ports, hypervisor: polling.hypervisor };
  return vmActorWatcher(hostPorts, polling.hypervisor, { ...options, vmConfig: polling.vmConfig, maxWatched: maxWatchedVmsPerHost }, sink, polling);
}

export interface HostVmWatchesOptions {
  /** The host's shared event subscription and batched poll; `stop()` leaves it to its owner. */
  readonly polling: HostVmPolling;
  readonly rejections: RejectionCounter;
  readonly rescanIntervalMs: number;
  readonly watchGuests: boolean;
  /** The view's wish for a VM, when the view knows it. */
  readonly desiredInView: (vmId: string) => VmDesiredState | undefined;
  /** Else this host's own wish, when it has one (the sim driver's config); else what the VM was doing when first seen. */
  readonly desiredLocally?: (vmId: string) => VmDesiredState | undefined;
  /** VMs someone else watches (the VM supervisor); their health arrives through `report`. */
  readonly supervised?: (vmId: string) => boolean;
}

export interface HostVmWatches {
  /** Latest health per watched VM. */
  health(): ReadonlyMap<string, VmHealth>;
  /** Re-reads every watched VM's desired state from the view (call when the view changed). */
  refreshDesired(): void;
  /** Lists the hypervisor again on the next turn (a VM was just defined or started here), instead of at the next interval. */
  rescanSoon(): void;
  /** The health of a VM watched elsewhere (the supervisor), for the status file, the log and the event subject. */
  report(vmId: string, health: VmHealth): void;
  stop(): void;
}

export function startHostVmWatches(ports: NodePorts, options: HostVmWatchesOptions): HostVmWatches {
  const { polling } = options;
  const hostPorts: NodePorts = { ...ports, hypervisor: polling.hypervisor };
  const watches = new Map<string, { watch: VmWatch; desired: VmDesiredState }>();
  const health = new Map<string, VmHealth>();
  const eventSubject = clusterSubjects(ports.clusterId).event("vm-health");
  const encoder = new TextEncoder();
  let stopped = false;
  let timer: TimerId | undefined;
  let scanning = false;
  let rescanWanted = false;

  const supervised = options.supervised ?? (() => false);
  const publishHealth = (event: Record<string, unknown>): void => ports.network.publish(eventSubject, encoder.encode(JSON.stringify(event)));

  const watchVm = (vmId: string, discoveredRunning: boolean): void => {
    if (watches.size >= maxWatchedVmsPerHost) {
      ports.metrics.increment(unwatchedVmsMetric);
      return;
    }
    const desired = options.desiredInView(vmId) ?? options.desiredLocally?.(vmId) ?? (discoveredRunning ? "running" : "stopped");
    const watch = startVmWatch(hostPorts, {
      vmId,
      desired,
      router: polling.router,
      poller: polling.poller,
      vmConfig: polling.vmConfig,
      rejections: options.rejections,
      watchGuest: options.watchGuests,
      onVmReport: (report) => {
        health.set(vmId, report.health);
        publishHealth({ hostId: ports.nodeId, vmId, health: report.health, previous: report.previousHealth, desired: report.desired, state: report.powerState, detail: report.detail });
      },
      onGuestReport: (report) => ports.log.write("info", "guest.health", { vm: vmId, report: JSON.stringify(report).slice(0, 400) }),
    });
    watches.set(vmId, { watch, desired });
    ports.log.write("info", "vm.watching", { vm: vmId, desired });
  };

  const scan = (): void => {
    timer = undefined;
    if (stopped) return;
    scanning = true;
    rescanWanted = false;
    polling.hypervisor.list((listed) => {
      scanning = false;
      if (stopped) return;
      if (!listed.ok) {
        ports.metrics.increment(vmListFailuresMetric, { reason: listed.reason });
        ports.log.write("warn", "host.vm-list-failed", { reason: listed.reason, error: listed.error });
      } else {
        const present = new Set<string>();
        for (const vm of listed.value) {
          if (!isValidId(vm.vmId)) continue;
          present.add(vm.vmId);
          if (!watches.has(vm.vmId) && !supervised(vm.vmId)) watchVm(vm.vmId, vm.state === "running" || vm.state === "paused");
        }
        for (const [vmId, entry] of [...watches]) {
          const handedOver = supervised(vmId);
          if (present.has(vmId) && !handedOver) continue;
          entry.watch.dispose();
          watches.delete(vmId);
          if (!handedOver) health.delete(vmId);
          ports.log.write("info", "vm.unwatched", { vm: vmId, reason: handedOver ? "watched by the VM supervisor" : "no longer defined on the hypervisor" });
        }
        for (const vmId of [...health.keys()]) if (!watches.has(vmId) && !supervised(vmId) && !present.has(vmId)) health.delete(vmId);
      }
      timer = ports.clock.setTimeout(scan, rescanWanted ? 0 : options.rescanIntervalMs);
    });
  };
  scan();

  return {
    health: () => health,
    refreshDesired() {
      for (const [vmId, entry] of watches) {
        const desired = options.desiredInView(vmId);
        if (desired !== undefined && desired !== entry.desired) {
          entry.desired = desired;
          entry.watch.setDesired(desired);
        }
      }
    },
    report(vmId, reported) {
      if (stopped || !isValidId(vmId)) return;
      const previous = health.get(vmId);
      if (previous === reported) return;
      if (previous === undefined && health.size >= maxWatchedVmsPerHost) return;
      health.set(vmId, reported);
      publishHealth({ hostId: ports.nodeId, vmId, health: reported, previous: previous ?? "unknown", desired: "running", source: "supervisor" });
    },
    rescanSoon() {
      if (stopped) return;
      if (scanning) {
        rescanWanted = true;
        return;
      }
      if (timer !== undefined) ports.clock.clearTimeout(timer);
      timer = ports.clock.setTimeout(scan, 0);
    },
    stop() {
      stopped = true;
      if (timer !== undefined) ports.clock.clearTimeout(timer);
      for (const entry of watches.values()) entry.watch.dispose();
      watches.clear();
    },
  };
}

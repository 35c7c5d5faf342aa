/**
 * On a host node: watches the VMs the learned view places here
 * (actors/vm/vmWatch.ts: the VM monitor, and the guest watchdog where the VM
 * has a guest agent), and publishes their health to the manager
 * (hostReports.ts) with the incarnation the view knows this host by.
 *
 * Every VM the view places here (and wants running) is watched, whether it
 * runs or not: a VM placed here that is missing or shut off is reported too,
 * which is how a new leader's manager finds placements its predecessor made
 * but never saw started. A report that is not "running" is repeated every
 * `unhealthyReportRepeatMs` while it lasts (reports are fire and forget, and
 * only the active manager acts on them). Reports are held back while the
 * host holds no lease: an isolated host's VMs are being powered off on
 * purpose, and its reports would only make noise.
 * A VM that was placed here and that the view no longer wants here (moved
 * elsewhere, desired stopped, or removed) is shut down here: stopping never
 * makes a VM run twice, and it covers a stop of the manager's that never got
 * through (the manager stops a VM it moves before starting it elsewhere).
 * Live migration (the view's `migratingFrom` marker): the source stops
 * watching a VM migrating away from it but never stops it; the target does not
 * watch a VM migrating to it until the marker is cleared (it arrives by the
 * migration, not by a start), and shuts it down if the migration is undone
 * (the VM placed back on the source) in case it arrived after all.
 * On a host that can receive migrations, a VM that starts while the host
 * holds no lease (a live migration finishing after its isolation response
 * ran) or that the view does not place here (a migration finishing after the
 * view undid it) is powered off at once.
 * The host's capabilities are published at start and every
 * `capabilitiesIntervalMs`, so a new leader's manager learns them too.
 */
import type { RejectionCounter } from "../codec/rejectionCounter.ts";
import type { TimerId } from "../ports/clock.ts";
import type { Hypervisor } from "../ports/hypervisor.ts";
import type { Subscription } from "../ports/network.ts";
import type { NodePorts } from "../ports/nodePorts.ts";
import { createVmEventRouter, type VmEventRouter } from "../vm/vmEventRouter.ts";
import type { VmHostPoller } from "../vm/vmHostPoller.ts";
import { startVmWatch, type VmWatch } from "../vm/vmWatch.ts";
import type { GuestWatchdogConfig } from "../../machines/guest/guestWatchdog.ts";
import type { VmMonitorConfig } from "../../machines/vm/vmHealth.ts";
import type { View } from "../../machines/view/viewTypes.ts";
import { vmsByHost } from "../../machines/view/applyViewCommands.ts";
import type { HostLeaseState, ViewSource } from "./hostCommandExecutor.ts";
import type { HostIncarnation } from "./hostIncarnation.ts";
import { hostReportMessages, hostReportSubject } from "./hostReports.ts";

/** Where a watcher sends what it sees. */
export interface VmReportSink {
  vm(vmId: string, health: string): void;
  guest(vmId: string, health: string): void;
}

/**
 * How VMs are watched: by default a VM actor per VM (startVmWatch); a host
 * that already runs VM actors (the simulator's hypervisor component) passes
 * its own.
 */
export interface VmWatcher {
  /**
   * Watch `vmId`, meant to run here; reports go to the sink: the VM's health as first judged, then every
   * change. The first report is what tells the manager that a VM placed here is not running, so a watcher
   * must not start from what it knew of the VM before.
   */
  watch(vmId: string): void;
  /** No longer placed here (or no longer wanted). */
  unwatch(vmId: string): void;
  stop(): void;
}

export interface HostVmSupervisorOptions {
  readonly hypervisor: Hypervisor;
  readonly views: ViewSource;
  readonly lease: () => HostLeaseState | undefined;
  /** Matches the agent's incarnation with the view's number for this host (hostIncarnation.ts); reports carry the view's when it matches. */
  readonly incarnation: HostIncarnation;
  readonly rejections: RejectionCounter;
  /** Which VMs have a guest agent to watch (default: none); for the default watcher. */
  readonly watchGuest?: (vmId: string) => boolean;
  readonly vmConfig?: Partial<VmMonitorConfig>;
  readonly guestConfig?: Partial<GuestWatchdogConfig>;
  /** Replaces the default watcher (a VM actor per VM). */
  readonly watcher?: (sink: VmReportSink) => VmWatcher;
  readonly unhealthyReportRepeatMs?: number;
  readonly capabilitiesIntervalMs?: number;
  /** What to tell the manager about live migration; default: the hypervisor port's `supportsLiveMigration`. */
  readonly supportsLiveMigration?: boolean;
  /** A VM newly placed here is watched only this long after the placement is seen, unless started here sooner (its start is on the way). */
  readonly newPlacementWatchDelayMs?: number;
  /** A VM that ran here and that the view no longer wants running is shut down; forced after this long. */
  readonly unwantedStopWaitMs?: number;
}

export interface HostVmSupervisor {
  /** The executor started this VM here: make sure it is watched. */
  started(vmId: string): void;
  readonly watchedVmIds: readonly string[];
  stop(): void;
}

export const defaultUnhealthyReportRepeatMs = 1_000;
export const defaultCapabilitiesIntervalMs = 5_000;
export const maxWatchedVmsPerHost = 10_000;
export const defaultUnwantedStopWaitMs = 5_000;
export const defaultNewPlacementWatchDelayMs = 2_000;
export const hostReportsMetric = "haring_host_reports_total";

/** The incarnation the view knows this host by (the view numbers a first life 0), given the agent's own. */
function vmsPlacedOn(view: View, hostId: string): readonly string[] {
  return vmsByHost(view).get(hostId) ?? [];
}

/** A host's one event subscription and batched poll, shared by all its VM actors (runtime/node/hostVmWatches.ts owns it). */
export interface SharedVmPolling {
  readonly router: VmEventRouter;
  readonly poller: VmHostPoller;
}

export const unwatchedVmsMetric = "haring_host_unwatched_vms_total";

export type VmActorWatcherOptions = Pick<HostVmSupervisorOptions, "rejections" | "watchGuest" | "vmConfig" | "guestConfig"> & {
  /** More watched VMs than this are counted (`unwatchedVmsMetric`) and left unwatched. */
  readonly maxWatched?: number;
};

/**
 * The default watcher: a VM actor (VM monitor, guest watchdog where asked) per watched VM. With `shared`
 * polling the actors are polled with every other VM actor of the host, and stopping leaves it to its owner.
 */
export function vmActorWatcher(ports: NodePorts, hypervisor: Hypervisor, options: VmActorWatcherOptions, sink: VmReportSink, shared?: SharedVmPolling): VmWatcher {
  const router: VmEventRouter = shared?.router ?? createVmEventRouter(hypervisor);
  const watches = new Map<string, VmWatch>();
  return {
    watch(vmId) {
      if (watches.has(vmId)) return;
      if (options.maxWatched !== undefined && watches.size >= options.maxWatched) {
        ports.metrics.increment(unwatchedVmsMetric);
        return;
      }
      watches.set(
        vmId,
        startVmWatch(ports, {
          vmId,
          desired: "running",
          router,
          ...(shared ? { poller: shared.poller } : {}),
          rejections: options.rejections,
          watchGuest: options.watchGuest?.(vmId) ?? false,
          ...(options.vmConfig ? { vmConfig: options.vmConfig } : {}),
          ...(options.guestConfig ? { guestConfig: options.guestConfig } : {}),
          onVmReport: (report) => sink.vm(vmId, report.health),
          onGuestReport: (report) => sink.guest(vmId, report.health),
        }),
      );
    },
    unwatch(vmId) {
      watches.get(vmId)?.dispose();
      watches.delete(vmId);
    },
    stop() {
      for (const watch of watches.values()) watch.dispose();
      watches.clear();
      if (shared === undefined) router.dispose();
    },
  };
}

export function startHostVmSupervisor(ports: NodePorts, options: HostVmSupervisorOptions): HostVmSupervisor {
  const hostId = ports.nodeId;
  const { hypervisor, views } = options;
  const subject = hostReportSubject(ports.clusterId);
  let correlation = 0;
  let stopped = false;
  let repeatTimer: TimerId | undefined;
  let capabilitiesTimer: TimerId | undefined;
  /** vmId → the last VM and guest health reported, for repeats; the keys are the watched VMs. */
  const lastHealth = new Map<string, { vm: string; guest: string }>();

  const placedHere = (view: View, vmId: string): boolean => {
    const vm = view.vms.get(vmId);
    return vm !== undefined && vm.desiredState === "running" && vm.placement?.hostId === hostId && vm.placement.migratingFrom === undefined;
  };
  /** Migrating away from this host: it still runs here until the switchover, and is not stopped. */
  const leavingByMigration = (view: View, vmId: string): boolean => {
    const vm = view.vms.get(vmId);
    return vm !== undefined && vm.desiredState === "running" && vm.placement?.migratingFrom === hostId;
  };
  const arrivingByMigration = (view: View, vmId: string): boolean => {
    const vm = view.vms.get(vmId);
    return vm !== undefined && vm.desiredState === "running" && vm.placement?.hostId === hostId && vm.placement.migratingFrom !== undefined;
  };
  /** VMs the view has migrating here (not watched, not started by anyone here). */
  const arriving = new Set<string>();

  const publish = (type: "host.vm-report" | "host.guest-report", vmId: string, health: string): void => {
    const lease = options.lease();
    if (stopped || lease === undefined || lease.phase !== "leased") return;
    // The view's number when it names this incarnation (the manager compares with it), else the agent's own.
    const viewIncarnation = views.view().hosts.get(hostId)?.incarnation;
    const incarnation = viewIncarnation !== undefined && options.incarnation.matches(viewIncarnation, lease.incarnation) ? viewIncarnation : lease.incarnation;
    ports.metrics.increment(hostReportsMetric, { type });
    const body = { hostId, incarnation, vmId, health } as never;
    ports.network.publish(subject, hostReportMessages.encode(type, hostId, `report-${++correlation}`, body));
  };

  const sink: VmReportSink = {
    vm(vmId, health) {
      const last = lastHealth.get(vmId);
      if (last === undefined) return;
      last.vm = health;
      publish("host.vm-report", vmId, health);
    },
    guest(vmId, health) {
      const last = lastHealth.get(vmId);
      if (last === undefined) return;
      last.guest = health;
      publish("host.guest-report", vmId, health);
    },
  };
  const watcher = options.watcher?.(sink) ?? vmActorWatcher(ports, hypervisor, options, sink);

  /** Placements seen here whose watch waits for the start (or the delay). */
  const awaitingStart = new Set<string>();
  const watch = (vmId: string): void => {
    awaitingStart.delete(vmId);
    if (stopped || lastHealth.has(vmId) || lastHealth.size >= maxWatchedVmsPerHost) return;
    lastHealth.set(vmId, { vm: "unknown", guest: "unmonitored" });
    watcher.watch(vmId);
  };

  /** Shuts down a VM the view no longer wants here (moved, stopped or removed), forced if it lingers. */
  const stopUnwanted = (vmId: string): void => {
    hypervisor.stop(vmId, false, (requested) => {
      if (!requested.ok) return;
      ports.log.write("info", "host.vm-unwanted-stopped", { vm: vmId });
      ports.clock.setTimeout(() => {
        if (stopped) return;
        hypervisor.status(vmId, (status) => {
          if (status.ok && (status.value?.state === "running" || status.value?.state === "paused")) hypervisor.stop(vmId, true, () => undefined);
        });
      }, options.unwantedStopWaitMs ?? defaultUnwantedStopWaitMs);
    });
  };

  const follow = (view: View): void => {
    for (const vmId of [...arriving]) {
      if (arrivingByMigration(view, vmId)) continue;
      arriving.delete(vmId);
      if (placedHere(view, vmId)) {
        // The migration is done: the VM runs here (or the manager starts it), watched at once.
        watch(vmId);
        continue;
      }
      // Undone (placed back on the source) or no longer wanted: if it arrived after all, it must not run here.
      stopUnwanted(vmId);
    }
    for (const vmId of [...lastHealth.keys()]) {
      if (placedHere(view, vmId)) continue;
      watcher.unwatch(vmId);
      lastHealth.delete(vmId);
      // Migrating away: the migration decides where it runs (its end is judged from the hypervisor's state), and
      // reports from here would only say "missing" after the switchover.
      if (leavingByMigration(view, vmId)) continue;
      // Not wanted here any more (moved elsewhere, stopped or removed): stop it. The manager stops a VM it
      // moves too, before starting it elsewhere; this covers a stop of the manager's that never got through.
      stopUnwanted(vmId);
    }
    for (const vmId of vmsPlacedOn(view, hostId)) {
      if (arrivingByMigration(view, vmId)) {
        if (arriving.size < maxWatchedVmsPerHost) arriving.add(vmId);
        continue;
      }
      if (!placedHere(view, vmId) || lastHealth.has(vmId) || awaitingStart.has(vmId)) continue;
      // Watching at once would only report "missing" until the manager's start arrives.
      awaitingStart.add(vmId);
      ports.clock.setTimeout(() => {
        if (!stopped && awaitingStart.has(vmId) && placedHere(views.view(), vmId)) watch(vmId);
        awaitingStart.delete(vmId);
      }, options.newPlacementWatchDelayMs ?? defaultNewPlacementWatchDelayMs);
    }
  };

  const repeatUnhealthy = (): void => {
    repeatTimer = undefined;
    if (stopped) return;
    for (const [vmId, health] of lastHealth) {
      if (health.vm !== "running" && health.vm !== "unknown") publish("host.vm-report", vmId, health.vm);
      if (health.guest === "hung") publish("host.guest-report", vmId, health.guest);
    }
    repeatTimer = ports.clock.setTimeout(repeatUnhealthy, options.unhealthyReportRepeatMs ?? defaultUnhealthyReportRepeatMs);
  };

  const announce = (): void => {
    capabilitiesTimer = undefined;
    if (stopped) return;
    ports.network.publish(
      subject,
      hostReportMessages.encode("host.capabilities", hostId, `caps-${++correlation}`, { hostId, supportsLiveMigration: options.supportsLiveMigration ?? hypervisor.supportsLiveMigration }),
    );
    capabilitiesTimer = ports.clock.setTimeout(announce, options.capabilitiesIntervalMs ?? defaultCapabilitiesIntervalMs);
  };

  /** Whether this host may run VMs now; true where no lease is kept (no host agent in this setup). */
  const mayRunVms = (): boolean => {
    const lease = options.lease();
    return lease === undefined || lease.phase === "legacy" || (lease.phase === "leased" && ports.clock.now() < lease.leaseUntilMs);
  };
  // Only a migration can start a VM here behind the executor's back (every start it makes checks the lease), so
  // hosts that cannot receive one do not listen.
  const startedWithoutLease = hypervisor.supportsLiveMigration
    ? hypervisor.onEvent((event) => {
        if (stopped || event.type !== "started") return;
        if (!mayRunVms()) {
          ports.log.write("warn", "host.vm-started-while-isolated", { vm: event.vmId, note: "powered off: a host without a lease runs no VMs" });
          hypervisor.stop(event.vmId, true, () => undefined);
          return;
        }
        const view = views.view();
        // Arrived for an earlier incarnation of this host (the view names another one): not this boot's to run.
        const viewIncarnation = view.hosts.get(hostId)?.incarnation;
        const lease = options.lease();
        if (arrivingByMigration(view, event.vmId) && lease !== undefined && viewIncarnation !== undefined && !options.incarnation.matches(viewIncarnation, lease.incarnation)) {
          ports.log.write("warn", "host.vm-started-unplaced", { vm: event.vmId, note: `powered off: migrated to incarnation ${viewIncarnation} of this host, which runs ${lease.incarnation}` });
          hypervisor.stop(event.vmId, true, () => undefined);
          return;
        }
        // A migration that arrived after the view undid it (placed the VM back on its source, or elsewhere since).
        const vm = view.vms.get(event.vmId);
        // (Only a VM the view places on another host: one it has not placed yet may be an import starting where it runs.)
        if (vm?.placement == null || vm.placement.hostId === hostId || vm.desiredState !== "running") return;
        ports.log.write("warn", "host.vm-started-unplaced", { vm: event.vmId, placedOn: vm.placement.hostId, note: "powered off: the view places it on another host" });
        hypervisor.stop(event.vmId, true, () => undefined);
      })
    : { unsubscribe: () => undefined };

  const applied: Subscription = views.onApplied((_applied, view) => follow(view));
  follow(views.view());
  repeatTimer = ports.clock.setTimeout(repeatUnhealthy, options.unhealthyReportRepeatMs ?? defaultUnhealthyReportRepeatMs);
  capabilitiesTimer = ports.clock.setTimeout(announce, 0);

  return {
    started(vmId) {
      if (placedHere(views.view(), vmId)) watch(vmId);
    },
    get watchedVmIds() {
      return [...lastHealth.keys()];
    },
    stop() {
      stopped = true;
      applied.unsubscribe();
      startedWithoutLease.unsubscribe();
      if (repeatTimer !== undefined) ports.clock.clearTimeout(repeatTimer);
      if (capabilitiesTimer !== undefined) ports.clock.clearTimeout(capabilitiesTimer);
      watcher.stop();
      lastHealth.clear();
    },
  };
}

/**
 * Simulated hypervisors (sim/simHypervisor.ts) as the hosts' Hypervisor port,
 * the VMs of cluster.json started on their hosts, and a VM actor per VM
 * (actors/vm startVmWatch: hypervisor-side state by polling and events,
 * crash and hang by CPU-time progress). Each host polls all its VMs in one
 * hypervisor call per interval (actors/vm/vmHostPoller.ts) and wakes a VM
 * actor only when what it sees could change that VM's health.
 *
 * VMs of cluster.json start when their host first boots, unless a component
 * defers it (detection: a host isolates itself at boot, which would stop them,
 * so they start once it holds its first lease). A restarted host finds its VMs
 * defined but shut off and watches none of them: what runs there next is the
 * manager's decision (`watchVm`).
 *
 * Hosts with `"liveMigration": true` in cluster.json get a hypervisor that
 * migrates live (both ends of a migration need it).
 *
 * Commands: `vm-crash <vm>`, `vm-hang <vm>` (on the host where the VM runs).
 * Invariant `vm.single-placement`: no VM is active (running or paused) on two
 * hosts at once, from the simulated hypervisors' own record.
 */
import { createRejectionCounter } from "../../actors/codec/rejectionCounter.ts";
import type { GuestHealthReport, GuestWatchdogConfig } from "../../machines/guest/guestWatchdog.ts";
import { maxVmVcpus } from "../../actors/ports/hypervisor.ts";
import type { NodePorts } from "../../actors/ports/nodePorts.ts";
import { createVmEventRouter, type VmEventRouter } from "../../actors/vm/vmEventRouter.ts";
import { createVmHostPoller, type VmHostPoller } from "../../actors/vm/vmHostPoller.ts";
import { startVmWatch, type VmWatch } from "../../actors/vm/vmWatch.ts";
import type { VmHealthReport } from "../../machines/vm/vmMonitor.ts";
import { defaultVmMonitorConfig, type VmDesiredState, type VmMonitorConfig } from "../../machines/vm/vmHealth.ts";
import { SimHypervisors } from "../simHypervisor.ts";
import { scenarioCapabilities } from "./capabilities.ts";
import type { ScenarioComponent } from "./clusterAssembly.ts";
import type { VmSpec } from "./scenarioTypes.ts";
import type { TimelineLane, TimelineSegment } from "./timelineTypes.ts";

export const hypervisorComponentName = "hypervisor";
export const vmHealthEvent = "vm.health";
export const singlePlacementCheckMs = 50;
export const maxReportListeners = 100;

export interface HypervisorComponentSettings {
  readonly vm: VmMonitorConfig;
}

export interface HypervisorComponentApi {
  readonly hypervisors: SimHypervisors;
  /** The host where the VM is active now (running or paused), from the hypervisors' own state. */
  hostOf(vmId: string): string | undefined;
  /** The VM actor watching a VM on a host's current incarnation. */
  vmWatch(hostId: string, vmId: string): VmWatch | undefined;
  /** Starts (or replaces) the VM actor for a VM on an up host; undefined when the host is down. */
  watchVm(hostId: string, vmId: string, desired: VmDesiredState): VmWatch | undefined;
  /** Every health report of every VM actor, with the host it came from. */
  onVmReport(listener: (hostId: string, report: VmHealthReport) => void): { unsubscribe(): void };
  onGuestReport(listener: (hostId: string, report: GuestHealthReport) => void): { unsubscribe(): void };
  /** Call before nodes boot: VMs of cluster.json start on a host only when `placeHostVms` is called for it. */
  deferPlacement(): void;
  /** Defines and starts the cluster.json VMs of this host (once), each with a VM actor. */
  placeHostVms(hostId: string): void;
  /** Call before nodes boot: VM actors also run a guest watchdog (the guest component). */
  watchGuests(config: Partial<GuestWatchdogConfig>): void;
}

interface HostState {
  readonly ports: NodePorts;
  readonly router: VmEventRouter;
  readonly poller: VmHostPoller;
  readonly watches: Map<string, VmWatch>;
}

function addListener<T>(listeners: Set<T>, listener: T): { unsubscribe(): void } {
  if (listeners.size >= maxReportListeners) throw new RangeError(`more than ${maxReportListeners} report listeners`);
  listeners.add(listener);
  return { unsubscribe: () => listeners.delete(listener) };
}

export const hypervisorComponent: ScenarioComponent<HypervisorComponentSettings> = {
  name: hypervisorComponentName,
  provides: [scenarioCapabilities.hypervisor],

  readSettings(reader) {
    const vmPollIntervalMs = reader.duration("poll", { min: 1, max: 600_000, fallback: defaultVmMonitorConfig.vmPollIntervalMs });
    const vmHangAfterMs = reader.duration("hangAfter", { min: 1, max: 3_600_000, fallback: defaultVmMonitorConfig.vmHangAfterMs });
    reader.finish();
    return { vm: { ...defaultVmMonitorConfig, vmPollIntervalMs, vmHangAfterMs } };
  },

  checkCluster(cluster) {
    const hostIds = new Set(cluster.hosts.map((host) => host.hostId));
    return cluster.vms.filter((vm) => vm.hostId !== undefined && !hostIds.has(vm.hostId)).map((vm) => `vm ${vm.vmId} is on ${vm.hostId}, which is not a host`);
  },

  start({ world, cluster, log }, settings) {
    const hostIds = new Set(cluster.hosts.map((host) => host.hostId));
    const hypervisors = new SimHypervisors();
    for (const host of cluster.hosts) if (host.liveMigration) hypervisors.setLiveMigration(host.hostId, true);
    const hosts = new Map<string, HostState>();
    const vmListeners = new Set<(hostId: string, report: VmHealthReport) => void>();
    const guestListeners = new Set<(hostId: string, report: GuestHealthReport) => void>();
    const placedHosts = new Set<string>();
    let deferred = false;
    let guestConfig: Partial<GuestWatchdogConfig> | undefined;
    const vmsByHost = new Map<string, VmSpec[]>();
    for (const vm of cluster.vms) {
      if (vm.hostId === undefined) continue;
      const list = vmsByHost.get(vm.hostId) ?? [];
      list.push(vm);
      vmsByHost.set(vm.hostId, list);
    }

    const hostOf = (vmId: string) => hypervisors.registry.firstActiveHost(vmId);
    // A VM that migrated away is gone from that host (undefined there): its VM actor there has nothing left to watch,
    // unless that host still wants the VM running. Then the view has placed it back there (a migration the manager gave
    // up on, which the hypervisors finished later): the watch stays and reports the VM missing, as a runtime host's
    // supervisor does, so the manager starts it again (whole-system fuzz seed 550321: with the watch gone, nothing ever
    // told the manager, and the VM stayed off).
    hypervisors.registry.onRecord((record) => {
      if (record.cause !== "migrate-out") return;
      const host = hosts.get(record.hostId);
      const watch = host?.watches.get(record.vmId);
      if (watch === undefined || watch.vm.host.getSnapshot()?.context.desired === "running") return;
      watch.dispose();
      host!.watches.delete(record.vmId);
    });
    const liveHost = (hostId: string) => (world.nodeState(hostId) === "crashed" ? undefined : hosts.get(hostId));

    const watchVm = (hostId: string, vmId: string, desired: VmDesiredState): VmWatch | undefined => {
      const host = liveHost(hostId);
      if (host === undefined) return undefined;
      host.watches.get(vmId)?.dispose();
      const watch = startVmWatch(host.ports, {
        vmId,
        desired,
        router: host.router,
        poller: host.poller,
        rejections: createRejectionCounter(host.ports),
        vmConfig: settings.vm,
        watchGuest: guestConfig !== undefined,
        ...(guestConfig === undefined ? {} : { guestConfig }),
        onVmReport: (report) => {
          for (const listener of vmListeners) listener(hostId, report);
        },
        onGuestReport: (report) => {
          for (const listener of guestListeners) listener(hostId, report);
        },
      });
      host.watches.set(vmId, watch);
      return watch;
    };

    const placeHostVms = (hostId: string): void => {
      if (placedHosts.has(hostId) || liveHost(hostId) === undefined) return;
      placedHosts.add(hostId);
      for (const vm of vmsByHost.get(hostId) ?? []) {
        hypervisors.placeVm(hostId, { vmId: vm.vmId, virtualization: vm.virt, vcpus: Math.min(vm.resources.cpu, maxVmVcpus), memoryMiB: vm.resources.memoryMiB });
        watchVm(hostId, vm.vmId, "running");
      }
    };

    const api: HypervisorComponentApi = {
      hypervisors,
      hostOf,
      vmWatch: (hostId, vmId) => liveHost(hostId)?.watches.get(vmId),
      watchVm,
      onVmReport: (listener) => addListener(vmListeners, listener),
      onGuestReport: (listener) => addListener(guestListeners, listener),
      deferPlacement: () => {
        deferred = true;
      },
      placeHostVms,
      watchGuests: (config) => {
        guestConfig = config;
      },
    };

    const activeHostsOf = (vmId: string, verb: string): string => {
      const hostId = hostOf(vmId);
      if (hostId === undefined) throw new RangeError(`vm ${vmId} is not running on any host, cannot ${verb} it`);
      return hostId;
    };
    let overlapsSeen = 0;

    return {
      api,
      extraPorts: (context) => (hostIds.has(context.nodeId) ? { hypervisor: hypervisors.hypervisorFor(context)! } : {}),
      bootHost(ports) {
        const hostId = ports.nodeId;
        if (ports.hypervisor === undefined) throw new Error(`host ${hostId} has no hypervisor port`);
        const router = createVmEventRouter(ports.hypervisor);
        const poller = createVmHostPoller({
          clock: ports.clock,
          hypervisor: ports.hypervisor,
          metrics: ports.metrics,
          pollIntervalMs: settings.vm.vmPollIntervalMs,
          unreachableAfterPolls: settings.vm.vmUnreachableAfterPolls,
        });
        const state: HostState = { ports, router, poller, watches: new Map() };
        hosts.set(hostId, state);
        if (!deferred && world.incarnation(hostId) === 1) placeHostVms(hostId);
        return {
          stop: () => {
            for (const watch of state.watches.values()) watch.dispose();
            state.watches.clear();
            poller.dispose();
            router.dispose();
          },
        };
      },
      commands: {
        "vm-crash": (command) => hypervisors.crashVm(activeHostsOf(command.vmId, "crash"), command.vmId),
        "vm-hang": (command) => hypervisors.hangVm(activeHostsOf(command.vmId, "hang"), command.vmId),
      },
      invariants: [
        {
          name: "vm.single-placement",
          everyMs: singlePlacementCheckMs,
          check(_nowMs, violation) {
            const reported = new Set<string>();
            for (const vmId of hypervisors.registry.multiplyActiveVmIds()) {
              const active = hypervisors.registry.activeHosts(vmId);
              if (active.length <= 1) continue;
              reported.add(vmId);
              violation(vmId, `active on ${active.join(" and ")}`);
            }
            // overlaps that began (and maybe ended) since the last check
            const overlaps = hypervisors.registry.overlaps();
            for (; overlapsSeen < overlaps.length; overlapsSeen++) {
              const overlap = overlaps[overlapsSeen]!;
              if (reported.has(overlap.vmId)) continue;
              reported.add(overlap.vmId);
              violation(overlap.vmId, `active on ${overlap.hostIds.join(" and ")} at ${overlap.atMs.toFixed(3)}ms`);
            }
          },
        },
      ],
      // a VM's first report (running, as placed) is implied by vm-place
      keepLogLine: (line) => line.event === vmHealthEvent && !line.text.includes(" previous=unknown "),
      finish() {
        const active = hypervisors.registry.activeVmIds();
        const running = active.filter((vmId) => {
          const hostId = hostOf(vmId);
          return hostId !== undefined && hypervisors.vm(hostId, vmId)?.state === "running";
        }).length;
        log.write("info", "hypervisor.summary", { vms: cluster.vms.length, active: active.length, running, overlaps: hypervisors.registry.overlaps().length });
      },
      timelineLanes() {
        const lanes: TimelineLane[] = [];
        const segments = new Map<string, TimelineSegment[]>();
        const open = new Map<string, { fromMs: number; hostId: string }>();
        for (const record of hypervisors.registry.history()) {
          const list = segments.get(record.vmId) ?? [];
          segments.set(record.vmId, list);
          if (record.active) {
            if (!open.has(record.vmId)) open.set(record.vmId, { fromMs: record.atMs, hostId: record.hostId });
            continue;
          }
          const started = open.get(record.vmId);
          if (started === undefined || started.hostId !== record.hostId) continue;
          open.delete(record.vmId);
          list.push({ fromMs: started.fromMs, toMs: record.atMs, state: "running", note: `on ${record.hostId}` });
        }
        for (const [vmId, started] of open) segments.get(vmId)!.push({ fromMs: started.fromMs, toMs: world.now(), state: "running", note: `on ${started.hostId}` });
        for (const vm of cluster.vms) lanes.push({ id: vm.vmId, kind: "vm", segments: segments.get(vm.vmId) ?? [] });
        return lanes;
      },
    };
  },
};

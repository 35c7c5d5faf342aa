import { createRejectionCounter } from "../../actors/codec/rejectionCounter.ts";
import { startGuestAgent } from "../../actors/guest/guestAgentActor.ts";
import type { VmDefinition } from "../../actors/ports/hypervisor.ts";
import { createVmEventRouter } from "../../actors/vm/vmEventRouter.ts";
import { createVmHostPoller, type VmHostPoller } from "../../actors/vm/vmHostPoller.ts";
import { defaultVmMonitorConfig } from "../../machines/vm/vmHealth.ts";
import { startVmWatch, type VmWatch } from "../../actors/vm/vmWatch.ts";
import type { GuestCheck } from "../../machines/guest/guestChecks.ts";
import { SimHypervisors } from "../../sim/simHypervisor.ts";
import { SimWorld } from "../../sim/world.ts";

export interface Report {
  readonly atMs: number;
  readonly vmId: string;
  readonly level: "vm" | "guest";
  readonly health: string;
  readonly detail: string;
}

export const fullVm: VmDefinition = { vmId: "full1", virtualization: "full", vcpus: 2, memoryMiB: 2048 };
export const paraVm: VmDefinition = { vmId: "para1", virtualization: "para", vcpus: 2, memoryMiB: 2048 };

/**
 * One host `h1` with the sim hypervisor, VMs placed and running, a VM watch
 * (VM monitor + guest watchdog) per VM on the host, and a guest agent in each
 * VM's guest node. Every health report lands in `reports`.
 */
export function vmSimWorld(options: {
  readonly seed: number;
  readonly vms: readonly VmDefinition[];
  readonly checks?: readonly GuestCheck[];
  /** False: the guests run no agent (it was never installed). */
  readonly runAgents?: boolean;
  /** The host polls all its VMs in one list call per interval (vmHostPoller.ts) instead of a timer per VM. */
  readonly polledByHost?: boolean;
}) {
  const hypervisors = new SimHypervisors();
  const world = new SimWorld({
    seed: options.seed,
    clusterId: "vmtest",
    extraPorts: (context) => ({ hypervisor: hypervisors.hypervisorFor(context) }),
  });
  const reports: Report[] = [];
  const watches = new Map<string, VmWatch>();
  const pollers: VmHostPoller[] = [];
  world.addNode("h1", (ports) => {
    const rejections = createRejectionCounter(ports);
    const router = createVmEventRouter(ports.hypervisor!);
    const poller =
      options.polledByHost === true
        ? createVmHostPoller({
            clock: ports.clock,
            hypervisor: ports.hypervisor!,
            metrics: ports.metrics,
            pollIntervalMs: defaultVmMonitorConfig.vmPollIntervalMs,
            unreachableAfterPolls: defaultVmMonitorConfig.vmUnreachableAfterPolls,
          })
        : undefined;
    if (poller !== undefined) pollers.push(poller);
    for (const vm of options.vms) {
      watches.set(
        vm.vmId,
        startVmWatch(ports, {
          vmId: vm.vmId,
          desired: "running",
          router,
          ...(poller === undefined ? {} : { poller }),
          rejections,
          onVmReport: (report) => reports.push({ atMs: world.now(), vmId: report.vmId, level: "vm", health: report.health, detail: report.detail }),
          onGuestReport: (report) =>
            reports.push({ atMs: world.now(), vmId: report.vmId, level: "guest", health: report.health, detail: report.detail }),
        }),
      );
    }
    return {
      stop: () => {
        for (const watch of watches.values()) watch.dispose();
        poller?.dispose();
        router.dispose();
      },
    };
  });
  hypervisors.runGuests((vmId) => (ports) => {
    if (options.runAgents === false) return { stop: () => {} };
    const checks = options.checks ?? [];
    const agent = startGuestAgent(ports, { vmId, checks, checkRunner: hypervisors.guestCheckRunner(vmId, ports.clock) });
    return { stop: () => agent.dispose() };
  });
  for (const vm of options.vms) hypervisors.placeVm("h1", vm);

  /** Reports of one VM and level after `sinceMs`, as "health" strings. */
  const healthsSince = (vmId: string, level: "vm" | "guest", sinceMs: number): string[] =>
    reports.filter((report) => report.vmId === vmId && report.level === level && report.atMs >= sinceMs).map((report) => report.health);
  /** When the first report of that health came after `sinceMs`. */
  const firstReportAt = (vmId: string, level: "vm" | "guest", health: string, sinceMs: number): number | undefined =>
    reports.find((report) => report.vmId === vmId && report.level === level && report.health === health && report.atMs >= sinceMs)?.atMs;
  return { world, hypervisors, reports, watches, pollers, healthsSince, firstReportAt };
}

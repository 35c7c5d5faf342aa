/**
 * Admission control: keep room to restart every VM after F host failures
 * (`hostFailuresToTolerate`).
 *
 * The rule (a percentage-of-cluster policy with the percentage derived from
 * F, as vSphere HA computes it since 6.5): the reserve is, for CPU and for
 * memory separately, the capacity of the F largest up hosts. The VMs meant
 * to run — every VM with desired state `running`, plus the one being
 * admitted — must fit in the capacity of the up hosts minus that reserve.
 * Taking the largest hosts per resource is the worst case for any F failures
 * at once, so the rule is conservative: it ignores fragmentation (a VM
 * larger than any host's free room can still be pending), but never admits
 * a VM whose demand the survivors of F failures could not hold in total.
 *
 * Hosts not `up` (joining, suspect, failed, fenced, maintenance) contribute
 * no capacity: a cluster already missing a host has less room, as it should.
 */
import type { ViewCommand } from "../view/viewCommands.ts";
import type { Resources, View } from "../view/viewTypes.ts";
import { formatMemory, formatResources } from "./placement.ts";

export type AdmissionDecision =
  | { readonly admitted: true }
  | { readonly admitted: false; readonly error: string; readonly shortfall: Resources };

export interface ClusterRoom {
  readonly upHosts: number;
  readonly capacity: Resources;
  readonly reserve: Resources;
  /** Demand of every VM meant to run, not counting `exceptVmId`. */
  readonly demand: Resources;
}

function largestSum(values: number[], count: number): number {
  return values
    .sort((a, b) => b - a)
    .slice(0, count)
    .reduce((sum, value) => sum + value, 0);
}

export function clusterRoom(view: View, hostFailuresToTolerate: number, exceptVmId?: string): ClusterRoom {
  const cpus: number[] = [];
  const memories: number[] = [];
  for (const host of view.hosts.values()) {
    if (host.state !== "up") continue;
    cpus.push(host.capacity.cpu);
    memories.push(host.capacity.memoryMiB);
  }
  const capacity = { cpu: cpus.reduce((a, b) => a + b, 0), memoryMiB: memories.reduce((a, b) => a + b, 0) };
  const reserve = { cpu: largestSum(cpus, hostFailuresToTolerate), memoryMiB: largestSum(memories, hostFailuresToTolerate) };
  const demand = { cpu: 0, memoryMiB: 0 };
  for (const vm of view.vms.values()) {
    if (vm.desiredState !== "running" || vm.vmId === exceptVmId) continue;
    demand.cpu += vm.resources.cpu;
    demand.memoryMiB += vm.resources.memoryMiB;
  }
  return { upHosts: cpus.length, capacity, reserve, demand };
}

/** Whether a VM needing `resources` may be added to (or powered on in) the cluster with room left for F host failures. */
export function admitVm(view: View, vmId: string, resources: Resources, hostFailuresToTolerate: number): AdmissionDecision {
  const room = clusterRoom(view, hostFailuresToTolerate, vmId);
  const failures = `${hostFailuresToTolerate} host failure${hostFailuresToTolerate === 1 ? "" : "s"}`;
  const usable = { cpu: room.capacity.cpu - room.reserve.cpu, memoryMiB: room.capacity.memoryMiB - room.reserve.memoryMiB };
  const shortfall = {
    cpu: Math.max(0, room.demand.cpu + resources.cpu - usable.cpu),
    memoryMiB: Math.max(0, room.demand.memoryMiB + resources.memoryMiB - usable.memoryMiB),
  };
  if (room.upHosts <= hostFailuresToTolerate) {
    return {
      admitted: false,
      error: `vm ${vmId} refused: ${room.upHosts} up host${room.upHosts === 1 ? "" : "s"} cannot keep room for ${failures}`,
      shortfall,
    };
  }
  if (shortfall.cpu === 0 && shortfall.memoryMiB === 0) return { admitted: true };
  const missing = [shortfall.cpu > 0 ? `${shortfall.cpu} vCPU` : null, shortfall.memoryMiB > 0 ? formatMemory(shortfall.memoryMiB) : null].filter((part) => part !== null).join(" and ");
  return {
    admitted: false,
    error:
      `vm ${vmId} refused: needs ${missing} more to keep room for ${failures} ` +
      `(${room.upHosts} up hosts have ${formatResources(room.capacity)}, ${formatResources(room.reserve)} held back for the largest ${hostFailuresToTolerate}, ` +
      `${formatResources(room.demand)} meant to run, this vm ${formatResources(resources)})`,
    shortfall,
  };
}

/**
 * Admission for a command about to be proposed: `vm.add` of a running VM and `vm.set-desired` to
 * running are checked; every other command is admitted (placement and host commands move VMs, they do
 * not add demand).
 */
export function admitCommand(view: View, command: ViewCommand, hostFailuresToTolerate: number): AdmissionDecision {
  if (command.type === "vm.add" && command.desiredState === "running") return admitVm(view, command.vmId, command.resources, hostFailuresToTolerate);
  if (command.type === "vm.set-desired" && command.desiredState === "running") {
    const vm = view.vms.get(command.vmId);
    if (vm && vm.desiredState !== "running") return admitVm(view, vm.vmId, vm.resources, hostFailuresToTolerate);
  }
  return { admitted: true };
}

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
 *
 * The view's transition function applies it (applyViewCommands.ts, with the
 * view's own F), so it holds whoever proposes; the leader's manager applies
 * it first to answer an operator before proposing (admissionGate.ts).
 */
import type { ViewCommand } from "./viewCommands.ts";
import type { HostRecord, Resources, View, VmRecord } from "./viewTypes.ts";
import { formatMemory, formatResources } from "./resourceText.ts";
import { addedRecordBytes, recordBytesRefusal, viewRecordBytes } from "./viewSize.ts";

export type AdmissionDecision =
  | { readonly admitted: true }
  | { readonly admitted: false; readonly error: string; readonly shortfall: Resources };

export interface ClusterRoom {
  readonly upHosts: number;
  readonly capacity: Resources;
  readonly reserve: Resources;
  /** Demand of every VM meant to run (not counting the VM being admitted). */
  readonly demand: Resources;
}

function largestSum(values: number[], count: number): number {
  return values
    .sort((a, b) => b - a)
    .slice(0, count)
    .reduce((sum, value) => sum + value, 0);
}

/** The room of a cluster with these hosts whose VMs meant to run need `demand`. */
export function roomOf(hosts: Iterable<HostRecord>, demand: Resources, hostFailuresToTolerate: number): ClusterRoom {
  const cpus: number[] = [];
  const memories: number[] = [];
  for (const host of hosts) {
    if (host.state !== "up") continue;
    cpus.push(host.capacity.cpu);
    memories.push(host.capacity.memoryMiB);
  }
  const capacity = { cpu: cpus.reduce((a, b) => a + b, 0), memoryMiB: memories.reduce((a, b) => a + b, 0) };
  const reserve = { cpu: largestSum(cpus, hostFailuresToTolerate), memoryMiB: largestSum(memories, hostFailuresToTolerate) };
  return { upHosts: cpus.length, capacity, reserve, demand };
}

export function clusterRoom(view: View, hostFailuresToTolerate: number, exceptVmId?: string): ClusterRoom {
  const demand = { cpu: 0, memoryMiB: 0 };
  for (const vm of view.vms.values()) {
    if (vm.desiredState !== "running" || vm.vmId === exceptVmId) continue;
    demand.cpu += vm.resources.cpu;
    demand.memoryMiB += vm.resources.memoryMiB;
  }
  return roomOf(view.hosts.values(), demand, hostFailuresToTolerate);
}

/** Whether a VM needing `resources` fits `room` with room left for F host failures; a refusal names the shortfall. */
export function admitToRoom(room: ClusterRoom, vmId: string, resources: Resources, hostFailuresToTolerate: number): AdmissionDecision {
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

/** Whether a VM needing `resources` may be added to (or powered on in) the cluster with room left for F host failures. */
export function admitVm(view: View, vmId: string, resources: Resources, hostFailuresToTolerate: number): AdmissionDecision {
  return admitToRoom(clusterRoom(view, hostFailuresToTolerate, vmId), vmId, resources, hostFailuresToTolerate);
}

/** What a command adds to the demand of VMs meant to run: a `vm.add` of a running VM, or `vm.set-desired` running of a stopped one; null for every other command. */
export function addedDemand(view: { readonly vms: { get(vmId: string): VmRecord | undefined } }, command: ViewCommand): { readonly vmId: string; readonly resources: Resources } | null {
  if (command.type === "vm.add" && command.desiredState === "running") return { vmId: command.vmId, resources: command.resources };
  if (command.type === "vm.set-desired" && command.desiredState === "running") {
    const vm = view.vms.get(command.vmId);
    if (vm && vm.desiredState !== "running") return { vmId: vm.vmId, resources: vm.resources };
  }
  return null;
}

/**
 * Admission for a command: `vm.add` of a running VM and `vm.set-desired` to running are checked for room,
 * and `vm.add` and `host.register` for the view's size in bytes (viewSize.ts); every other command is
 * admitted (placement and host commands move VMs, they do not add demand).
 */
export function admitCommand(view: View, command: ViewCommand, hostFailuresToTolerate: number): AdmissionDecision {
  const growth = addedRecordBytes(command);
  const tooLarge = growth === 0 ? null : recordBytesRefusal(command, viewRecordBytes(view) + growth, growth);
  if (tooLarge !== null) return { admitted: false, error: tooLarge, shortfall: { cpu: 0, memoryMiB: 0 } };
  const added = addedDemand(view, command);
  return added === null ? { admitted: true } : admitVm(view, added.vmId, added.resources, hostFailuresToTolerate);
}

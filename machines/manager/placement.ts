/**
 * Placement: which up host each of a set of VMs should (re)start on. Pure and
 * deterministic: the same view, VMs and reservations give the same plan on
 * every controller.
 *
 * Rules, in the order they are applied:
 * - VMs are placed higher priority first (high, medium, low), then by id.
 * - Only hosts in state `up` are candidates (not joining, suspect, failed, fenced or in maintenance),
 *   minus hosts the caller excludes for a VM (the host it crash-looped on).
 * - CPU and memory: what is placed on the host in the view, plus reservations (placements proposed but
 *   not committed yet), plus what this plan already put there, plus the VM, must fit the capacity.
 * - Anti-affinity, both ways (the VM's list or the other VM's list), against the same three sets.
 * - Affinity, both ways: a VM goes where a partner already is (placed and staying, or placed earlier in
 *   this plan). Partners placed in this plan follow the first of them placed.
 * - Spread: among the hosts left, the one least loaded after placing the VM (the larger of its CPU and
 *   memory fractions), ties to the smaller host id.
 * A VM that fits nowhere is pending, with the reason.
 *
 * The plan's commands are `vm.place` compare-and-sets on the placement epoch the view shows, so a plan
 * made on a view that moved on is refused by the view rather than applied twice.
 */
import { vmsByHost } from "../view/applyViewCommands.ts";
import { formatResources } from "../view/resourceText.ts";
import type { ViewCommand } from "../view/viewCommands.ts";
import type { HostRecord, Resources, View, VmPriority, VmRecord } from "../view/viewTypes.ts";

export interface PlacementReservation {
  readonly vmId: string;
  readonly hostId: string;
  readonly resources: Resources;
}

export interface PlacementRequest {
  readonly view: View;
  /** The VMs to place; unknown ids are pending. Duplicates count once. */
  readonly vmIds: readonly string[];
  readonly reservations?: readonly PlacementReservation[];
  /** Hosts a VM must not be placed on (for example the host it crash-looped on). */
  readonly excludedHostsByVm?: ReadonlyMap<string, ReadonlySet<string>>;
}

export interface PlannedPlacement {
  readonly vmId: string;
  readonly hostId: string;
  readonly expectedPlacementEpoch: number;
  readonly command: Extract<ViewCommand, { type: "vm.place" }>;
}

export interface PendingPlacement {
  readonly vmId: string;
  readonly reason: string;
}

export interface PlacementPlan {
  readonly placements: readonly PlannedPlacement[];
  readonly pending: readonly PendingPlacement[];
}

const priorityRank: Record<VmPriority, number> = { high: 0, medium: 1, low: 2 };

export function comparePlacementOrder(a: VmRecord, b: VmRecord): number {
  const byPriority = priorityRank[a.priority] - priorityRank[b.priority];
  if (byPriority !== 0) return byPriority;
  return compareIds(a.vmId, b.vmId);
}

export function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The id of a placement command: unique per VM, expected placement epoch and view epoch (a retry after a refusal is a new command once the view moved). */
export function placementCommandId(vmId: string, expectedPlacementEpoch: number, viewEpoch: number): string {
  return `place-${vmId}-${expectedPlacementEpoch}-${viewEpoch}`;
}

interface HostLoad {
  readonly host: HostRecord;
  cpu: number;
  memoryMiB: number;
  /** VMs counted on the host: placed there in the view, reserved there, or planned there. */
  readonly vmIds: Set<string>;
}

function load(used: HostLoad, extra: Resources): number {
  const cpuFraction = used.host.capacity.cpu === 0 ? (used.cpu + extra.cpu === 0 ? 0 : Infinity) : (used.cpu + extra.cpu) / used.host.capacity.cpu;
  const memoryFraction =
    used.host.capacity.memoryMiB === 0 ? (used.memoryMiB + extra.memoryMiB === 0 ? 0 : Infinity) : (used.memoryMiB + extra.memoryMiB) / used.host.capacity.memoryMiB;
  return Math.max(cpuFraction, memoryFraction);
}

/** Which VMs name each VM in their rules (the reverse direction of affinity and anti-affinity). */
function reverseRules(view: View): { affinity: Map<string, string[]>; antiAffinity: Map<string, string[]> } {
  const affinity = new Map<string, string[]>();
  const antiAffinity = new Map<string, string[]>();
  for (const vm of view.vms.values()) {
    for (const target of vm.rules.affinity) (affinity.get(target) ?? affinity.set(target, []).get(target)!).push(vm.vmId);
    for (const target of vm.rules.antiAffinity) (antiAffinity.get(target) ?? antiAffinity.set(target, []).get(target)!).push(vm.vmId);
  }
  return { affinity, antiAffinity };
}

export function planPlacements(request: PlacementRequest): PlacementPlan {
  const { view } = request;
  const toPlace = new Set(request.vmIds);
  const pending: PendingPlacement[] = [];
  const records: VmRecord[] = [];
  for (const vmId of toPlace) {
    const vm = view.vms.get(vmId);
    if (vm) records.push(vm);
    else pending.push({ vmId, reason: `unknown vm ${vmId}` });
  }
  records.sort(comparePlacementOrder);

  const loads = new Map<string, HostLoad>();
  const upHostIds = [...view.hosts.values()].filter((host) => host.state === "up").map((host) => host.hostId).sort(compareIds);
  const placedByHost = vmsByHost(view);
  for (const hostId of upHostIds) {
    const entry: HostLoad = { host: view.hosts.get(hostId)!, cpu: 0, memoryMiB: 0, vmIds: new Set() };
    for (const vmId of placedByHost.get(hostId) ?? []) {
      const vm = view.vms.get(vmId)!;
      entry.cpu += vm.resources.cpu;
      entry.memoryMiB += vm.resources.memoryMiB;
      entry.vmIds.add(vmId);
    }
    loads.set(hostId, entry);
  }
  for (const reservation of request.reservations ?? []) {
    const entry = loads.get(reservation.hostId);
    if (!entry || entry.vmIds.has(reservation.vmId)) continue;
    entry.cpu += reservation.resources.cpu;
    entry.memoryMiB += reservation.resources.memoryMiB;
    entry.vmIds.add(reservation.vmId);
  }

  const reverse = reverseRules(view);
  const plannedHost = new Map<string, string>();
  const placements: PlannedPlacement[] = [];

  for (const vm of records) {
    const partners = [...vm.rules.affinity, ...(reverse.affinity.get(vm.vmId) ?? [])];
    const opponents = new Set([...vm.rules.antiAffinity, ...(reverse.antiAffinity.get(vm.vmId) ?? [])]);
    let requiredHost: { hostId: string; partnerId: string } | null = null;
    let conflict: string | null = null;
    for (const partnerId of partners) {
      const partner = view.vms.get(partnerId);
      const hostId = plannedHost.get(partnerId) ?? (partner?.placement && !toPlace.has(partnerId) ? partner.placement.hostId : undefined);
      if (hostId === undefined) continue;
      if (requiredHost && requiredHost.hostId !== hostId) {
        conflict = `affinity: partners ${requiredHost.partnerId} and ${partnerId} are on different hosts ${requiredHost.hostId} and ${hostId}`;
        break;
      }
      requiredHost ??= { hostId, partnerId };
    }
    if (conflict) {
      pending.push({ vmId: vm.vmId, reason: conflict });
      continue;
    }
    if (requiredHost && !loads.has(requiredHost.hostId)) {
      const state = view.hosts.get(requiredHost.hostId)?.state ?? "unknown";
      pending.push({ vmId: vm.vmId, reason: `affinity: must run with vm ${requiredHost.partnerId} on host ${requiredHost.hostId}, which is ${state}` });
      continue;
    }
    const excluded = request.excludedHostsByVm?.get(vm.vmId);
    const candidates = requiredHost ? [requiredHost.hostId] : upHostIds;
    const refusals = { excluded: 0, capacity: 0, antiAffinity: 0 };
    let best: { entry: HostLoad; score: number } | null = null;
    for (const hostId of candidates) {
      if (excluded?.has(hostId)) {
        refusals.excluded++;
        continue;
      }
      const entry = loads.get(hostId)!;
      // The VM may already be counted on its current host (re-placed onto the same host after a rejoin).
      const self = entry.vmIds.has(vm.vmId) ? vm.resources : { cpu: 0, memoryMiB: 0 };
      const extra = { cpu: vm.resources.cpu - self.cpu, memoryMiB: vm.resources.memoryMiB - self.memoryMiB };
      if (entry.cpu + extra.cpu > entry.host.capacity.cpu || entry.memoryMiB + extra.memoryMiB > entry.host.capacity.memoryMiB) {
        refusals.capacity++;
        continue;
      }
      let clash = false;
      for (const other of entry.vmIds) {
        if (other === vm.vmId) continue;
        if (opponents.has(other)) {
          clash = true;
          break;
        }
      }
      if (clash) {
        refusals.antiAffinity++;
        continue;
      }
      const score = load(entry, extra);
      if (!best || score < best.score) best = { entry, score };
    }
    if (!best) {
      pending.push({ vmId: vm.vmId, reason: pendingReason(vm, candidates.length, refusals, requiredHost) });
      continue;
    }
    const entry = best.entry;
    if (!entry.vmIds.has(vm.vmId)) {
      entry.cpu += vm.resources.cpu;
      entry.memoryMiB += vm.resources.memoryMiB;
      entry.vmIds.add(vm.vmId);
    }
    plannedHost.set(vm.vmId, entry.host.hostId);
    const expectedPlacementEpoch = vm.placement?.epoch ?? 0;
    placements.push({
      vmId: vm.vmId,
      hostId: entry.host.hostId,
      expectedPlacementEpoch,
      command: { id: placementCommandId(vm.vmId, expectedPlacementEpoch, view.epoch), type: "vm.place", vmId: vm.vmId, hostId: entry.host.hostId, expectedPlacementEpoch },
    });
  }
  return { placements, pending };
}

function pendingReason(
  vm: VmRecord,
  candidateCount: number,
  refusals: { excluded: number; capacity: number; antiAffinity: number },
  requiredHost: { hostId: string; partnerId: string } | null,
): string {
  if (candidateCount === 0) return "no host is up";
  const where = requiredHost ? `host ${requiredHost.hostId} (affinity with vm ${requiredHost.partnerId})` : `${candidateCount} up host${candidateCount === 1 ? "" : "s"}`;
  const parts: string[] = [];
  if (refusals.capacity > 0) parts.push(`${refusals.capacity} lack ${formatResources(vm.resources)} free`);
  if (refusals.antiAffinity > 0) parts.push(`${refusals.antiAffinity} run an anti-affinity peer`);
  if (refusals.excluded > 0) parts.push(`${refusals.excluded} excluded after failures there`);
  return `no room on ${where}: ${parts.join(", ")}`;
}

/**
 * What `haring up` prints about the view: where every VM is placed, and,
 * as the view moves on, each change of a host's state or a VM's placement —
 * so that killing a host shows its VMs being recovered elsewhere.
 */
import type { View } from "../../machines/view/viewTypes.ts";

/** Lines printed per view change at most; the rest are summed up in one line. */
export const maxChangeLinesPerView = 40;

const byId = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** `h1: vm1 vm2 | h2: vm3 | unplaced: vm4`, hosts in id order, each with its state when it is not up. */
export function describePlacements(view: View): string {
  const placed = new Map<string, string[]>();
  const unplaced: string[] = [];
  for (const vm of view.vms.values()) {
    if (vm.placement === null) unplaced.push(vm.vmId);
    else placed.set(vm.placement.hostId, [...(placed.get(vm.placement.hostId) ?? []), vm.vmId]);
  }
  const hostIds = [...new Set([...[...view.hosts.values()].map((host) => host.hostId), ...placed.keys()])].sort(byId);
  const parts = hostIds.map((hostId) => {
    const state = view.hosts.get(hostId)?.state ?? "unknown";
    const vms = (placed.get(hostId) ?? []).sort(byId);
    return `${hostId}${state === "up" ? "" : ` (${state})`}: ${vms.length === 0 ? "-" : vms.join(" ")}`;
  });
  if (unplaced.length > 0) parts.push(`unplaced: ${unplaced.sort(byId).join(" ")}`);
  return parts.length === 0 ? "(no hosts yet)" : parts.join(" | ");
}

/** One line per host state change and per VM placement or desired-state change from `before` to `after`. */
export function viewChanges(before: View, after: View): string[] {
  const lines: string[] = [];
  for (const host of [...after.hosts.values()].sort((a, b) => byId(a.hostId, b.hostId))) {
    const old = before.hosts.get(host.hostId);
    if (old === undefined) lines.push(`host ${host.hostId} registered (${host.state})`);
    else if (old.state !== host.state || old.incarnation !== host.incarnation) {
      lines.push(`host ${host.hostId} ${old.state} → ${host.state}${old.incarnation !== host.incarnation ? ` (incarnation ${host.incarnation})` : ""}`);
    }
  }
  for (const host of before.hosts.values()) if (!after.hosts.has(host.hostId)) lines.push(`host ${host.hostId} removed`);
  for (const vm of [...after.vms.values()].sort((a, b) => byId(a.vmId, b.vmId))) {
    const old = before.vms.get(vm.vmId);
    const where = vm.placement === null ? "unplaced" : `${vm.placement.hostId} (placement epoch ${vm.placement.epoch})`;
    if (old === undefined) {
      lines.push(`vm ${vm.vmId} added, ${vm.desiredState}, ${where}`);
      continue;
    }
    if (old.placement?.hostId !== vm.placement?.hostId || old.placement?.epoch !== vm.placement?.epoch) lines.push(`vm ${vm.vmId} ${old.placement?.hostId ?? "unplaced"} → ${where}`);
    if (old.desiredState !== vm.desiredState) lines.push(`vm ${vm.vmId} desired ${vm.desiredState}`);
  }
  for (const vm of before.vms.values()) if (!after.vms.has(vm.vmId)) lines.push(`vm ${vm.vmId} removed`);
  if (lines.length <= maxChangeLinesPerView) return lines;
  return [...lines.slice(0, maxChangeLinesPerView), `… and ${lines.length - maxChangeLinesPerView} more changes`];
}

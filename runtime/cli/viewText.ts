/**
 * `haring view`'s output: the hosts (state, incarnation, capacity, VMs placed
 * there) and the VMs (desired state, placement host and epoch, priority,
 * resources) as aligned columns, or as JSON with `--json` (stable field
 * names, sorted by id).
 */
import type { View } from "../../machines/view/viewTypes.ts";
import type { MirroredView } from "./mirroredView.ts";

const byId = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function columns(rows: readonly (readonly string[])[]): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, index) => (widths[index] = Math.max(widths[index] ?? 0, cell.length)));
  return rows.map((row) => `  ${row.map((cell, index) => (index === row.length - 1 ? cell : cell.padEnd(widths[index]!))).join("  ")}`.trimEnd());
}

function placedCounts(view: View): Map<string, number> {
  const counts = new Map<string, number>();
  for (const vm of view.vms.values()) if (vm.placement !== null) counts.set(vm.placement.hostId, (counts.get(vm.placement.hostId) ?? 0) + 1);
  return counts;
}

export function viewAsText(clusterId: string, mirrored: MirroredView): string {
  const { view } = mirrored;
  const leader = view.leader === null ? "none yet" : `${view.leader.controllerId} (round ${view.leader.round})`;
  const tolerated = view.hostFailuresToTolerate === null ? "not set" : String(view.hostFailuresToTolerate);
  const lines = [
    `cluster ${clusterId}: epoch ${view.epoch}, slot ${mirrored.slot} (mirrored by ${mirrored.writer}), leader ${leader}, controllers ${view.controllerIds.join(" ") || "-"}, host failures to tolerate ${tolerated}`,
  ];
  const hosts = [...view.hosts.values()].sort((a, b) => byId(a.hostId, b.hostId));
  const counts = placedCounts(view);
  lines.push(`hosts (${hosts.length}):`);
  if (hosts.length > 0) {
    lines.push(
      ...columns([
        ["HOST", "STATE", "INCARNATION", "CPU", "MEMORY-MIB", "VMS"],
        ...hosts.map((host) => [host.hostId, host.state, String(host.incarnation), String(host.capacity.cpu), String(host.capacity.memoryMiB), String(counts.get(host.hostId) ?? 0)]),
      ]),
    );
  }
  const vms = [...view.vms.values()].sort((a, b) => byId(a.vmId, b.vmId));
  lines.push(`vms (${vms.length}):`);
  if (vms.length > 0) {
    lines.push(
      ...columns([
        ["VM", "DESIRED", "HOST", "EPOCH", "PRIORITY", "CPU", "MEMORY-MIB", "NOTE"],
        ...vms.map((vm) => {
          const notes = [
            vm.placement?.migratingFrom === undefined ? "" : `migrating from ${vm.placement.migratingFrom}`,
            vm.leavingFrom === undefined ? "" : `stop unconfirmed on ${vm.leavingFrom.map((source) => source.hostId).join(",")}`,
          ].filter((note) => note !== "");
          return [vm.vmId, vm.desiredState, vm.placement?.hostId ?? "-", vm.placement === null ? "-" : String(vm.placement.epoch), vm.priority, String(vm.resources.cpu), String(vm.resources.memoryMiB), notes.join("; ")];
        }),
      ]),
    );
  }
  return `${lines.join("\n")}\n`;
}

export function viewAsJson(clusterId: string, mirrored: MirroredView): string {
  const { view } = mirrored;
  return `${JSON.stringify({
    cluster: clusterId,
    slot: mirrored.slot,
    epoch: view.epoch,
    writer: mirrored.writer,
    leader: view.leader,
    hostFailuresToTolerate: view.hostFailuresToTolerate,
    controllerIds: view.controllerIds,
    hosts: [...view.hosts.values()].sort((a, b) => byId(a.hostId, b.hostId)),
    vms: [...view.vms.values()].sort((a, b) => byId(a.vmId, b.vmId)),
  })}\n`;
}

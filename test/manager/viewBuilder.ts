/** Builds committed views for manager tests by applying real view commands. */
import { applyViewCommands } from "../../machines/view/applyViewCommands.ts";
import type { ViewCommand } from "../../machines/view/viewCommands.ts";
import { emptyView, type VmPriority, type View } from "../../machines/view/viewTypes.ts";

let counter = 0;
let slot = 0;
const nextId = (): string => `test-${counter++}`;

export type Op = Omit<ViewCommand, "id"> | ViewCommand;

export function apply(view: View, ...ops: Op[]): View {
  for (const op of ops) {
    const command = ("id" in op ? op : { ...op, id: nextId() }) as ViewCommand;
    const applied = applyViewCommands(view, slot++, [command]);
    const outcome = applied.outcomes[0]!;
    if (outcome.kind !== "committed") throw new Error(`${command.type} not committed: ${JSON.stringify(outcome)}`);
    view = applied.view;
  }
  return view;
}

/** Applies a command and reports whether the view took it. */
export function tryApply(view: View, command: ViewCommand): { view: View; committed: boolean; reason: string } {
  const applied = applyViewCommands(view, slot++, [command]);
  const outcome = applied.outcomes[0]!;
  return { view: applied.view, committed: outcome.kind === "committed", reason: outcome.kind === "rejected" ? outcome.reason : "" };
}

export const hostUp = (hostId: string, cpu = 16, memoryMiB = 65_536): Op[] => [
  { type: "host.register", hostId, capacity: { cpu, memoryMiB } },
  { type: "host.up", hostId, incarnation: 0 },
];

export const addVm = (
  vmId: string,
  options: { cpu?: number; memoryMiB?: number; priority?: VmPriority; affinity?: string[]; antiAffinity?: string[]; desired?: "running" | "stopped" } = {},
): Op => ({
  type: "vm.add",
  vmId,
  resources: { cpu: options.cpu ?? 2, memoryMiB: options.memoryMiB ?? 4_096 },
  priority: options.priority ?? "medium",
  rules: { affinity: options.affinity ?? [], antiAffinity: options.antiAffinity ?? [] },
  desiredState: options.desired ?? "running",
});

export const placeOn = (view: View, vmId: string, hostId: string): Op => ({ type: "vm.place", vmId, hostId, expectedPlacementEpoch: view.vms.get(vmId)?.placement?.epoch ?? 0 });

export function cluster(hosts: Array<[string, number, number]>, ...ops: Op[]): View {
  return apply(emptyView, ...hosts.flatMap(([id, cpu, mem]) => hostUp(id, cpu, mem)), ...ops);
}

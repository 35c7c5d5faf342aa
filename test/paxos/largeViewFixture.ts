/**
 * The VMs of the large-view tests: 6,000 of these make a view whose snapshot
 * exceeds 1 MiB even as msgpack (about 1.16 MB; its canonical JSON about 1.55 MB).
 */
import type { ViewCommand } from "../../machines/view/viewCommands.ts";

export const largeViewVmCount = 6_000;

export function largeViewVm(index: number): ViewCommand {
  return {
    id: `add-${index}`,
    type: "vm.add",
    vmId: `tenant-a-vm-${String(index).padStart(6, "0")}`,
    resources: { cpu: 2, memoryMiB: 4_096 },
    priority: "medium",
    rules: { affinity: [], antiAffinity: [] },
    desiredState: "running",
  };
}

/** Resources as people read them in refusals and pending reasons: `4 vCPU and 8 GiB`. */
import type { Resources } from "./viewTypes.ts";

export function formatResources(resources: Resources): string {
  return `${resources.cpu} vCPU and ${formatMemory(resources.memoryMiB)}`;
}

export function formatMemory(memoryMiB: number): string {
  return memoryMiB % 1024 === 0 ? `${memoryMiB / 1024} GiB` : `${memoryMiB} MiB`;
}

/** Every host, VM and remembered-command record of a view, with the snapshot list it belongs to: for work done on them a few at a time. */
import type { View } from "./viewTypes.ts";

export type ViewRecordList = "hosts" | "vms" | "recentCommands";

export function* viewRecords(view: View): Generator<readonly [ViewRecordList, object]> {
  for (const host of view.hosts.values()) yield ["hosts", host];
  for (const vm of view.vms.values()) yield ["vms", vm];
  for (const chunk of view.recentCommandChunks) for (const remembered of chunk) yield ["recentCommands", remembered];
}

/**
 * Which peers hold copies of a node's critical data (ARCHITECTURE §5, data
 * multicast): the first k of the owner's rendezvous order over the live
 * nodes (machines/heartbeat/rendezvousOrder.ts). Every node computes the same
 * set from the same live list, owners spread evenly over peers, and when a
 * peer leaves only the owners it served get a new one.
 */
import { rendezvousOrder } from "../heartbeat/rendezvousOrder.ts";

export const maxBackupCount = 16;

/** The owner's backup peers among `liveNodeIds` (the owner itself excluded), best first. */
export function chooseBackupPeers(ownerId: string, liveNodeIds: readonly string[], backupCount: number): string[] {
  if (!Number.isSafeInteger(backupCount) || backupCount < 0 || backupCount > maxBackupCount) {
    throw new RangeError(`backup count must be within [0, ${maxBackupCount}], got ${backupCount}`);
  }
  return rendezvousOrder(ownerId, liveNodeIds.filter((nodeId) => nodeId !== ownerId)).slice(0, backupCount);
}

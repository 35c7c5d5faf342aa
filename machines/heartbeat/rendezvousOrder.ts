/**
 * Highest-random-weight (rendezvous) ordering of monitors for one host: every
 * host gets its own stable preference list, so hosts spread evenly over the
 * monitors, and when one monitor goes away only its hosts move.
 */
function weight(hostId: string, monitorId: string): number {
  // FNV-1a over "host\0monitor", then a murmur3-style finalizer for avalanche.
  let hash = 0x811c9dc5;
  const key = `${hostId}\u0000${monitorId}`;
  for (let index = 0; index < key.length; index++) {
    hash ^= key.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193);
  }
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  hash ^= hash >>> 16;
  return hash >>> 0;
}

/** The monitors in this host's order of preference; ties (practically impossible) broken by id. */
export function rendezvousOrder(hostId: string, monitorIds: readonly string[]): string[] {
  return [...new Set(monitorIds)]
    .map((monitorId) => ({ monitorId, weight: weight(hostId, monitorId) }))
    .sort((a, b) => b.weight - a.weight || (a.monitorId < b.monitorId ? -1 : a.monitorId > b.monitorId ? 1 : 0))
    .map((entry) => entry.monitorId);
}

/**
 * The copies one node holds of other nodes' critical data: per owner and key
 * the newest version offered, never an older one (a stale copy is refused, so
 * a late or replayed store cannot roll a copy back). Pure state; the actor
 * persists what `offer` accepts and answers only after it is durable.
 *
 * Bounded by entry count and value bytes; the log is compacted to one record
 * per entry once it holds `compactAfterRecords` records.
 */
export interface DataCopy {
  readonly ownerId: string;
  readonly key: string;
  /** The KV revision the owner's write got: newer writes have higher versions. */
  readonly version: number;
  readonly value: Uint8Array;
}

export interface BackupStoreLimits {
  readonly maxEntries: number;
  readonly maxTotalValueBytes: number;
  readonly compactAfterRecords: number;
}

export type OfferVerdict =
  /** `fresh`: this version was not held before (persist it); otherwise it was, and nothing changed. */
  | { readonly stored: true; readonly fresh: boolean }
  | { readonly stored: false; readonly reason: "stale"; readonly heldVersion: number }
  | { readonly stored: false; readonly reason: "full"; readonly detail: string };

export interface CopyPage {
  readonly copies: readonly DataCopy[];
  /** More copies of this owner after the last one returned. */
  readonly more: boolean;
}

function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export class BackupStore {
  private readonly owners = new Map<string, Map<string, DataCopy>>();
  private entries = 0;
  private valueBytes = 0;
  private logRecords = 0;

  constructor(private readonly limits: BackupStoreLimits) {
    if (!Number.isSafeInteger(limits.maxEntries) || limits.maxEntries < 1) throw new RangeError(`maxEntries must be ≥ 1, got ${limits.maxEntries}`);
    if (limits.compactAfterRecords <= limits.maxEntries) throw new RangeError("compactAfterRecords must exceed maxEntries");
  }

  get size(): number {
    return this.entries;
  }

  get totalValueBytes(): number {
    return this.valueBytes;
  }

  get needsCompaction(): boolean {
    return this.logRecords >= this.limits.compactAfterRecords;
  }

  /** Replays persisted copies (newest version per key wins, whatever their order). Returns copies dropped for the bounds. */
  restore(copies: readonly DataCopy[]): number {
    let dropped = 0;
    for (const copy of copies) {
      const verdict = this.offer(copy);
      if (!verdict.stored && verdict.reason === "full") dropped++;
    }
    this.logRecords = copies.length;
    return dropped;
  }

  held(ownerId: string, key: string): DataCopy | undefined {
    return this.owners.get(ownerId)?.get(key);
  }

  /** Stores the copy if it is newer than the one held. The caller persists accepted copies. */
  offer(copy: DataCopy): OfferVerdict {
    let keys = this.owners.get(copy.ownerId);
    const held = keys?.get(copy.key);
    if (held && held.version >= copy.version) {
      return held.version === copy.version ? { stored: true, fresh: false } : { stored: false, reason: "stale", heldVersion: held.version };
    }
    const addedEntries = held ? 0 : 1;
    const addedBytes = copy.value.length - (held?.value.length ?? 0);
    if (this.entries + addedEntries > this.limits.maxEntries) return { stored: false, reason: "full", detail: `more than ${this.limits.maxEntries} copies` };
    if (this.valueBytes + addedBytes > this.limits.maxTotalValueBytes) {
      return { stored: false, reason: "full", detail: `more than ${this.limits.maxTotalValueBytes} bytes of copies` };
    }
    if (!keys) {
      keys = new Map();
      this.owners.set(copy.ownerId, keys);
    }
    keys.set(copy.key, copy);
    this.entries += addedEntries;
    this.valueBytes += addedBytes;
    this.logRecords++;
    return { stored: true, fresh: true };
  }

  /** The owner's copies in key order after `afterKey`, up to `maxCopies` and `maxBytes` of values (at least one copy). */
  page(ownerId: string, afterKey: string, maxCopies: number, maxBytes: number): CopyPage {
    const keys = this.owners.get(ownerId);
    if (!keys) return { copies: [], more: false };
    const sorted = [...keys.keys()].filter((key) => compareKeys(key, afterKey) > 0).sort(compareKeys);
    const copies: DataCopy[] = [];
    let bytes = 0;
    for (const key of sorted) {
      const copy = keys.get(key)!;
      if (copies.length >= maxCopies || (copies.length > 0 && bytes + copy.value.length > maxBytes)) return { copies, more: true };
      copies.push(copy);
      bytes += copy.value.length;
    }
    return { copies, more: false };
  }

  /** Every copy, one record each, for the compacted log. */
  compactedCopies(): DataCopy[] {
    const copies: DataCopy[] = [];
    for (const keys of this.owners.values()) for (const copy of keys.values()) copies.push(copy);
    return copies;
  }

  markCompacted(): void {
    this.logRecords = this.entries;
  }
}

/** Merges copies from several sources: per key the highest version wins. Keys come back sorted. */
export function newestCopies(sources: readonly (readonly DataCopy[])[]): DataCopy[] {
  const newest = new Map<string, DataCopy>();
  for (const copies of sources) {
    for (const copy of copies) {
      const known = newest.get(copy.key);
      if (!known || copy.version > known.version) newest.set(copy.key, copy);
    }
  }
  return [...newest.values()].sort((a, b) => compareKeys(a.key, b.key));
}

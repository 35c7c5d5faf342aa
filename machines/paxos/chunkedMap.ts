/**
 * An immutable map that copies a small part of itself per change instead of
 * the whole map: keys are spread by a fixed hash over `leafCount` small Maps
 * (leaves), reached through `fanout` groups of `fanout` leaves each. `with`,
 * `without` and a batch of edits (`edit()` … `done()`) copy the top array,
 * the group array and the leaf they touch: two arrays of `fanout` references
 * and a leaf of about size / `leafCount` entries. The cores keep their state
 * immutable (a step returns a new state); with plain Maps every vote, applied
 * slot or view change would copy the whole map, and with one level of 256
 * buckets a 20,000-VM view still copied a bucket of ~80 entries per change
 * (about half of a `vm.add`'s apply time).
 *
 * Iteration runs leaf by leaf, in insertion order within a leaf: the same on
 * every node for the same contents and history, but not overall insertion
 * order. Code that needs an order sorts.
 */
export const fanout = 64;
export const leafCount = fanout * fanout;

type Key = string | number;

function hashOf(key: Key): number {
  if (typeof key === "number") return key | 0;
  let hash = 0x811c9dc5;
  for (let index = 0; index < key.length; index++) hash = Math.imul(hash ^ key.charCodeAt(index), 0x01000193);
  return hash;
}

const groupOf = (hash: number): number => hash & (fanout - 1);
const leafOf = (hash: number): number => (hash >>> 6) & (fanout - 1);

type Leaf<K, V> = ReadonlyMap<K, V>;
type Group<K, V> = ReadonlyArray<Leaf<K, V> | undefined>;
type Groups<K, V> = ReadonlyArray<Group<K, V> | undefined>;

export class ChunkedMap<K extends Key, V> implements ReadonlyMap<K, V> {
  private static readonly emptyInstance = new ChunkedMap<never, never>([], 0);

  private constructor(
    private readonly groups: Groups<K, V>,
    readonly size: number,
  ) {}

  static empty<K extends Key, V>(): ChunkedMap<K, V> {
    return ChunkedMap.emptyInstance as unknown as ChunkedMap<K, V>;
  }

  static from<K extends Key, V>(entries: Iterable<readonly [K, V]>): ChunkedMap<K, V> {
    const draft = ChunkedMap.empty<K, V>().edit();
    for (const [key, value] of entries) draft.set(key, value);
    return draft.done();
  }

  get(key: K): V | undefined {
    const hash = hashOf(key);
    return this.groups[groupOf(hash)]?.[leafOf(hash)]?.get(key);
  }

  has(key: K): boolean {
    const hash = hashOf(key);
    return this.groups[groupOf(hash)]?.[leafOf(hash)]?.has(key) ?? false;
  }

  with(key: K, value: V): ChunkedMap<K, V> {
    return this.edit().set(key, value).done();
  }

  without(key: K): ChunkedMap<K, V> {
    return this.has(key) ? this.edit().delete(key).done() : this;
  }

  /** A draft that copies each array and leaf on its first change; `done()` seals it into a new map. */
  edit(): ChunkedMapDraft<K, V> {
    return new ChunkedMapDraft<K, V>(this.groups, this.size, (groups, size) => new ChunkedMap(groups, size));
  }

  *entries(): MapIterator<[K, V]> {
    for (const group of this.groups) if (group) for (const leaf of group) if (leaf) yield* leaf.entries();
  }

  *keys(): MapIterator<K> {
    for (const group of this.groups) if (group) for (const leaf of group) if (leaf) yield* leaf.keys();
  }

  *values(): MapIterator<V> {
    for (const group of this.groups) if (group) for (const leaf of group) if (leaf) yield* leaf.values();
  }

  [Symbol.iterator](): MapIterator<[K, V]> {
    return this.entries();
  }

  /** The same order as `entries()`, without a generator step per entry (hot scans of 20,000 VMs). */
  forEach(callback: (value: V, key: K, map: ReadonlyMap<K, V>) => void): void {
    for (const group of this.groups) {
      if (group === undefined) continue;
      for (const leaf of group) if (leaf) leaf.forEach((value, key) => callback(value, key, this));
    }
  }
}

export class ChunkedMapDraft<K extends Key, V> {
  /** The base's top array until the first change; copied then (an edit that changes nothing copies nothing). */
  private groups: Array<Group<K, V> | undefined> | null = null;
  /** Group arrays and leaves this draft copied already (group index; group * fanout + leaf index); allocated with `groups`. */
  private ownedGroups: Set<number> | null = null;
  private ownedLeaves: Set<number> | null = null;
  private sealed = false;

  constructor(
    private readonly base: Groups<K, V>,
    private count: number,
    private readonly seal: (groups: Groups<K, V>, size: number) => ChunkedMap<K, V>,
  ) {}

  get size(): number {
    return this.count;
  }

  get(key: K): V | undefined {
    const hash = hashOf(key);
    return (this.groups ?? this.base)[groupOf(hash)]?.[leafOf(hash)]?.get(key);
  }

  has(key: K): boolean {
    const hash = hashOf(key);
    return (this.groups ?? this.base)[groupOf(hash)]?.[leafOf(hash)]?.has(key) ?? false;
  }

  set(key: K, value: V): this {
    const leaf = this.writable(hashOf(key));
    if (!leaf.has(key)) this.count++;
    leaf.set(key, value);
    return this;
  }

  delete(key: K): this {
    const hash = hashOf(key);
    if (!(this.groups ?? this.base)[groupOf(hash)]?.[leafOf(hash)]?.has(key)) return this;
    this.writable(hash).delete(key);
    this.count--;
    return this;
  }

  done(): ChunkedMap<K, V> {
    if (this.sealed) throw new Error("a ChunkedMap draft can be sealed once");
    this.sealed = true;
    return this.seal(this.groups ?? this.base, this.count);
  }

  private writable(hash: number): Map<K, V> {
    if (this.sealed) throw new Error("a sealed ChunkedMap draft cannot change");
    let groups = this.groups;
    let ownedGroups = this.ownedGroups;
    let ownedLeaves = this.ownedLeaves;
    if (groups === null || ownedGroups === null || ownedLeaves === null) {
      groups = this.groups = this.base.length === 0 ? new Array<Group<K, V> | undefined>(fanout).fill(undefined) : this.base.slice();
      ownedGroups = this.ownedGroups = new Set();
      ownedLeaves = this.ownedLeaves = new Set();
    }
    const groupIndex = groupOf(hash);
    const leafIndex = leafOf(hash);
    let group = groups[groupIndex] as Array<Leaf<K, V> | undefined> | undefined;
    if (!ownedGroups.has(groupIndex)) {
      group = group === undefined ? new Array<Leaf<K, V> | undefined>(fanout).fill(undefined) : group.slice();
      groups[groupIndex] = group;
      ownedGroups.add(groupIndex);
    }
    const owned = groupIndex * fanout + leafIndex;
    if (!ownedLeaves.has(owned)) {
      const leaf = group![leafIndex];
      group![leafIndex] = leaf === undefined ? new Map() : new Map(leaf);
      ownedLeaves.add(owned);
    }
    return group![leafIndex] as Map<K, V>;
  }
}

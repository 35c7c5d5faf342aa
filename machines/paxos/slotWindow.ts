/**
 * The learner's retained log: the values of consecutive slots [from, to),
 * immutable like the rest of its state, grown at the end and cut at the
 * front, one slot at a time.
 *
 * A ChunkedMap would copy a bucket and its bucket array per applied slot, on
 * every learner (1,000 hosts in the simulator). Here windows share one
 * backing array: appending to the newest window writes in place, since no
 * window reads past its own end; appending to an older window (one whose end
 * another append already moved past) copies its slots first. Cutting the
 * front only moves `from`; the backing array is compacted once the cut part
 * outgrows the live part, so memory stays proportional to the window.
 */
export class SlotWindow<V> {
  private constructor(
    private readonly backing: V[],
    /** The slot of backing[0]. */
    private readonly base: number,
    readonly from: number,
    readonly to: number,
  ) {}

  /** An empty window whose first slot will be `from`. */
  static startingAt<V>(from: number): SlotWindow<V> {
    return new SlotWindow<V>([], from, from, from);
  }

  get size(): number {
    return this.to - this.from;
  }

  has(slot: number): boolean {
    return slot >= this.from && slot < this.to;
  }

  get(slot: number): V | undefined {
    return slot >= this.from && slot < this.to ? this.backing[slot - this.base] : undefined;
  }

  /** The window with `value` at slot `to`. */
  append(value: V): SlotWindow<V> {
    if (this.backing.length === this.to - this.base) {
      this.backing.push(value);
      return new SlotWindow(this.backing, this.base, this.from, this.to + 1);
    }
    const copy = this.backing.slice(this.from - this.base, this.to - this.base);
    copy.push(value);
    return new SlotWindow(copy, this.from, this.from, this.to + 1);
  }

  /** The window without its slots below `from` (no change when it starts there already). */
  dropBelow(from: number): SlotWindow<V> {
    if (from <= this.from) return this;
    const start = Math.min(from, this.to);
    const cut = start - this.base;
    if (cut > this.to - start && cut >= minCompactedSlots) {
      return new SlotWindow(this.backing.slice(cut, this.to - this.base), start, start, this.to);
    }
    return new SlotWindow(this.backing, this.base, start, this.to);
  }
}

/** Below this many cut slots the backing array is not compacted (copying a short live part often would cost more). */
const minCompactedSlots = 64;

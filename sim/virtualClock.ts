/**
 * The simulator's one source of time: a discrete-event clock over a heap.
 * Each timer fires at its own due time; timers due at the same instant fire in
 * the order they were set (sequence number), which makes every run with the
 * same inputs replay identically.
 *
 * xstate's own SimulatedClock re-sorts every timer on each tick and fires a
 * timer only once per jump, which does not scale past a few hundred actors.
 *
 * With thousands of nodes the cost of a step is mostly cache misses, so the
 * heap is kept as parallel arrays (due times and sequences in typed arrays,
 * callbacks and their arguments beside them) and 4-ary (half the depth of a
 * binary heap; siblings sit side by side). Hot paths use scheduleCall with a
 * shared function and its arguments: no closure and no handle per event.
 *
 * A cancelled entry leaves the heap at once (its handle knows its position):
 * every node re-arms its entry whenever an earlier timer comes up (each
 * message it receives schedules a mailbox drain), and the superseded entries
 * would otherwise stay in the heap until their due time, making it larger
 * and each of them costing a pop. Removing an entry does not change the
 * order in which the others come out.
 */

/** What schedule()/scheduleAt() return, for cancel(). */
class TimerHandle {
  declare live: boolean;
  /** The entry's position in the heap while live, kept up to date as entries move, so cancel() takes it out at once. */
  declare index: number;

  constructor() {
    this.live = true;
    this.index = -1;
  }
}

type TimerCallback = (first: never, second: never) => void;

export const maxPendingTimers = 50_000_000;
const initialHeapCapacity = 1024;
const heapArity = 4;

export class VirtualClock {
  private dueAtMs = new Float64Array(initialHeapCapacity);
  private sequences = new Float64Array(initialHeapCapacity);
  private readonly callbacks: (TimerCallback | undefined)[] = [];
  private readonly firsts: unknown[] = [];
  private readonly seconds: unknown[] = [];
  /** The cancellation handle of each entry; undefined for scheduleCall entries, which cannot be cancelled. */
  private readonly handles: (TimerHandle | undefined)[] = [];
  private size = 0;
  private nowMs = 0;
  private nextSequence = 0;
  private liveTimers = 0;
  private firedTimers = 0;

  now(): number {
    return this.nowMs;
  }

  get pendingTimers(): number {
    return this.liveTimers;
  }

  get timersFired(): number {
    return this.firedTimers;
  }

  /** Returns a handle for cancel(). A negative or non-finite delay counts as 0. */
  schedule(delayMs: number, callback: () => void): TimerHandle {
    return this.scheduleAt(this.nowMs + (Number.isFinite(delayMs) && delayMs > 0 ? delayMs : 0), callback, undefined, undefined);
  }

  /**
   * At an absolute time (a time already past counts as now), calling
   * `callback(first, second)`: no rounding through a relative delay, and no
   * closure needed. Returns a handle for cancel().
   */
  scheduleAt<First, Second>(dueAtMs: number, callback: (first: First, second: Second) => void, first: First, second: Second): TimerHandle {
    this.checkRoom();
    const handle = new TimerHandle();
    this.push(Number.isFinite(dueAtMs) && dueAtMs > this.nowMs ? dueAtMs : this.nowMs, callback, first, second, handle);
    return handle;
  }

  /** Calls `callback(first, second)` after `delayMs`; cannot be cancelled, and allocates nothing (the hot path of message delivery). */
  scheduleCall<First, Second>(delayMs: number, callback: (first: First, second: Second) => void, first: First, second: Second): void {
    this.checkRoom();
    this.push(this.nowMs + (Number.isFinite(delayMs) && delayMs > 0 ? delayMs : 0), callback, first, second, undefined);
  }

  cancel(handle: unknown): void {
    if (handle instanceof TimerHandle && handle.live) {
      handle.live = false;
      this.liveTimers--;
      this.removeAt(handle.index);
    }
  }

  /** Due time of the earliest live timer, or undefined when none is pending. */
  peekDueAtMs(): number | undefined {
    this.dropCancelledHead();
    return this.size > 0 ? this.dueAtMs[0] : undefined;
  }

  /** Fires the earliest timer (advancing time to it). Returns false when no timer is pending. */
  step(): boolean {
    this.dropCancelledHead();
    if (this.size === 0) return false;
    const dueAtMs = this.dueAtMs[0]!;
    const callback = this.callbacks[0] as (first: unknown, second: unknown) => void;
    const first = this.firsts[0];
    const second = this.seconds[0];
    const handle = this.handles[0];
    this.popTop();
    if (handle !== undefined) handle.live = false;
    this.liveTimers--;
    this.nowMs = dueAtMs;
    this.firedTimers++;
    callback(first, second);
    return true;
  }

  /** Fires every timer due at or before `untilMs`, then sets the time to `untilMs`. */
  runUntil(untilMs: number): void {
    for (;;) {
      const due = this.peekDueAtMs();
      if (due === undefined || due > untilMs) break;
      this.step();
    }
    if (untilMs > this.nowMs) this.nowMs = untilMs;
  }

  runFor(durationMs: number): void {
    this.runUntil(this.nowMs + durationMs);
  }

  private checkRoom(): void {
    if (this.liveTimers >= maxPendingTimers) throw new RangeError(`more than ${maxPendingTimers} pending timers`);
  }

  private dropCancelledHead(): void {
    const handles = this.handles;
    while (this.size > 0) {
      const handle = handles[0];
      if (handle === undefined || handle.live) return;
      this.popTop();
    }
  }

  private push(dueAtMs: number, callback: TimerCallback, first: unknown, second: unknown, handle: TimerHandle | undefined): void {
    if (this.size === this.dueAtMs.length) this.grow();
    const sequence = this.nextSequence++;
    this.liveTimers++;
    // Sift up with a moving hole: ties go to the lower sequence, i.e. the timer set first.
    this.write(this.holeAbove(this.size++, dueAtMs, sequence), dueAtMs, sequence, callback, first, second, handle);
  }

  /** Removes the top entry (the caller has read what it needs of it). */
  private popTop(): void {
    this.removeAt(0);
  }

  /** Removes the entry at `hole`, filling it with the last entry sifted up or down to its place. */
  private removeAt(hole: number): void {
    const size = --this.size;
    if (hole < size) {
      const lastDue = this.dueAtMs[size]!;
      const lastSequence = this.sequences[size]!;
      // Up first: the last entry may belong above the hole (never when the hole is the top).
      let index = this.holeAbove(hole, lastDue, lastSequence);
      if (index === hole) index = this.holeBelow(hole, lastDue, lastSequence, size);
      this.write(index, lastDue, lastSequence, this.callbacks[size], this.firsts[size], this.seconds[size], this.handles[size]);
    }
    // Release what the vacated slot referenced.
    this.callbacks[size] = undefined;
    this.firsts[size] = undefined;
    this.seconds[size] = undefined;
    this.handles[size] = undefined;
  }

  /** Moves the hole at `index` up past every parent that comes after (due, sequence); returns where the hole ends. */
  private holeAbove(start: number, due: number, sequence: number): number {
    const dues = this.dueAtMs;
    const sequences = this.sequences;
    let index = start;
    while (index > 0) {
      const parent = ((index - 1) / heapArity) | 0;
      const parentDue = dues[parent]!;
      if (parentDue < due || (parentDue === due && sequences[parent]! < sequence)) break;
      this.moveEntry(parent, index);
      index = parent;
    }
    return index;
  }

  /** Moves the hole at `index` down past every child that comes before (due, sequence), within `size` entries. */
  private holeBelow(start: number, due: number, sequence: number, size: number): number {
    const dues = this.dueAtMs;
    const sequences = this.sequences;
    let index = start;
    for (;;) {
      const firstChild = index * heapArity + 1;
      if (firstChild >= size) break;
      const endChild = firstChild + heapArity < size ? firstChild + heapArity : size;
      let child = firstChild;
      let childDue = dues[firstChild]!;
      for (let candidate = firstChild + 1; candidate < endChild; candidate++) {
        const candidateDue = dues[candidate]!;
        if (candidateDue < childDue || (candidateDue === childDue && sequences[candidate]! < sequences[child]!)) {
          child = candidate;
          childDue = candidateDue;
        }
      }
      if (due < childDue || (due === childDue && sequence < sequences[child]!)) break;
      this.moveEntry(child, index);
      index = child;
    }
    return index;
  }

  private moveEntry(from: number, to: number): void {
    this.dueAtMs[to] = this.dueAtMs[from]!;
    this.sequences[to] = this.sequences[from]!;
    this.callbacks[to] = this.callbacks[from];
    this.firsts[to] = this.firsts[from];
    this.seconds[to] = this.seconds[from];
    const handle = this.handles[from];
    this.handles[to] = handle;
    if (handle !== undefined) handle.index = to;
  }

  private write(index: number, due: number, sequence: number, callback: TimerCallback | undefined, first: unknown, second: unknown, handle: TimerHandle | undefined): void {
    this.dueAtMs[index] = due;
    this.sequences[index] = sequence;
    this.callbacks[index] = callback;
    this.firsts[index] = first;
    this.seconds[index] = second;
    this.handles[index] = handle;
    if (handle !== undefined) handle.index = index;
  }

  private grow(): void {
    const capacity = this.dueAtMs.length * 2;
    const dues = new Float64Array(capacity);
    dues.set(this.dueAtMs);
    this.dueAtMs = dues;
    const sequences = new Float64Array(capacity);
    sequences.set(this.sequences);
    this.sequences = sequences;
  }
}

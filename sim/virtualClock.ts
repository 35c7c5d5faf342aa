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
 */

/** What schedule()/scheduleAt() return, for cancel(). */
class TimerHandle {
  declare live: boolean;

  constructor() {
    this.live = true;
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
    const dues = this.dueAtMs;
    const sequences = this.sequences;
    const callbacks = this.callbacks;
    const firsts = this.firsts;
    const seconds = this.seconds;
    const handles = this.handles;
    let index = this.size++;
    this.liveTimers++;
    // Sift up with a moving hole: ties go to the lower sequence, i.e. the timer set first.
    while (index > 0) {
      const parent = ((index - 1) / heapArity) | 0;
      const parentDue = dues[parent]!;
      if (parentDue < dueAtMs || (parentDue === dueAtMs && sequences[parent]! < sequence)) break;
      dues[index] = parentDue;
      sequences[index] = sequences[parent]!;
      callbacks[index] = callbacks[parent];
      firsts[index] = firsts[parent];
      seconds[index] = seconds[parent];
      handles[index] = handles[parent];
      index = parent;
    }
    dues[index] = dueAtMs;
    sequences[index] = sequence;
    callbacks[index] = callback;
    firsts[index] = first;
    seconds[index] = second;
    handles[index] = handle;
  }

  /** Removes the top entry (the caller has read what it needs of it). */
  private popTop(): void {
    const dues = this.dueAtMs;
    const sequences = this.sequences;
    const callbacks = this.callbacks;
    const firsts = this.firsts;
    const seconds = this.seconds;
    const handles = this.handles;
    const size = --this.size;
    if (size > 0) {
      const lastDue = dues[size]!;
      const lastSequence = sequences[size]!;
      let index = 0;
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
        if (lastDue < childDue || (lastDue === childDue && lastSequence < sequences[child]!)) break;
        dues[index] = childDue;
        sequences[index] = sequences[child]!;
        callbacks[index] = callbacks[child];
        firsts[index] = firsts[child];
        seconds[index] = seconds[child];
        handles[index] = handles[child];
        index = child;
      }
      dues[index] = lastDue;
      sequences[index] = lastSequence;
      callbacks[index] = callbacks[size];
      firsts[index] = firsts[size];
      seconds[index] = seconds[size];
      handles[index] = handles[size];
    }
    // Release what the vacated slot referenced.
    callbacks[size] = undefined;
    firsts[size] = undefined;
    seconds[size] = undefined;
    handles[size] = undefined;
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

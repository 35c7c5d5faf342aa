/**
 * The simulator's one source of time: a discrete-event clock over a binary
 * heap. Each timer fires at its own due time; timers due at the same instant
 * fire in the order they were set (sequence number), which makes every run
 * with the same inputs replay identically.
 *
 * xstate's own SimulatedClock re-sorts every timer on each tick and fires a
 * timer only once per jump, which does not scale past a few hundred actors.
 */
interface TimerEntry {
  callback: ((first: never, second: never) => void) | undefined;
  /** Arguments for scheduleCall, so hot paths need no closure per event. */
  first: unknown;
  second: unknown;
}

export const maxPendingTimers = 50_000_000;
const initialHeapCapacity = 1024;
/** A 4-ary heap is half as deep as a binary one; its four children sit side by side in the typed arrays. */
const heapArity = 4;

/**
 * The heap keeps due times and sequence numbers in typed arrays beside the
 * entries, so sifting compares numbers in contiguous memory instead of
 * chasing a pointer per comparison: with tens of thousands of pending timers
 * that is most of the cost of a step.
 */
export class VirtualClock {
  private dueAtMs = new Float64Array(initialHeapCapacity);
  private sequences = new Float64Array(initialHeapCapacity);
  private entries: (TimerEntry | undefined)[] = [];
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
  schedule(delayMs: number, callback: () => void): TimerEntry {
    return this.scheduleCall(delayMs, callback, undefined, undefined);
  }

  /** Like schedule(), calling `callback(first, second)`: one allocation per event instead of a closure as well. */
  scheduleCall<First, Second>(delayMs: number, callback: (first: First, second: Second) => void, first: First, second: Second): TimerEntry {
    if (this.liveTimers >= maxPendingTimers) throw new RangeError(`more than ${maxPendingTimers} pending timers`);
    const safeDelayMs = Number.isFinite(delayMs) && delayMs > 0 ? delayMs : 0;
    const entry: TimerEntry = { callback, first, second };
    this.push(entry, this.nowMs + safeDelayMs, this.nextSequence++);
    this.liveTimers++;
    return entry;
  }

  /** Like schedule(), at an absolute time (a time already past counts as now): no rounding through a relative delay. */
  scheduleAt(dueAtMs: number, callback: () => void): TimerEntry {
    if (this.liveTimers >= maxPendingTimers) throw new RangeError(`more than ${maxPendingTimers} pending timers`);
    const entry: TimerEntry = { callback, first: undefined, second: undefined };
    this.push(entry, Number.isFinite(dueAtMs) && dueAtMs > this.nowMs ? dueAtMs : this.nowMs, this.nextSequence++);
    this.liveTimers++;
    return entry;
  }

  cancel(handle: unknown): void {
    const entry = handle as TimerEntry | undefined;
    if (entry && entry.callback) {
      entry.callback = undefined;
      entry.first = undefined;
      entry.second = undefined;
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
    const entry = this.popTop();
    const callback = entry.callback as ((first: unknown, second: unknown) => void) | undefined;
    const first = entry.first;
    const second = entry.second;
    entry.callback = undefined;
    entry.first = undefined;
    entry.second = undefined;
    this.liveTimers--;
    this.nowMs = dueAtMs;
    this.firedTimers++;
    callback?.(first, second);
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

  private dropCancelledHead(): void {
    while (this.size > 0 && this.entries[0]!.callback === undefined) this.popTop();
  }

  private push(entry: TimerEntry, dueAtMs: number, sequence: number): void {
    if (this.size === this.dueAtMs.length) this.grow();
    const dues = this.dueAtMs;
    const sequences = this.sequences;
    const entries = this.entries;
    let index = this.size++;
    // Sift up with a moving hole: ties go to the lower sequence, i.e. the timer set first.
    while (index > 0) {
      const parent = ((index - 1) / heapArity) | 0;
      const parentDue = dues[parent]!;
      if (parentDue < dueAtMs || (parentDue === dueAtMs && sequences[parent]! < sequence)) break;
      dues[index] = parentDue;
      sequences[index] = sequences[parent]!;
      entries[index] = entries[parent];
      index = parent;
    }
    dues[index] = dueAtMs;
    sequences[index] = sequence;
    entries[index] = entry;
  }

  private popTop(): TimerEntry {
    const dues = this.dueAtMs;
    const sequences = this.sequences;
    const entries = this.entries;
    const top = entries[0]!;
    const size = --this.size;
    if (size > 0) {
      const lastDue = dues[size]!;
      const lastSequence = sequences[size]!;
      const last = entries[size];
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
        entries[index] = entries[child];
        index = child;
      }
      dues[index] = lastDue;
      sequences[index] = lastSequence;
      entries[index] = last;
    }
    entries[size] = undefined;
    return top;
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

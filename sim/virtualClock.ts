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
  readonly dueAtMs: number;
  readonly sequence: number;
  callback: (() => void) | undefined;
}

export const maxPendingTimers = 50_000_000;

export class VirtualClock {
  private heap: TimerEntry[] = [];
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
    if (this.liveTimers >= maxPendingTimers) throw new RangeError(`more than ${maxPendingTimers} pending timers`);
    const safeDelayMs = Number.isFinite(delayMs) && delayMs > 0 ? delayMs : 0;
    const entry: TimerEntry = { dueAtMs: this.nowMs + safeDelayMs, sequence: this.nextSequence++, callback };
    this.push(entry);
    this.liveTimers++;
    return entry;
  }

  cancel(handle: unknown): void {
    const entry = handle as TimerEntry | undefined;
    if (entry && entry.callback) {
      entry.callback = undefined;
      this.liveTimers--;
    }
  }

  /** Due time of the earliest live timer, or undefined when none is pending. */
  peekDueAtMs(): number | undefined {
    this.dropCancelledHead();
    return this.heap[0]?.dueAtMs;
  }

  /** Fires the earliest timer (advancing time to it). Returns false when no timer is pending. */
  step(): boolean {
    this.dropCancelledHead();
    const entry = this.pop();
    if (!entry) return false;
    const callback = entry.callback;
    entry.callback = undefined;
    this.liveTimers--;
    this.nowMs = entry.dueAtMs;
    this.firedTimers++;
    callback?.();
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
    while (this.heap.length > 0 && this.heap[0]!.callback === undefined) this.pop();
  }

  private static before(a: TimerEntry, b: TimerEntry): boolean {
    return a.dueAtMs < b.dueAtMs || (a.dueAtMs === b.dueAtMs && a.sequence < b.sequence);
  }

  private push(entry: TimerEntry): void {
    const heap = this.heap;
    heap.push(entry);
    let index = heap.length - 1;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (!VirtualClock.before(heap[index]!, heap[parent]!)) break;
      [heap[index], heap[parent]] = [heap[parent]!, heap[index]!];
      index = parent;
    }
  }

  private pop(): TimerEntry | undefined {
    const heap = this.heap;
    if (heap.length === 0) return undefined;
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      let index = 0;
      for (;;) {
        const left = index * 2 + 1;
        const right = left + 1;
        let smallest = index;
        if (left < heap.length && VirtualClock.before(heap[left]!, heap[smallest]!)) smallest = left;
        if (right < heap.length && VirtualClock.before(heap[right]!, heap[smallest]!)) smallest = right;
        if (smallest === index) break;
        [heap[index], heap[smallest]] = [heap[smallest]!, heap[index]!];
        index = smallest;
      }
    }
    return top;
  }
}

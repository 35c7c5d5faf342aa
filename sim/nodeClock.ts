/**
 * One node's view of the simulator's shared VirtualClock, usable as the Clock
 * port and as xstate's `clock` option.
 *
 * A node's clock may be skewed (read ahead of or behind global time) and may
 * drift (run at rate 1 + ppm/1e6), yet it never goes backwards: after a
 * backward skew it stands still until global time catches up. Timers are in
 * node time: `setTimeout(cb, ms)` fires once the node's own clock has advanced
 * by `ms`, so a fast clock fires early in global time.
 *
 * A paused node (a stopped process, a long GC) holds the timers that come due
 * and fires them, in the order they came due, after it resumes. A crash
 * cancels every timer; a generation counter makes sure a callback scheduled by
 * an earlier incarnation can never run in a later one.
 *
 * The node keeps its timers in its own small heap and has at most one entry
 * (its earliest timer) armed on the global clock. Timers that are cancelled
 * before they become the earliest, like request timeouts, never touch the
 * global heap; with thousands of nodes that is most of them. A cancelled
 * timer leaves the node's heap at once, so it (and whatever its callback
 * holds) dies young instead of lingering until its due time.
 */
import type { Clock } from "../actors/ports/clock.ts";
import type { VirtualClock } from "./virtualClock.ts";

/** Real quartz is within ±100 ppm; the bound leaves room for deliberately bad clocks while keeping the rate positive. */
export const maxClockDriftPpm = 500_000;
/** A day: more skew than that is a scenario typo, not a clock fault. */
export const maxClockOffsetMs = 86_400_000;
/** Timers one node may have pending; more is a leak in the node's code. */
export const maxTimersPerNode = 1_000_000;
const notInHeap = -1;

/**
 * Fields are `declare`d and set in the constructor: a class field initializer
 * (define semantics under ES2022) costs a measurable share of a simulation
 * that creates millions of timers.
 */
class NodeTimer {
  declare callback: (() => void) | undefined;
  /** Position in the owner's heap, or notInHeap. */
  declare heapIndex: number;
  declare readonly owner: NodeClock;
  declare readonly generation: number;
  declare readonly dueAtNodeMs: number;
  declare readonly sequence: number;

  constructor(owner: NodeClock, generation: number, dueAtNodeMs: number, sequence: number, callback: () => void) {
    this.callback = callback;
    this.heapIndex = notInHeap;
    this.owner = owner;
    this.generation = generation;
    this.dueAtNodeMs = dueAtNodeMs;
    this.sequence = sequence;
  }
}

function firesBefore(a: NodeTimer, b: NodeTimer): boolean {
  return a.dueAtNodeMs < b.dueAtNodeMs || (a.dueAtNodeMs === b.dueAtNodeMs && a.sequence < b.sequence);
}

/** One shared function for every node's armed entry: the global heap holds the clock as an argument, not a closure per node. */
function fireNodeClock(clock: NodeClock): void {
  clock.fire();
}

export class NodeClock implements Clock {
  private anchorGlobalMs: number;
  private anchorNodeMs: number;
  private rate = 1;
  private drift = 0;
  /** now() never returns less than this; raised by backward skew and by fired timers. */
  private floorMs: number;
  private generation = 0;
  private down = false;
  private paused = false;
  private firing = false;
  private nextSequence = 0;
  /** Min-heap of this node's live timers by (node due time, sequence). */
  private readonly heap: NodeTimer[] = [];
  private armedHandle: unknown = undefined;
  /** Node time the armed global entry was computed for (Infinity when nothing is armed). */
  private armedForNodeMs = Infinity;

  constructor(private readonly global: VirtualClock) {
    this.anchorGlobalMs = global.now();
    this.anchorNodeMs = this.anchorGlobalMs;
    this.floorMs = this.anchorGlobalMs;
  }

  now(): number {
    const raw = this.rawNow();
    return raw > this.floorMs ? raw : this.floorMs;
  }

  setTimeout(callback: () => void, delayMs: number): NodeTimer {
    const safeDelayMs = Number.isFinite(delayMs) && delayMs > 0 ? delayMs : 0;
    const timer = new NodeTimer(this, this.generation, this.now() + safeDelayMs, this.nextSequence++, callback);
    if (this.down) {
      timer.callback = undefined;
      return timer;
    }
    if (this.heap.length >= maxTimersPerNode) throw new RangeError(`more than ${maxTimersPerNode} timers on one node`);
    this.push(timer);
    // Inside our own timer callbacks arming waits until the batch ends, so a timer set and then superseded never reaches the global heap.
    if (!this.firing && timer.dueAtNodeMs < this.armedForNodeMs) this.arm();
    return timer;
  }

  clearTimeout(id: unknown): void {
    if (!(id instanceof NodeTimer) || id.owner !== this || id.callback === undefined) return;
    id.callback = undefined;
    // If it was the armed (earliest) timer, the armed event finds nothing due and re-arms for the next.
    if (id.heapIndex !== notInHeap) this.removeAt(id.heapIndex);
  }

  get driftPpm(): number {
    return this.drift;
  }

  /** How far this node's clock reads ahead of global time right now. */
  get offsetMs(): number {
    return this.now() - this.global.now();
  }

  get isPaused(): boolean {
    return this.paused;
  }

  get isDown(): boolean {
    return this.down;
  }

  /** Timers that will still fire, for tests and reports. */
  get activeTimers(): number {
    return this.heap.length;
  }

  /**
   * From now on this node's clock reads global time + `offsetMs` and advances at
   * 1 + driftPpm/1e6 per global ms (but never backwards: a backward step makes it
   * stand still until it catches up). Pending timers keep their node-time due
   * times, so they fire earlier or later in global time.
   */
  setSkew(offsetMs: number, driftPpm: number): void {
    if (!Number.isFinite(offsetMs) || Math.abs(offsetMs) > maxClockOffsetMs) {
      throw new RangeError(`clock offset must be finite and within ±${maxClockOffsetMs} ms, got ${offsetMs}`);
    }
    if (!Number.isFinite(driftPpm) || Math.abs(driftPpm) > maxClockDriftPpm) {
      throw new RangeError(`clock drift must be finite and within ±${maxClockDriftPpm} ppm, got ${driftPpm}`);
    }
    this.floorMs = this.now();
    this.anchorGlobalMs = this.global.now();
    this.anchorNodeMs = this.anchorGlobalMs + offsetMs;
    this.drift = driftPpm;
    this.rate = 1 + driftPpm / 1e6;
    this.disarm();
    this.arm();
  }

  pause(): void {
    this.paused = true;
  }

  /** Timers that came due during the pause fire next, in due order, after anything already due at this instant. */
  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.arm();
  }

  /** Cancels every timer; nothing set before the crash will ever fire. */
  crash(): void {
    this.generation++;
    this.down = true;
    this.paused = false;
    this.disarm();
    for (const timer of this.heap) {
      timer.callback = undefined;
      timer.heapIndex = notInHeap;
    }
    this.heap.length = 0;
  }

  /** A new incarnation: timers work again; the clock itself (skew, drift, monotonic reading) carries on. */
  restart(): void {
    this.down = false;
  }

  /** The reading before the monotonic floor. At rate 1 it is global time plus a constant, exact when that constant is 0. */
  private rawNow(): number {
    if (this.rate === 1) return this.global.now() + (this.anchorNodeMs - this.anchorGlobalMs);
    return this.anchorNodeMs + (this.global.now() - this.anchorGlobalMs) * this.rate;
  }

  /** Global time at which the raw reading reaches `nodeMs`. */
  private globalTimeOf(nodeMs: number): number {
    if (this.rate === 1) return nodeMs - (this.anchorNodeMs - this.anchorGlobalMs);
    return this.anchorGlobalMs + (nodeMs - this.anchorNodeMs) / this.rate;
  }

  /** @internal Fires every timer that was due when this event began (like one pass of Node's timer phase); later ones wait for the next pass. */
  fire(): void {
    const armedForNodeMs = this.armedForNodeMs;
    this.armedHandle = undefined;
    this.armedForNodeMs = Infinity;
    if (this.paused || this.down) return;
    const generation = this.generation;
    const sequenceLimit = this.nextSequence;
    // Drift arithmetic may land a hair early: what we were armed for counts as due.
    const nowNodeMs = Math.max(this.now(), armedForNodeMs);
    this.firing = true;
    try {
      for (;;) {
        const timer = this.heap[0];
        if (timer === undefined || timer.sequence >= sequenceLimit || timer.dueAtNodeMs > nowNodeMs) break;
        this.removeAt(0);
        const callback = timer.callback!;
        timer.callback = undefined;
        if (this.floorMs < timer.dueAtNodeMs) this.floorMs = timer.dueAtNodeMs;
        if (timer.generation === generation) callback();
        if (this.paused || this.generation !== generation) break;
      }
    } finally {
      this.firing = false;
      this.arm();
    }
  }

  /** Makes sure the earliest live timer has an entry on the global clock. */
  private arm(): void {
    if (this.down || this.paused) return;
    const timer = this.heap[0];
    if (timer === undefined) return;
    const due = timer.dueAtNodeMs;
    if (this.armedHandle !== undefined) {
      if (this.armedForNodeMs <= due) return;
      this.global.cancel(this.armedHandle);
    }
    // Once the clock stands at or past its floor it moves with the raw reading, so due time T comes when the raw reading reaches T.
    this.armedHandle = this.global.scheduleAt(due <= this.now() ? this.global.now() : this.globalTimeOf(due), fireNodeClock, this, undefined);
    this.armedForNodeMs = due;
  }

  private disarm(): void {
    if (this.armedHandle !== undefined) this.global.cancel(this.armedHandle);
    this.armedHandle = undefined;
    this.armedForNodeMs = Infinity;
  }

  private push(timer: NodeTimer): void {
    const heap = this.heap;
    heap.push(timer);
    this.siftUp(timer, heap.length - 1);
  }

  /** Takes the timer at `index` out of the heap, filling the hole with the last timer. */
  private removeAt(index: number): void {
    const heap = this.heap;
    const removed = heap[index]!;
    removed.heapIndex = notInHeap;
    const last = heap.pop()!;
    if (last === removed) return;
    if (index > 0 && firesBefore(last, heap[(index - 1) >> 1]!)) this.siftUp(last, index);
    else this.siftDown(last, index);
  }

  private siftUp(timer: NodeTimer, start: number): void {
    const heap = this.heap;
    let index = start;
    while (index > 0) {
      const parentIndex = (index - 1) >> 1;
      const parent = heap[parentIndex]!;
      if (!firesBefore(timer, parent)) break;
      heap[index] = parent;
      parent.heapIndex = index;
      index = parentIndex;
    }
    heap[index] = timer;
    timer.heapIndex = index;
  }

  private siftDown(timer: NodeTimer, start: number): void {
    const heap = this.heap;
    const length = heap.length;
    let index = start;
    for (;;) {
      const left = index * 2 + 1;
      if (left >= length) break;
      const right = left + 1;
      const childIndex = right < length && firesBefore(heap[right]!, heap[left]!) ? right : left;
      const child = heap[childIndex]!;
      if (!firesBefore(child, timer)) break;
      heap[index] = child;
      child.heapIndex = index;
      index = childIndex;
    }
    heap[index] = timer;
    timer.heapIndex = index;
  }
}

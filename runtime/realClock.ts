/**
 * The Clock port on the real machine: a monotonic millisecond clock
 * (performance.now, anchored at the process's start in Unix time so values
 * read like timestamps) and Node timers.
 */
import type { Clock, TimerId } from "../actors/ports/clock.ts";

/** Node fires a timer longer than this after 1 ms (with a warning): longer waits are chained. */
export const maxNodeTimerDelayMs = 2_147_483_647;

interface ChainedTimer {
  handle: NodeJS.Timeout | undefined;
}

export class RealClock implements Clock {
  /** Unix ms at which performance.now() was 0; fixed, so now() never goes backwards even if the wall clock does. */
  private readonly epochOffsetMs = performance.timeOrigin;

  now(): number {
    return this.epochOffsetMs + performance.now();
  }

  /** A negative, NaN or infinite-negative delay counts as 0; an infinite one never fires. */
  setTimeout(callback: () => void, delayMs: number): TimerId {
    const timer: ChainedTimer = { handle: undefined };
    if (delayMs === Number.POSITIVE_INFINITY) return timer;
    const dueAtMs = this.now() + (Number.isFinite(delayMs) && delayMs > 0 ? delayMs : 0);
    // Node measures delays on its cached loop time and may fire a little early by now(): a timer
    // that wakes before its due time waits out the rest, so callbacks never see now() < due.
    const wake = () => {
      const remainingMs = dueAtMs - this.now();
      if (remainingMs > 0) {
        timer.handle = setTimeout(wake, Math.min(maxNodeTimerDelayMs, Math.ceil(remainingMs)));
        return;
      }
      timer.handle = undefined;
      callback();
    };
    timer.handle = setTimeout(wake, Math.min(maxNodeTimerDelayMs, Math.max(0, dueAtMs - this.now())));
    return timer;
  }

  clearTimeout(id: TimerId): void {
    const timer = id as ChainedTimer | undefined;
    if (timer?.handle !== undefined) {
      clearTimeout(timer.handle);
      timer.handle = undefined;
    }
  }
}

export const realClock: Clock = new RealClock();

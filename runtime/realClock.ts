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
    const arm = () => {
      const remainingMs = Math.max(0, dueAtMs - this.now());
      if (remainingMs > maxNodeTimerDelayMs) {
        timer.handle = setTimeout(arm, maxNodeTimerDelayMs);
      } else {
        timer.handle = setTimeout(() => {
          timer.handle = undefined;
          callback();
        }, remainingMs);
      }
    };
    arm();
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

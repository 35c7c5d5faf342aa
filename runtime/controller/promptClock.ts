/**
 * The real clock, except that a timer of 0 ms runs on the next turn of the
 * event loop (setImmediate) instead of Node's 1 ms minimum timeout. The actor
 * host drains its mailbox with a 0 ms timer, so on the plain real clock every
 * hop of a message through an actor costs a millisecond; a commit crosses
 * about six of them.
 */
import type { Clock, TimerId } from "../../actors/ports/clock.ts";
import { realClock } from "../realClock.ts";

interface ImmediateTimer {
  readonly immediate: NodeJS.Immediate;
}

function isImmediateTimer(id: TimerId): id is ImmediateTimer {
  return typeof id === "object" && id !== null && "immediate" in id;
}

export const promptClock: Clock = {
  now: () => realClock.now(),
  setTimeout(callback, delayMs) {
    if (Number.isFinite(delayMs) && delayMs > 0) return realClock.setTimeout(callback, delayMs);
    if (delayMs === Number.POSITIVE_INFINITY) return realClock.setTimeout(callback, delayMs);
    return { immediate: setImmediate(callback) } satisfies ImmediateTimer;
  },
  clearTimeout(id) {
    if (isImmediateTimer(id)) clearImmediate(id.immediate);
    else realClock.clearTimeout(id);
  },
};

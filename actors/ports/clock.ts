/**
 * Time as an actor sees it. The shape is xstate's `clock` option plus `now()`,
 * so one object drives both machine delays and actor code.
 *
 * Implementations: the real clock (runtime/) and a per-node view of the
 * simulator's virtual clock (sim/), which may be skewed, drift or be paused.
 */
export type TimerId = unknown;

export interface Clock {
  /** Milliseconds on this node's monotonic clock. Never goes backwards. */
  now(): number;
  setTimeout(callback: () => void, delayMs: number): TimerId;
  clearTimeout(id: TimerId): void;
}

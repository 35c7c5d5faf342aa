import test from "ava";
import { VirtualClock } from "../../sim/virtualClock.ts";

/** A seeded linear congruential generator: the test needs no other randomness. */
function generator(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state;
  };
}

test("cancelling entries anywhere in the heap, also while firing, leaves the others in (due, set order)", (t) => {
  const clock = new VirtualClock();
  const next = generator(11);
  const fired: number[] = [];
  const expected: { dueAtMs: number; order: number }[] = [];
  const live = new Map<number, unknown>();
  let order = 0;
  const add = (delayMs: number): void => {
    const mine = order++;
    const dueAtMs = clock.now() + delayMs;
    expected.push({ dueAtMs, order: mine });
    live.set(mine, clock.schedule(delayMs, () => {
      fired.push(mine);
      live.delete(mine);
      // every fourth firing cancels a pending entry and sets two more: the heap changes while it fires
      if (mine % 4 === 0) cancelOne();
      if (mine % 4 === 1 && order < 20_000) {
        add(next() % 50);
        add(next() % 50);
      }
    }));
  };
  const cancelled = new Set<number>();
  const cancelOne = (): void => {
    const pending = [...live.keys()];
    if (pending.length === 0) return;
    const victim = pending[next() % pending.length]!;
    clock.cancel(live.get(victim));
    live.delete(victim);
    cancelled.add(victim);
  };
  for (let index = 0; index < 3_000; index++) add(next() % 100);
  for (let index = 0; index < 500; index++) cancelOne();
  t.is(clock.pendingTimers, live.size);
  clock.runUntil(100_000);
  t.is(clock.pendingTimers, 0);
  const wanted = expected.filter((entry) => !cancelled.has(entry.order)).sort((a, b) => a.dueAtMs - b.dueAtMs || a.order - b.order).map((entry) => entry.order);
  t.deepEqual(fired, wanted);
});

test("a cancelled entry leaves the heap at once: the next due time is the next live entry's", (t) => {
  const clock = new VirtualClock();
  const first = clock.schedule(5, () => undefined);
  const second = clock.schedule(7, () => undefined);
  clock.schedule(9, () => undefined);
  clock.cancel(second);
  clock.cancel(first);
  t.is(clock.peekDueAtMs(), 9);
  t.is(clock.pendingTimers, 1);
});

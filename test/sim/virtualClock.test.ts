import test from "ava";
import { VirtualClock } from "../../sim/virtualClock.ts";

test("timers fire in due order, each at its own due time", (t) => {
  const clock = new VirtualClock();
  const fired: string[] = [];
  for (const [name, delayMs] of [["c", 30], ["a", 10], ["d", 40], ["b", 20]] as const) {
    clock.schedule(delayMs, () => fired.push(`${name}@${clock.now()}`));
  }
  clock.runUntil(100);
  t.deepEqual(fired, ["a@10", "b@20", "c@30", "d@40"]);
  t.is(clock.now(), 100);
});

test("ties at the same instant fire in the order they were set, also for timers set while firing", (t) => {
  const clock = new VirtualClock();
  const fired: string[] = [];
  clock.schedule(5, () => {
    fired.push("first");
    clock.schedule(0, () => fired.push("nested"));
  });
  clock.schedule(5, () => fired.push("second"));
  clock.schedule(5, () => fired.push("third"));
  clock.runUntil(5);
  t.deepEqual(fired, ["first", "second", "third", "nested"]);
});

test("many timers with shuffled delays come out sorted by (due, set order)", (t) => {
  const clock = new VirtualClock();
  const fired: [number, number][] = [];
  let state = 7;
  for (let index = 0; index < 5_000; index++) {
    state = (state * 1103515245 + 12345) % 2147483648;
    const delayMs = state % 97;
    clock.schedule(delayMs, () => fired.push([clock.now(), index]));
  }
  clock.runUntil(1_000);
  t.is(fired.length, 5_000);
  for (let index = 1; index < fired.length; index++) {
    const [previousTime, previousIndex] = fired[index - 1]!;
    const [time, order] = fired[index]!;
    t.true(previousTime < time || (previousTime === time && previousIndex < order), `out of order at ${index}`);
  }
});

test("a cancelled timer never fires and no longer counts as pending", (t) => {
  const clock = new VirtualClock();
  const fired: string[] = [];
  const handle = clock.schedule(10, () => fired.push("cancelled"));
  clock.schedule(20, () => fired.push("kept"));
  t.is(clock.pendingTimers, 2);
  clock.cancel(handle);
  clock.cancel(handle);
  t.is(clock.pendingTimers, 1);
  clock.runUntil(50);
  t.deepEqual(fired, ["kept"]);
  t.is(clock.pendingTimers, 0);
});

test("runUntil stops at the bound; later timers wait; negative delays count as zero", (t) => {
  const clock = new VirtualClock();
  const fired: number[] = [];
  clock.schedule(10, () => fired.push(10));
  clock.schedule(11, () => fired.push(11));
  clock.runUntil(10);
  t.deepEqual(fired, [10]);
  t.is(clock.peekDueAtMs(), 11);
  clock.schedule(-5, () => fired.push(clock.now()));
  clock.step();
  t.deepEqual(fired, [10, 10]);
  clock.runFor(5);
  t.deepEqual(fired, [10, 10, 11]);
  t.is(clock.now(), 15);
});

test("scheduleCall passes its two arguments", (t) => {
  const clock = new VirtualClock();
  const seen: string[] = [];
  clock.scheduleCall(1, (first: string, second: number) => seen.push(`${first}:${second}`), "x", 7);
  clock.runFor(1);
  t.deepEqual(seen, ["x:7"]);
});

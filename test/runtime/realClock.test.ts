import test from "ava";
import { RealClock } from "../../runtime/realClock.ts";

test("now() never goes backwards and reads like Unix milliseconds", (t) => {
  const clock = new RealClock();
  let previous = clock.now();
  for (let index = 0; index < 1_000; index++) {
    const current = clock.now();
    t.true(current >= previous);
    previous = current;
  }
  t.true(Math.abs(clock.now() - Date.now()) < 60_000);
});

test("a timer fires once after its delay; a cleared one never fires", async (t) => {
  const clock = new RealClock();
  const fired: string[] = [];
  const start = clock.now();
  let firedAt = 0;
  clock.setTimeout(() => {
    fired.push("kept");
    firedAt = clock.now();
  }, 30);
  const cancelled = clock.setTimeout(() => fired.push("cancelled"), 10);
  clock.clearTimeout(cancelled);
  clock.setTimeout(() => fired.push("negative delay"), -5);
  await new Promise((resolve) => setTimeout(resolve, 120));
  t.deepEqual(fired, ["negative delay", "kept"]);
  t.true(firedAt - start >= 30, "fired before its due time on now()");
});

test("an infinite delay never fires and can be cleared", async (t) => {
  const clock = new RealClock();
  let fired = false;
  const timer = clock.setTimeout(() => (fired = true), Number.POSITIVE_INFINITY);
  await new Promise((resolve) => setTimeout(resolve, 20));
  clock.clearTimeout(timer);
  t.false(fired);
});

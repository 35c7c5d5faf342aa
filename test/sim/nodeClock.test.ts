import test from "ava";
import { createActor, setup } from "xstate";
import { NodeClock } from "../../sim/nodeClock.ts";
import { VirtualClock } from "../../sim/virtualClock.ts";

function clocks() {
  const global = new VirtualClock();
  return { global, node: new NodeClock(global) };
}

test("an unskewed node clock reads global time and fires timers on time", (t) => {
  const { global, node } = clocks();
  const fired: number[] = [];
  node.setTimeout(() => fired.push(global.now()), 25);
  global.runUntil(10);
  t.is(node.now(), 10);
  global.runUntil(100);
  t.deepEqual(fired, [25]);
});

test("skew: the clock reads ahead by the offset; timers still take their delay", (t) => {
  const { global, node } = clocks();
  global.runUntil(100);
  node.setSkew(5_000, 0);
  t.is(node.now(), 5_100);
  t.is(node.offsetMs, 5_000);
  const fired: number[] = [];
  node.setTimeout(() => fired.push(global.now()), 50);
  global.runUntil(1_000);
  t.deepEqual(fired, [150]);
});

test("drift: a fast clock fires a timer after ms/rate of global time and reads ahead accordingly", (t) => {
  const { global, node } = clocks();
  node.setSkew(0, 100_000); // 10% fast
  const fired: number[] = [];
  node.setTimeout(() => fired.push(global.now()), 1_100);
  global.runUntil(2_000);
  t.is(fired.length, 1);
  t.true(Math.abs(fired[0]! - 1_000) < 1e-6, `fired at ${fired[0]}`);
  t.true(Math.abs(node.now() - 2_200) < 1e-6);
});

test("drift changed while a timer is pending keeps its node-time due time", (t) => {
  const { global, node } = clocks();
  const fired: [number, number][] = [];
  node.setTimeout(() => fired.push([node.now(), global.now()]), 1_000);
  global.runUntil(500);
  node.setSkew(node.offsetMs, -500_000); // half speed from here on
  global.runUntil(5_000);
  t.is(fired.length, 1);
  const [nodeMs, globalMs] = fired[0]!;
  t.true(Math.abs(nodeMs - 1_000) < 1e-6, `node time ${nodeMs}`);
  t.true(Math.abs(globalMs - 1_500) < 1e-6, `global time ${globalMs}`);
});

test("a backward skew never makes now() go backwards: the clock stands still until it catches up", (t) => {
  const { global, node } = clocks();
  global.runUntil(1_000);
  node.setSkew(-300, 0);
  t.is(node.now(), 1_000);
  global.runUntil(1_200);
  t.is(node.now(), 1_000);
  global.runUntil(1_400);
  t.is(node.now(), 1_100);
  const fired: number[] = [];
  node.setTimeout(() => fired.push(global.now()), 50);
  global.runUntil(2_000);
  t.deepEqual(fired, [1_450]);
});

test("pause holds due timers and fires them in due order after resume", (t) => {
  const { global, node } = clocks();
  const fired: string[] = [];
  node.setTimeout(() => fired.push(`b@${global.now()}`), 20);
  node.setTimeout(() => fired.push(`a@${global.now()}`), 10);
  node.setTimeout(() => fired.push(`c@${global.now()}`), 500);
  global.runUntil(5);
  node.pause();
  global.runUntil(100);
  t.deepEqual(fired, []);
  t.is(node.now(), 100, "time passes for a paused node");
  node.resume();
  global.runUntil(100);
  t.deepEqual(fired, ["a@100", "b@100"]);
  global.runUntil(1_000);
  t.deepEqual(fired, ["a@100", "b@100", "c@500"]);
});

test("crash cancels every timer; restart gives working timers and old ones stay dead", (t) => {
  const { global, node } = clocks();
  const fired: string[] = [];
  const oldTimer = node.setTimeout(() => fired.push("old"), 10);
  node.setTimeout(() => fired.push("old2"), 20);
  node.crash();
  t.is(node.activeTimers, 0);
  node.setTimeout(() => fired.push("while-down"), 1);
  global.runUntil(50);
  node.restart();
  node.clearTimeout(oldTimer);
  node.setTimeout(() => fired.push(`new@${global.now()}`), 10);
  global.runUntil(100);
  t.deepEqual(fired, ["new@60"]);
  t.is(global.pendingTimers, 0);
});

test("clearTimeout cancels; clearing another clock's timer or garbage is ignored", (t) => {
  const { global, node } = clocks();
  const other = new NodeClock(global);
  const fired: string[] = [];
  const mine = node.setTimeout(() => fired.push("mine"), 10);
  const theirs = other.setTimeout(() => fired.push("theirs"), 10);
  node.clearTimeout(theirs);
  node.clearTimeout({ bogus: true });
  node.clearTimeout(undefined);
  node.clearTimeout(mine);
  global.runUntil(20);
  t.deepEqual(fired, ["theirs"]);
});

test("timers set inside a timer callback at zero delay run after the ones already due", (t) => {
  const { global, node } = clocks();
  const fired: string[] = [];
  node.setTimeout(() => {
    fired.push("first");
    node.setTimeout(() => fired.push("zero-delay"), 0);
  }, 10);
  node.setTimeout(() => fired.push("second"), 10);
  global.runUntil(10);
  t.deepEqual(fired, ["first", "second", "zero-delay"]);
});

test("works as xstate's clock: `after` delays follow node time, including drift", (t) => {
  const { global, node } = clocks();
  node.setSkew(0, 250_000); // 25% fast
  const machine = setup({}).createMachine({
    initial: "waiting",
    states: { waiting: { after: { 1_000: "done" } }, done: {} },
  });
  const actor = createActor(machine, { clock: node }).start();
  global.runUntil(799);
  t.is(actor.getSnapshot().value, "waiting");
  global.runUntil(800);
  t.is(actor.getSnapshot().value, "done");
  actor.stop();
});

test("an unskewed clock created at an odd instant reads global time exactly and fires exactly at set time + delay", (t) => {
  const global = new VirtualClock();
  global.runUntil(0.1);
  const node = new NodeClock(global);
  const fired: number[] = [];
  global.runUntil(0.7);
  t.is(node.now(), global.now());
  const setAtMs = node.now();
  node.setTimeout(() => fired.push(global.now()), 0.2);
  global.runUntil(10);
  t.deepEqual(fired, [setAtMs + 0.2]);
});

test("random sets and clears: exactly the uncancelled timers fire, in (due, set order)", (t) => {
  const { global, node } = clocks();
  let state = 12345;
  const nextInt = (bound: number) => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state % bound;
  };
  const expected: { dueMs: number; order: number; cancelled: boolean }[] = [];
  const handles: unknown[] = [];
  const fired: number[] = [];
  for (let order = 0; order < 3_000; order++) {
    const delayMs = nextInt(200);
    const entry = { dueMs: global.now() + delayMs, order, cancelled: false };
    expected.push(entry);
    handles.push(node.setTimeout(() => fired.push(order), delayMs));
    if (nextInt(3) === 0) {
      const victim = nextInt(order + 1);
      node.clearTimeout(handles[victim]);
      if (!fired.includes(victim)) expected[victim]!.cancelled = true;
    }
    if (nextInt(10) === 0) global.runFor(nextInt(20));
  }
  global.runFor(1_000);
  const want = expected
    .filter((entry) => !entry.cancelled)
    .sort((a, b) => a.dueMs - b.dueMs || a.order - b.order)
    .map((entry) => entry.order);
  t.deepEqual(fired, want);
  t.is(node.activeTimers, 0);
});

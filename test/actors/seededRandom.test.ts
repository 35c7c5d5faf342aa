import test from "ava";
import { createSeededRandom } from "../../actors/seededRandom.ts";

const draw = (random: ReturnType<typeof createSeededRandom>, count = 8) => Array.from({ length: count }, () => random.next());

test("the same seed gives the same sequence; another seed a different one", (t) => {
  t.deepEqual(draw(createSeededRandom(42)), draw(createSeededRandom(42)));
  t.notDeepEqual(draw(createSeededRandom(42)), draw(createSeededRandom(43)));
});

test("forks are stable, independent of the parent's draws, and order-sensitive", (t) => {
  const parent = createSeededRandom(7);
  const before = draw(parent.fork("network"));
  draw(parent, 100);
  t.deepEqual(draw(parent.fork("network")), before, "a fork depends on the seed and label only");
  t.notDeepEqual(draw(parent.fork("a").fork("b")), draw(parent.fork("b").fork("a")));
  t.notDeepEqual(draw(parent.fork("a").fork("a")), draw(createSeededRandom(7)));
  t.notDeepEqual(draw(parent.fork("a")), draw(parent.fork("b")));
});

test("int stays in range and covers it; bad bounds are refused", (t) => {
  const random = createSeededRandom(1);
  const seen = new Set<number>();
  for (let index = 0; index < 1_000; index++) {
    const value = random.int(5);
    t.true(value >= 0 && value < 5);
    seen.add(value);
  }
  t.is(seen.size, 5);
  t.throws(() => random.int(0), { instanceOf: RangeError });
  t.throws(() => random.int(1.5), { instanceOf: RangeError });
  t.throws(() => createSeededRandom(Number.NaN), { instanceOf: RangeError });
});

import test from "ava";
import fc from "fast-check";
import { ChunkedMap } from "../../machines/paxos/chunkedMap.ts";

test("a ChunkedMap behaves like a Map and never changes once built", (t) => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.boolean(), fc.oneof(fc.integer({ min: 0, max: 2_000 }), fc.string({ maxLength: 6 })), fc.integer()), { maxLength: 300 }), (operations) => {
      const reference = new Map<string | number, number>();
      let map = ChunkedMap.empty<string | number, number>();
      const history: Array<[ChunkedMap<string | number, number>, string]> = [];
      for (const [remove, key, value] of operations) {
        history.push([map, JSON.stringify([...map.entries()].sort())]);
        if (remove) {
          reference.delete(key);
          map = map.without(key);
        } else {
          reference.set(key, value);
          map = map.with(key, value);
        }
        if (map.size !== reference.size || map.get(key) !== reference.get(key) || map.has(key) !== reference.has(key)) return false;
      }
      const sorted = (entries: Iterable<[string | number, number]>) => JSON.stringify([...entries].sort());
      if (sorted(map.entries()) !== sorted(reference.entries())) return false;
      // Earlier versions are untouched by later changes.
      return history.every(([old, entries]) => JSON.stringify([...old.entries()].sort()) === entries);
    }),
    { seed: 3, numRuns: 200 },
  );
  t.pass();
});

test("a draft batches edits, copies only what it touches, and seals once", (t) => {
  const base = ChunkedMap.from<number, string>([[1, "a"], [2, "b"], [300, "c"]]);
  const draft = base.edit();
  draft.set(2, "B").delete(300).set(4, "d");
  t.is(draft.size, 3);
  const next = draft.done();
  // Iteration is bucket by bucket; small integer keys fall in buckets of their own value.
  t.deepEqual([...next.entries()], [
    [1, "a"],
    [2, "B"],
    [4, "d"],
  ]);
  t.deepEqual([...base.entries()].length, 3);
  t.is(base.get(2), "b");
  t.throws(() => draft.done());
  t.throws(() => draft.set(5, "e"));
  t.is(base.without(99), base, "removing a missing key returns the same map");
});

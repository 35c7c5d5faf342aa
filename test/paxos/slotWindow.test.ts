import test from "ava";
import fc from "fast-check";
import { SlotWindow } from "../../machines/paxos/slotWindow.ts";

interface Reference {
  readonly from: number;
  readonly values: readonly string[];
}

test("a SlotWindow behaves like an immutable array of consecutive slots, also when older versions are grown again", (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 50 }), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 200 })), { maxLength: 400 }), (start, operations) => {
      // every version kept, with what it must hold; each step picks a version (often the newest) to grow or cut
      const versions: Array<[SlotWindow<string>, Reference]> = [[SlotWindow.startingAt<string>(start), { from: start, values: [] }]];
      for (const [pick, kind, amount] of operations) {
        const index = kind === 3 ? pick % versions.length : versions.length - 1;
        const [window, reference] = versions[index]!;
        if (kind === 0) {
          const from = reference.from + (amount % (reference.values.length + 2));
          const cut = Math.min(from - reference.from, reference.values.length);
          versions.push([window.dropBelow(from), { from: reference.from + cut, values: reference.values.slice(cut) }]);
        } else {
          const value = `v${versions.length}`;
          versions.push([window.append(value), { from: reference.from, values: [...reference.values, value] }]);
        }
      }
      return versions.every(([window, reference]) => {
        if (window.from !== reference.from || window.size !== reference.values.length) return false;
        for (let slot = reference.from - 2; slot < reference.from + reference.values.length + 2; slot++) {
          const expected = slot >= reference.from ? reference.values[slot - reference.from] : undefined;
          if (window.get(slot) !== expected || window.has(slot) !== (expected !== undefined)) return false;
        }
        return true;
      });
    }),
    { seed: 5, numRuns: 300 },
  );
  t.pass();
});

test("cutting the front compacts the backing array once the cut part outgrows the live part", (t) => {
  let window = SlotWindow.startingAt<number>(0);
  for (let slot = 0; slot < 10_000; slot++) {
    window = window.append(slot);
    if (window.size > 100) window = window.dropBelow(window.to - 100);
  }
  t.is(window.from, 9_900);
  t.is(window.get(9_950), 9_950);
  // The backing array holds at most the live part, twice over, plus the compaction threshold.
  t.true((window as unknown as { backing: unknown[] }).backing.length <= 2 * 100 + 64);
});

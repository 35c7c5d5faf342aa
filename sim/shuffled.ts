/** A seeded Fisher-Yates shuffle: the same random stream gives the same order. */
import type { Random } from "../actors/ports/random.ts";

export function shuffled<T>(random: Random, items: readonly T[]): T[] {
  const copy = [...items];
  for (let index = copy.length - 1; index > 0; index--) {
    const other = random.int(index + 1);
    [copy[index], copy[other]] = [copy[other]!, copy[index]!];
  }
  return copy;
}

import type { Random } from "./ports/random.ts";

/**
 * sfc32 seeded from a 32-bit seed through splitmix32. Small, fast, and the same
 * sequence on every platform, which is all the simulator needs.
 */
function splitmix32(state: number): () => number {
  let s = state >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/**
 * A child seed from the parent seed and a label: FNV-1a over the label starting
 * from the parent seed, then an avalanche finalizer. Chaining is
 * order-sensitive (fork(a).fork(b) differs from fork(b).fork(a)) and forking
 * the same label twice does not return to the parent.
 */
function childSeed(parentSeed: number, label: string): number {
  let hash = (0x811c9dc5 ^ parentSeed) >>> 0;
  for (let index = 0; index < label.length; index++) {
    hash ^= label.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  hash ^= hash >>> 16;
  return hash >>> 0;
}

export function createSeededRandom(seed: number): Random {
  if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be a safe integer, got ${seed}`);
  const seed32 = (seed ^ Math.floor(seed / 0x1_0000_0000)) >>> 0;
  const mix = splitmix32(seed32);
  let a = mix();
  let b = mix();
  let c = mix();
  let d = mix();
  const nextUint32 = (): number => {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = ((c << 21) | (c >>> 11)) >>> 0;
    c = (c + t) >>> 0;
    return t;
  };
  for (let warmup = 0; warmup < 12; warmup++) nextUint32();

  return {
    next: () => nextUint32() / 0x1_0000_0000,
    int(exclusiveMax: number): number {
      if (!Number.isSafeInteger(exclusiveMax) || exclusiveMax <= 0) {
        throw new RangeError(`exclusiveMax must be a positive safe integer, got ${exclusiveMax}`);
      }
      return Math.floor((nextUint32() / 0x1_0000_0000) * exclusiveMax);
    },
    fork: (label: string) => createSeededRandom(childSeed(seed32, label)),
  };
}

/**
 * The proposer's randomness lives in its state as a 32-bit seed (drawn once
 * from the injected Random port), so a step stays a pure function of
 * (state, input) and a snapshot of the state replays exactly.
 */
export function nextUnitInterval(seed: number): { readonly value: number; readonly seed: number } {
  // mulberry32
  const next = (seed + 0x6d2b79f5) >>> 0;
  let z = next;
  z = Math.imul(z ^ (z >>> 15), z | 1);
  z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
  return { value: ((z ^ (z >>> 14)) >>> 0) / 0x1_0000_0000, seed: next };
}

/** An integer in [0, maxMs], and the next seed. */
export function drawJitterMs(seed: number, maxMs: number): { readonly jitterMs: number; readonly seed: number } {
  const draw = nextUnitInterval(seed);
  return { jitterMs: Math.floor(draw.value * (maxMs + 1)), seed: draw.seed };
}

/**
 * Converting durations between clocks that run at different rates. Every
 * node's clock runs within ±ρ of real time (ρ = ppm / 10⁶); clocks are never
 * compared, only durations. docs/failure-detection.md uses these to prove that
 * the leader declares a host failed only after its lease has surely run out.
 */

const partsPerMillion = 1_000_000;

function rateError(maxClockRateErrorPpm: number): number {
  return maxClockRateErrorPpm / partsPerMillion;
}

/**
 * Leader-clock milliseconds that surely cover `durationMs` measured on any
 * other node's clock: that duration lasts at most `durationMs / (1 − ρ)` real
 * time, during which the leader's clock advances at most `(1 + ρ)` times as much.
 */
export function leaderMsCovering(durationMs: number, maxClockRateErrorPpm: number): number {
  const rho = rateError(maxClockRateErrorPpm);
  return Math.ceil((durationMs * (1 + rho)) / (1 - rho));
}

/**
 * The latest the leader's clock can have read when a monitor heard a host,
 * given that the monitor reported the hearing `ageMs` (monitor clock) before
 * sending a digest the leader received at `receivedAtMs`: at least
 * `ageMs / (1 + ρ)` real time passed, so the leader's clock advanced at least
 * `ageMs (1 − ρ) / (1 + ρ)`. Network delay only makes the true time earlier.
 */
export function heardNoLaterThanMs(receivedAtMs: number, ageMs: number, maxClockRateErrorPpm: number): number {
  const rho = rateError(maxClockRateErrorPpm);
  return receivedAtMs - Math.floor((Math.max(0, ageMs) * (1 - rho)) / (1 + rho));
}

/** Simulated time of each false-alarm run: `HARING_DETECTION_SOAK_MS`, or 20 s in CI. */
export const defaultSoakMs = 20_000;
export const maxSoakMs = 24 * 3_600_000;

export function soakDurationMs(): number {
  const text = process.env.HARING_DETECTION_SOAK_MS;
  if (text === undefined || text === "") return defaultSoakMs;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 1_000 || value > maxSoakMs) {
    throw new RangeError(`HARING_DETECTION_SOAK_MS must be a whole number of ms in [1000, ${maxSoakMs}], got ${JSON.stringify(text)}`);
  }
  return value;
}

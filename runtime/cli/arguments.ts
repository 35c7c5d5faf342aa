import { UsageError } from "./usageError.ts";

/** Parses a whole number within bounds, or throws a UsageError naming the option. */
export function parseBoundedInteger(option: string, raw: string, min: number, max: number): number {
  const trimmed = raw.trim();
  if (!/^-?\d+$/.test(trimmed)) {
    throw new UsageError(`${option} takes a whole number, got ${JSON.stringify(raw)}`, `for example ${option} ${min}`);
  }
  const value = Number(trimmed);
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new UsageError(`${option} must be between ${min} and ${max}, got ${trimmed}`, `for example ${option} ${min}`);
  }
  return value;
}

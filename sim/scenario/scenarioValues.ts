/**
 * The small value syntaxes shared by cluster.json and the commands file:
 * durations (`2s`, `500ms`, `1.5m`), signed durations (`+200ms`), percentages
 * (`5%`), drift (`50ppm`) and node id ranges (`h1-h50`).
 *
 * Every parser returns `undefined` for input it does not accept, so the caller
 * can say where the value was and what it expected. Decimal values are scaled
 * from their digits (`1.1s` is exactly 1100 ms, not 1100.0000000000002).
 */

/** Digits before and after the decimal point a value may have; more is a typo, not a wish for precision. */
const maxIntegerDigits = 9;
const maxFractionDigits = 6;

const unitMs: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

const decimalPattern = new RegExp(`^(\\d{1,${maxIntegerDigits}})(?:\\.(\\d{1,${maxFractionDigits}}))?$`);

/** `12.5` → 12.5 scaled by `factor`, computed as integer × factor ÷ 10^decimals so decimal input stays exact where it can. */
function scaledDecimal(text: string, factor: number): number | undefined {
  const match = decimalPattern.exec(text);
  if (!match) return undefined;
  const fraction = match[2] ?? "";
  const mantissa = Number(`${match[1]}${fraction}`);
  return (mantissa * factor) / 10 ** fraction.length;
}

/** A non-negative duration in ms: `0`, `250ms`, `2s`, `1.5m`, `1h`. */
export function parseDurationMs(text: string): number | undefined {
  if (text === "0") return 0;
  const match = /^([0-9.]+)(ms|s|m|h)$/.exec(text);
  if (!match) return undefined;
  return scaledDecimal(match[1]!, unitMs[match[2]!]!);
}

/** A duration with an optional sign: `+200ms`, `-1s`, `0`. */
export function parseSignedDurationMs(text: string): number | undefined {
  const sign = text.startsWith("-") ? -1 : 1;
  const unsigned = text.startsWith("-") || text.startsWith("+") ? text.slice(1) : text;
  const value = parseDurationMs(unsigned);
  return value === undefined ? undefined : sign * value;
}

/** A probability written as a percentage, `5%` or `0.5%` (or `0`); at most 100%. */
export function parsePercent(text: string): number | undefined {
  if (text === "0") return 0;
  if (!text.endsWith("%")) return undefined;
  const percent = scaledDecimal(text.slice(0, -1), 1);
  if (percent === undefined || percent > 100) return undefined;
  return percent / 100;
}

/** Clock drift, `50ppm`, `-20ppm`, `0`. */
export function parsePpm(text: string): number | undefined {
  if (text === "0") return 0;
  const match = /^([+-]?)(.+)ppm$/.exec(text);
  if (!match) return undefined;
  const value = scaledDecimal(match[2]!, 1);
  return value === undefined ? undefined : (match[1] === "-" ? -1 : 1) * value;
}

/** Durations print back the way people write them: `1500` → `1.5s`, `250` → `250ms`, `120000` → `2m`. */
export function formatDurationMs(ms: number): string {
  if (ms >= 3_600_000 && ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms >= 60_000 && ms % 60_000 === 0) return `${ms / 60_000}m`;
  return ms >= 1_000 && Number.isInteger(ms) ? `${ms / 1_000}s` : `${ms}ms`;
}

const idPattern = /^[A-Za-z0-9_-]{1,64}$/;

export function isNodeOrVmId(text: string): boolean {
  return idPattern.test(text);
}

const rangePattern = /^([A-Za-z_][A-Za-z0-9_]*?)(\d+)-([A-Za-z_][A-Za-z0-9_]*?)(\d+)$/;

export type RangeExpansion =
  | { readonly ok: true; readonly ids: readonly string[] }
  | { readonly ok: false; readonly problem: string };

/**
 * `h1-h50` → h1 … h50; `vm01-vm10` keeps the zero padding of its first end.
 * Returns undefined when the text is not shaped like a range (then it may be
 * a plain id that contains a dash).
 */
export function expandIdRange(text: string, maxIds: number): RangeExpansion | undefined {
  const match = rangePattern.exec(text);
  if (!match) return undefined;
  const [, firstPrefix, firstDigits, lastPrefix, lastDigits] = match as unknown as [string, string, string, string, string];
  if (firstPrefix !== lastPrefix) return { ok: false, problem: `range ${text} has two prefixes (${firstPrefix} and ${lastPrefix})` };
  if (firstDigits.length > maxIntegerDigits || lastDigits.length > maxIntegerDigits) return { ok: false, problem: `range ${text} has numbers that are too long` };
  const first = Number(firstDigits);
  const last = Number(lastDigits);
  if (last < first) return { ok: false, problem: `range ${text} runs backwards` };
  if (last - first + 1 > maxIds) return { ok: false, problem: `range ${text} has ${last - first + 1} ids, more than ${maxIds}` };
  const width = firstDigits.startsWith("0") && firstDigits.length === lastDigits.length ? firstDigits.length : 0;
  const ids: string[] = [];
  for (let number = first; number <= last; number++) {
    const id = `${firstPrefix}${String(number).padStart(width, "0")}`;
    if (!idPattern.test(id)) return { ok: false, problem: `range ${text} makes the invalid id ${id}` };
    ids.push(id);
  }
  return { ok: true, ids };
}

/** The inverse for display: [h1, h2, h3, m1] → `h1-h3,m1` (runs of consecutive numbers with one prefix, in the given order). */
export function compressIds(ids: readonly string[]): string {
  const parts: string[] = [];
  let index = 0;
  while (index < ids.length) {
    const start = /^(.*?)(\d+)$/.exec(ids[index]!);
    let end = index;
    if (start && !(start[2]!.length > 1 && start[2]!.startsWith("0"))) {
      const prefix = start[1]!;
      let expected = Number(start[2]) + 1;
      while (end + 1 < ids.length && ids[end + 1] === `${prefix}${expected}`) {
        end++;
        expected++;
      }
    }
    parts.push(end > index + 1 ? `${ids[index]}-${ids[end]}` : ids.slice(index, end + 1).join(","));
    index = end + 1;
  }
  return parts.join(",");
}

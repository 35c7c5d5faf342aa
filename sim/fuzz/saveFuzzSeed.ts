/**
 * Writes one whole-system fuzz seed as a scenario directory, with the same
 * options a test or a run used (hosts, fault window, settle time), so it can be
 * replayed with `haring sim run DIR/fuzz-SEED` (full log and diff). The CLI's
 * `haring sim fuzz --replay SEED --save DIR` does the same with the default
 * window and settle time.
 *
 *   npx tsx sim/fuzz/saveFuzzSeed.ts SEED DIR [--hosts N] [--fault-window-ms N] [--settle-ms N]
 */
import { defaultAssembly } from "../scenario/defaultAssembly.ts";
import { defaultFuzzScenarioOptions, generateFuzzScenario } from "./fuzzScenario.ts";
import { saveFuzzScenario } from "./systemFuzz.ts";

const usage = "usage: npx tsx sim/fuzz/saveFuzzSeed.ts SEED DIR [--hosts N] [--fault-window-ms N] [--settle-ms N]";

function wholeNumber(name: string, text: string | undefined): number {
  const value = Number(text);
  if (text === undefined || !/^\d{1,15}$/.test(text) || !Number.isSafeInteger(value)) throw new RangeError(`${name} must be a whole number, got ${text ?? "nothing"}\n${usage}`);
  return value;
}

function main(argv: readonly string[]): void {
  const [seedText, directory, ...rest] = argv;
  if (directory === undefined) throw new RangeError(usage);
  const options: { hosts?: number; faultWindowMs: number; settleMs: number } = { ...defaultFuzzScenarioOptions };
  for (let index = 0; index < rest.length; index += 2) {
    const flag = rest[index];
    const value = rest[index + 1];
    if (flag === "--hosts") options.hosts = wholeNumber(flag, value);
    else if (flag === "--fault-window-ms") options.faultWindowMs = wholeNumber(flag, value);
    else if (flag === "--settle-ms") options.settleMs = wholeNumber(flag, value);
    else throw new RangeError(`unknown option ${flag}\n${usage}`);
  }
  const generated = generateFuzzScenario(wholeNumber("SEED", seedText), { ...options, capabilities: defaultAssembly().capabilities() });
  const saved = saveFuzzScenario(generated, directory);
  process.stdout.write(`saved ${saved}; replay: node bin/haring.js sim run ${saved}\n`);
}

try {
  main(process.argv.slice(2));
} catch (error) {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 2;
}

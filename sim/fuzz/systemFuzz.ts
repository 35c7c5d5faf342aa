/**
 * The whole-system fuzzer: consecutive seeds, each a random cluster and fault
 * schedule (fuzzScenario.ts) run through the scenario runner with every
 * component the assembly has, so each run checks every component's
 * invariants: no VM on two hosts, Paxos agreement, epochs monotonic, no false
 * failure declaration, fencing before restart, and, after the world is made
 * whole, liveness. A failing seed is reported with the command that replays
 * it, and can be written out as a scenario directory.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ClusterAssembly } from "../scenario/clusterAssembly.ts";
import { defaultAssembly } from "../scenario/defaultAssembly.ts";
import { runLoadedScenario } from "../scenario/runScenario.ts";
import { clusterFileName, commandsFileName } from "../scenario/scenarioTypes.ts";
import { defaultFuzzScenarioOptions, generateFuzzScenario, type GeneratedScenario } from "./fuzzScenario.ts";

export const systemFuzzLimits = { maxSeeds: 1_000_000, maxFailuresKept: 20 } as const;

export interface SystemFuzzOptions {
  readonly seeds: number;
  readonly startSeed: number;
  /** Hosts per run; undefined: drawn from each seed (3 to 8). */
  readonly hosts?: number;
  readonly faultWindowMs?: number;
  readonly settleMs?: number;
  readonly assembly?: ClusterAssembly;
  /** Called after each seed, e.g. to print progress. */
  readonly onSeed?: (outcome: FuzzSeedOutcome) => void;
}

export interface FuzzSeedOutcome {
  readonly seed: number;
  readonly ok: boolean;
  readonly failures: readonly string[];
  readonly virtualMs: number;
  readonly commands: number;
  readonly generated: GeneratedScenario;
}

export interface SystemFuzzResult {
  readonly ok: boolean;
  readonly seeds: number;
  readonly failedSeeds: readonly number[];
  /** The first failures, each naming its seed. */
  readonly failures: readonly string[];
  /** The failing runs' scenarios, for `saveFuzzScenario`. */
  readonly failedScenarios: readonly GeneratedScenario[];
  readonly capabilities: readonly string[];
  readonly totals: { readonly virtualMs: number; readonly commands: number };
  readonly summaryText: string;
}

export function runSystemFuzz(options: SystemFuzzOptions): SystemFuzzResult {
  const { seeds, startSeed } = options;
  if (!Number.isSafeInteger(seeds) || seeds < 1 || seeds > systemFuzzLimits.maxSeeds) throw new RangeError(`seeds must be a whole number in [1, ${systemFuzzLimits.maxSeeds}], got ${seeds}`);
  if (!Number.isSafeInteger(startSeed) || startSeed < 0 || startSeed + seeds > Number.MAX_SAFE_INTEGER) throw new RangeError(`startSeed must be a whole number ≥ 0, got ${startSeed}`);
  const assembly = options.assembly ?? defaultAssembly();
  const capabilities = assembly.capabilities();
  const scenarioOptions = {
    capabilities,
    hosts: options.hosts,
    faultWindowMs: options.faultWindowMs ?? defaultFuzzScenarioOptions.faultWindowMs,
    settleMs: options.settleMs ?? defaultFuzzScenarioOptions.settleMs,
  };
  const failedSeeds: number[] = [];
  const failures: string[] = [];
  const failedScenarios: GeneratedScenario[] = [];
  let virtualMs = 0;
  let commands = 0;
  for (let seed = startSeed; seed < startSeed + seeds; seed++) {
    const generated = generateFuzzScenario(seed, scenarioOptions);
    const output = runLoadedScenario(generated.scenario, { assembly });
    const seedFailures = output.ran ? output.failures : ["the generated scenario could not be assembled", ...output.failures];
    const ok = seedFailures.length === 0;
    virtualMs += output.virtualMs;
    commands += generated.scenario.commands.length;
    if (!ok) {
      failedSeeds.push(seed);
      if (failedScenarios.length < systemFuzzLimits.maxFailuresKept) {
        failedScenarios.push(generated);
        failures.push(...seedFailures.map((failure) => `seed ${seed}: ${failure}`));
      }
    }
    options.onSeed?.({ seed, ok, failures: seedFailures, virtualMs: output.virtualMs, commands: generated.scenario.commands.length, generated });
  }
  const ok = failedSeeds.length === 0;
  const summaryText = [
    `whole-system fuzz: ${seeds} seeds from ${startSeed}, components: ${capabilities.join(", ")}`,
    `  ${commands} scheduled commands over ${(virtualMs / 1_000).toFixed(0)} simulated s`,
    ok ? "  every invariant held" : `  FAILED seeds: ${failedSeeds.slice(0, systemFuzzLimits.maxFailuresKept).join(", ")}${failedSeeds.length > systemFuzzLimits.maxFailuresKept ? " …" : ""}`,
  ].join("\n");
  return { ok, seeds, failedSeeds, failures, failedScenarios, capabilities, totals: { virtualMs, commands }, summaryText };
}

/** Writes a generated run as a scenario directory (cluster.json + commands) that `haring sim run` replays. */
export function saveFuzzScenario(generated: GeneratedScenario, parentDirectory: string): string {
  const directory = join(parentDirectory, generated.scenario.name);
  mkdirSync(directory, { recursive: true });
  writeFileSync(join(directory, clusterFileName), generated.clusterJson);
  writeFileSync(join(directory, commandsFileName), generated.commandsText);
  return directory;
}

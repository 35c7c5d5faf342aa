/**
 * What a scenario directory holds once parsed: the cluster (cluster.json), the
 * timed commands (commands) and the expected log (expected.log). The file
 * format is described in docs/scenarios.md.
 */
import type { Resources, VmPriority } from "../../machines/view/viewTypes.ts";
import type { LatencyProfile, ReorderProfile } from "../simNetwork.ts";
import type { JsonNode } from "./jsonDocument.ts";

export const clusterFileName = "cluster.json";
export const commandsFileName = "commands";
export const expectedLogFileName = "expected.log";

/** A virtual hour: longer scenarios belong to the fuzzer or a benchmark. */
export const maxScenarioDurationMs = 3_600_000;
export const maxScenarioMonitors = 64;
export const maxHostLabels = 32;
export const maxLabelLength = 64;
export const maxScenarioRules = 10_000;
export const maxDescriptionLength = 2_000;
export const maxRequiredCapabilities = 32;
export const defaultScenarioSeed = 1;
export const defaultHostCapacity: Resources = { cpu: 64, memoryMiB: 262_144 };
export const defaultVmResources: Resources = { cpu: 1, memoryMiB: 1_024 };

/** Words that select nodes in commands, so no node may be called that. */
export const reservedIds: ReadonlySet<string> = new Set(["rest", "all", "hosts", "monitors", "controllers", "world", "scenario"]);

export type VirtType = "full" | "para";
export type RuleType = "affinity" | "anti-affinity";

export interface HostSpec {
  readonly hostId: string;
  readonly capacity: Resources;
  /** Insertion order of the file. */
  readonly labels: ReadonlyMap<string, string>;
  /** Whether the host's hypervisor migrates VMs live (`"liveMigration": true`); default false, like a driver not configured for it. */
  readonly liveMigration: boolean;
}

export interface VmSpec {
  readonly vmId: string;
  /** Where it runs at the start; undefined leaves placement to the manager. */
  readonly hostId: string | undefined;
  readonly resources: Resources;
  readonly priority: VmPriority;
  readonly virt: VirtType;
}

export interface RuleSpec {
  readonly type: RuleType;
  readonly vmIds: readonly string[];
}

export interface NetworkSpec {
  readonly latency: LatencyProfile;
  readonly lossProbability: number;
  readonly duplicationProbability: number;
  readonly reorder: ReorderProfile;
}

/**
 * What a command the world refuses (`crash` of a node already down, `restart`
 * of one that is up) does to the run: `fail` (hand-written scenarios: the
 * author's expectation was wrong) or `skip` (logged and counted; generated
 * fuzz schedules, where a watchdog may have reset a host the schedule meant
 * to crash).
 */
export type RefusedCommandPolicy = "fail" | "skip";

export interface ClusterSpec {
  readonly description: string;
  readonly seed: number;
  readonly durationMs: number;
  /** Capabilities the scenario needs beyond what its contents imply (see clusterAssembly.ts). */
  readonly requires: readonly string[];
  readonly refusedCommands: RefusedCommandPolicy;
  readonly controllerIds: readonly string[];
  readonly monitorIds: readonly string[];
  readonly hosts: readonly HostSpec[];
  readonly vms: readonly VmSpec[];
  readonly rules: readonly RuleSpec[];
  readonly network: NetworkSpec;
  /** Raw per-component settings (`components.<name>`), parsed by each component. */
  readonly componentSettings: ReadonlyMap<string, JsonNode>;
  /** Where each top-level key sat, for errors found after parsing. */
  readonly lineOf: ReadonlyMap<string, number>;
}

/** Every node of the cluster, controllers first, then monitors not co-located with a controller, then hosts. */
export function clusterNodeIds(cluster: ClusterSpec): string[] {
  const ids = new Set<string>(cluster.controllerIds);
  for (const monitorId of cluster.monitorIds) ids.add(monitorId);
  for (const host of cluster.hosts) ids.add(host.hostId);
  return [...ids];
}

export type ScenarioCommand =
  | { readonly kind: "crash"; readonly nodeIds: readonly string[] }
  | { readonly kind: "restart"; readonly nodeIds: readonly string[] }
  | { readonly kind: "pause"; readonly nodeIds: readonly string[]; readonly durationMs: number | undefined }
  | { readonly kind: "resume"; readonly nodeIds: readonly string[] }
  | { readonly kind: "partition"; readonly groups: readonly (readonly string[])[] }
  | { readonly kind: "one-way"; readonly from: readonly string[]; readonly to: readonly string[] }
  | { readonly kind: "one-way-restore"; readonly from: readonly string[]; readonly to: readonly string[] }
  | { readonly kind: "heal" }
  | { readonly kind: "loss"; readonly probability: number }
  | { readonly kind: "dup"; readonly probability: number }
  | { readonly kind: "latency"; readonly latency: LatencyProfile }
  | { readonly kind: "reorder"; readonly reorder: ReorderProfile }
  | { readonly kind: "skew"; readonly nodeIds: readonly string[]; readonly offsetMs: number; readonly driftPpm: number }
  | { readonly kind: "sync-latency"; readonly syncLatencyMs: number }
  | { readonly kind: "torn-writes"; readonly probability: number }
  | { readonly kind: "nats-loss" }
  | { readonly kind: "nats-restore" }
  | { readonly kind: "vm-crash"; readonly vmId: string }
  | { readonly kind: "vm-hang"; readonly vmId: string }
  | { readonly kind: "guest-hang"; readonly vmId: string }
  | { readonly kind: "guest-recover"; readonly vmId: string }
  | { readonly kind: "maintenance"; readonly hostId: string; readonly on: boolean }
  | { readonly kind: "vm-add"; readonly vm: VmSpec }
  | { readonly kind: "vm-remove"; readonly vmId: string };

export type CommandKind = ScenarioCommand["kind"];

export interface TimedCommand {
  /** 1-based line in the commands file. */
  readonly line: number;
  readonly atMs: number;
  /** The command as written, without the time and comment, whitespace collapsed. */
  readonly text: string;
  readonly command: ScenarioCommand;
}

/** One thing wrong with a scenario file: `file:line: message`, or `file: message` when no line applies. */
export interface ScenarioProblem {
  readonly file: string;
  readonly line: number | undefined;
  readonly message: string;
}

export function formatProblem(problem: ScenarioProblem): string {
  return problem.line === undefined ? `${problem.file}: ${problem.message}` : `${problem.file}:${problem.line}: ${problem.message}`;
}

export interface Scenario {
  /** The directory's name. */
  readonly name: string;
  readonly cluster: ClusterSpec;
  readonly commands: readonly TimedCommand[];
  /** undefined when the directory has no expected.log yet. */
  readonly expectedLog: string | undefined;
}

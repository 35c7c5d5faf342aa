/**
 * Runs a scenario directory (docs/scenarios.md): builds a SimWorld from
 * cluster.json, assembles the cluster from the components it needs, applies
 * the commands at their virtual times, checks the components' invariants
 * throughout, and compares the run's log with expected.log.
 *
 * Never throws for anything a scenario says: problems come back in
 * `failures`, as `file:line: message` where a line is to blame. Same scenario
 * and seed → the same log, byte for byte.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { NodePorts } from "../../actors/ports/nodePorts.ts";
import type { LogFields } from "../../actors/ports/telemetry.ts";
import { SimWorld, worldLogSource, type ExtraPorts, type ExtraPortsContext, type RunningNode } from "../world.ts";
import type { ScenarioCapability } from "./capabilities.ts";
import { commandNeeds, minInvariantPeriodMs, neededCapabilities, type ClusterAssembly, type ComponentRun, type ScenarioComponent, type ScenarioInvariant, type ScenarioLogLine, type ScenarioRunContext } from "./clusterAssembly.ts";
import { defaultAssembly } from "./defaultAssembly.ts";
import { JsonObjectReader } from "./jsonObjectReader.ts";
import { loadScenario } from "./loadScenario.ts";
import { clusterNodeIds, expectedLogFileName, formatProblem, type ClusterSpec, type Scenario, type ScenarioCommand, type TimedCommand } from "./scenarioTypes.ts";
import { compressIds, formatDurationMs } from "./scenarioValues.ts";
import { TimelineRecorder } from "./timelineRecorder.ts";
import type { TimelineData } from "./timelineTypes.ts";
import { unifiedDiff } from "./unifiedDiff.ts";

/** Failures past this many are counted, not listed. */
export const maxReportedFailures = 50;
export const scenarioClusterId = "sim";

export interface RunScenarioOptions {
  /** Replaces the seed of cluster.json; the expected log is then not compared (it belongs to the scenario's own seed). */
  readonly seed?: number;
  /** Rewrite expected.log with this run's log (only for the scenario's own seed, and only when the run passed). */
  readonly update?: boolean;
  /** The components to assemble the cluster from; default: every component available today. */
  readonly assembly?: ClusterAssembly;
}

/**
 * - `matched`/`differs`: compared with expected.log.
 * - `missing`: there is no expected.log yet (a failure; `--update` writes one).
 * - `skipped`: another seed than the scenario's was asked for.
 * - `updated`: expected.log was rewritten.
 * - `not-run`: the scenario did not load or could not be assembled.
 */
export type ExpectedLogOutcome = "matched" | "differs" | "missing" | "skipped" | "updated" | "not-run";

export interface ScenarioResult {
  readonly ok: boolean;
  /** The scenario directory's name. */
  readonly name: string;
  readonly seed: number;
  /** The run's log, newline-terminated; what expected.log holds. */
  readonly log: string;
  /** Unified diff from expected.log to this run's log; "" when they match or were not compared. */
  readonly diff: string;
  readonly failures: readonly string[];
  readonly expectedLog: ExpectedLogOutcome;
  readonly virtualMs: number;
  readonly timeline: TimelineData;
}

/** What a run produced before any comparison: usable without files (tests, the fuzzer). */
export interface ScenarioRunOutput {
  readonly log: string;
  readonly failures: readonly string[];
  readonly virtualMs: number;
  readonly timeline: TimelineData;
  /** False when the scenario could not be assembled (nothing ran). */
  readonly ran: boolean;
}

class FailureList {
  readonly items: string[] = [];
  private extra = 0;

  add(message: string): void {
    if (this.items.length < maxReportedFailures) this.items.push(message);
    else this.extra++;
  }

  get count(): number {
    return this.items.length + this.extra;
  }

  list(): string[] {
    return this.extra > 0 ? [...this.items, `... ${this.extra} more failures`] : [...this.items];
  }
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function emptyTimeline(name: string, seed: number, cluster: ClusterSpec | undefined, failures: readonly string[]): TimelineData {
  return { title: name, seed, durationMs: cluster?.durationMs ?? 0, lanes: [], markers: [], logLines: [], failures };
}

/** `000012.345 node level event k=v…` → its parts; the node and event never contain spaces (validated ids, code constants). */
function splitLogLine(text: string): ScenarioLogLine {
  const parts = text.split(" ", 4);
  return { text, source: parts[1] ?? "", level: parts[2] ?? "", event: parts[3] ?? "" };
}

interface ResolvedComponents {
  readonly components: readonly ScenarioComponent[];
  readonly settings: ReadonlyMap<ScenarioComponent, unknown>;
}

/** Which components this scenario needs and their settings; every gap is a failure naming the line that caused it. */
function resolveComponents(scenario: Scenario, assembly: ClusterAssembly, failures: FailureList): ResolvedComponents | undefined {
  const { cluster } = scenario;
  const assembled = assembly.components().map((component) => component.name).join(", ") || "nothing";
  const wantedCapabilities = new Set<ScenarioCapability>();
  for (const need of neededCapabilities(cluster, scenario.commands)) {
    if (assembly.provider(need.capability)) {
      wantedCapabilities.add(need.capability);
      continue;
    }
    const where = need.line === undefined ? need.file : `${need.file}:${need.line}`;
    failures.add(`${where}: ${need.subject} needs the "${need.capability}" component, not available yet (assembled: ${assembled})`);
  }
  const started = new Set<ScenarioComponent>();
  const addWithUses = (component: ScenarioComponent) => {
    if (started.has(component)) return;
    started.add(component);
    for (const capability of component.uses ?? []) {
      const provider = assembly.provider(capability);
      if (provider) addWithUses(provider);
    }
  };
  for (const component of assembly.components()) {
    if (component.provides.some((capability) => wantedCapabilities.has(capability)) || component.wanted?.(cluster)) addWithUses(component);
  }

  const settings = new Map<ScenarioComponent, unknown>();
  const settingsProblem = (line: number | undefined, message: string) => failures.add(formatProblem({ file: "cluster.json", line, message }));
  for (const [name, node] of cluster.componentSettings) {
    if (!assembly.components().some((component) => component.name === name)) {
      settingsProblem(node.line, `components.${name}: no component named ${name} (assembled: ${assembled})`);
    }
  }
  // settings of every registered component are read, so a typo fails even in a scenario that does not start it
  for (const component of assembly.components()) {
    const reader = new JsonObjectReader(cluster.componentSettings.get(component.name), `components.${component.name}`, settingsProblem);
    const value = component.readSettings(reader);
    if (started.has(component)) settings.set(component, value);
  }
  for (const component of assembly.components()) {
    if (!started.has(component)) continue;
    for (const problem of component.checkCluster?.(cluster, settings.get(component)) ?? []) failures.add(`cluster.json: ${problem}`);
  }
  if (failures.count > 0) return undefined;
  return { components: assembly.components().filter((component) => started.has(component)), settings };
}

function mergeExtraPorts(runs: readonly { readonly name: string; readonly run: ComponentRun }[]): ((context: ExtraPortsContext) => ExtraPorts) | undefined {
  const factories = runs.filter(({ run }) => run.extraPorts !== undefined);
  if (factories.length === 0) return undefined;
  return (context) => {
    const merged: { stream?: ExtraPorts["stream"]; hypervisor?: ExtraPorts["hypervisor"] } = {};
    const from: Record<string, string> = {};
    for (const { name, run } of factories) {
      const ports = run.extraPorts!(context);
      for (const key of ["stream", "hypervisor"] as const) {
        if (ports[key] === undefined) continue;
        if (merged[key] !== undefined) throw new RangeError(`both ${from[key]} and ${name} provide the ${key} port of ${context.nodeId}`);
        from[key] = name;
        (merged as Record<string, unknown>)[key] = ports[key];
      }
    }
    return merged;
  };
}

/** Applies a world-level fault; component commands go to their handlers. */
function applyWorldCommand(world: SimWorld, command: ScenarioCommand, companions: (nodeId: string) => readonly string[]): void {
  switch (command.kind) {
    case "crash":
      for (const nodeId of command.nodeIds) world.crash(nodeId);
      return;
    case "restart":
      for (const nodeId of command.nodeIds) world.restart(nodeId);
      return;
    case "pause":
      for (const nodeId of command.nodeIds) world.pause(nodeId, command.durationMs);
      return;
    case "resume":
      for (const nodeId of command.nodeIds) world.resume(nodeId);
      return;
    case "partition":
      world.partition(command.groups.map((group) => group.flatMap((nodeId) => [nodeId, ...companions(nodeId)])));
      return;
    case "one-way":
      for (const from of command.from) for (const to of command.to) world.blockLink(from, to);
      return;
    case "one-way-restore":
      for (const from of command.from) for (const to of command.to) world.unblockLink(from, to);
      return;
    case "heal":
      world.heal();
      return;
    case "loss":
      world.setLoss(command.probability);
      return;
    case "dup":
      world.setDuplication(command.probability);
      return;
    case "latency":
      world.setLatency(command.latency);
      return;
    case "reorder":
      world.setReorder(command.reorder);
      return;
    case "skew":
      for (const nodeId of command.nodeIds) world.setClockSkew(nodeId, command.offsetMs, command.driftPpm);
      return;
    case "sync-latency":
      world.setSyncLatency(command.syncLatencyMs);
      return;
    case "torn-writes":
      world.setTornWrites(command.probability);
      return;
    default:
      throw new RangeError(`${command.kind} is not a world command`);
  }
}

/** Runs an already loaded scenario; touches no files. */
export function runLoadedScenario(scenario: Scenario, options: { readonly seed?: number; readonly assembly?: ClusterAssembly } = {}): ScenarioRunOutput {
  const { cluster } = scenario;
  const seed = options.seed ?? cluster.seed;
  const failures = new FailureList();
  const assembly = options.assembly ?? defaultAssembly();
  const resolved = resolveComponents(scenario, assembly, failures);
  if (!resolved) {
    const list = failures.list();
    return { log: "", failures: list, virtualMs: 0, timeline: emptyTimeline(scenario.name, seed, cluster, list), ran: false };
  }

  const runs: { name: string; run: ComponentRun }[] = [];
  const apis = new Map<ScenarioCapability, object>();
  const extraPorts: { factory?: (context: ExtraPortsContext) => ExtraPorts } = {};
  const world = new SimWorld({
    seed,
    clusterId: scenarioClusterId,
    network: {
      latency: cluster.network.latency,
      lossProbability: cluster.network.lossProbability,
      duplicationProbability: cluster.network.duplicationProbability,
      reorder: cluster.network.reorder,
    },
    // components start after the world exists; nodes (and so this factory's calls) come after both
    extraPorts: (context) => extraPorts.factory?.(context) ?? {},
  });
  const log = world.log;
  const nodeIds = clusterNodeIds(cluster);
  const controllers = new Set(cluster.controllerIds);
  const monitors = new Set(cluster.monitorIds);
  const kindOf = (nodeId: string) => (controllers.has(nodeId) ? "controller" : monitors.has(nodeId) ? "monitor" : "host");
  const recorder = new TimelineRecorder(
    nodeIds.map((id) => ({ id, kind: kindOf(id) })),
    () => world.now(),
  );
  world.onNodeLifecycle((event) => recorder.onLifecycle(event));

  const finishRun = (ran: boolean): ScenarioRunOutput => {
    const endMs = world.now();
    const componentsKeep = runs.map(({ run }) => run.keepLogLine).filter((keep) => keep !== undefined);
    const kept: string[] = [];
    for (const text of world.transcriptLines()) {
      const line = splitLogLine(text);
      const keep =
        line.source === worldLogSource ? line.event !== "add-node" : line.level === "warn" || line.level === "error" || componentsKeep.some((keepLine) => keepLine(line));
      if (keep) kept.push(text);
    }
    const list = failures.list();
    const lanes = recorder.lanes(endMs);
    for (const { run } of runs) lanes.push(...(run.timelineLanes?.() ?? []));
    const timeline: TimelineData = { title: scenario.name, seed, durationMs: cluster.durationMs, lanes, markers: recorder.commandMarkers(), logLines: kept, failures: list };
    return { log: kept.length > 0 ? `${kept.join("\n")}\n` : "", failures: list, virtualMs: endMs, timeline, ran };
  };

  const context: ScenarioRunContext = {
    world,
    cluster,
    log,
    api: <T>(capability: ScenarioCapability) => apis.get(capability) as T | undefined,
  };
  try {
    for (const component of resolved.components) {
      const run = component.start(context, resolved.settings.get(component));
      runs.push({ name: component.name, run });
      if (run.api) for (const capability of component.provides) apis.set(capability, run.api);
    }
  } catch (error) {
    failures.add(`a component failed to start: ${errorMessage(error)}`);
    return finishRun(false);
  }
  const mergedExtraPorts = mergeExtraPorts(runs);
  if (mergedExtraPorts) extraPorts.factory = mergedExtraPorts;
  const handlerOf = (command: ScenarioCommand) => {
    const capability = commandNeeds[command.kind];
    if (capability === undefined) return undefined;
    const provider = assembly.provider(capability)!;
    const run = runs.find(({ name }) => name === provider.name)?.run;
    return (run?.commands as Record<string, ((command: ScenarioCommand) => void) | undefined> | undefined)?.[command.kind];
  };
  for (const { line, command } of scenario.commands) {
    if (commandNeeds[command.kind] !== undefined && !handlerOf(command)) {
      failures.add(`commands:${line}: ${command.kind}: the ${assembly.provider(commandNeeds[command.kind]!)!.name} component has no handler for it yet`);
    }
  }
  if (failures.count > 0) return finishRun(false);

  log.write("info", "scenario.start", { seed, duration: formatDurationMs(cluster.durationMs) });
  const clusterFields: Record<string, string | number> = {};
  if (cluster.controllerIds.length > 0) clusterFields.controllers = compressIds(cluster.controllerIds);
  if (cluster.monitorIds.length > 0) clusterFields.monitors = compressIds(cluster.monitorIds);
  if (cluster.hosts.length > 0) clusterFields.hosts = compressIds(cluster.hosts.map((host) => host.hostId));
  if (cluster.vms.length > 0) clusterFields.vms = cluster.vms.length;
  log.write("info", "scenario.cluster", clusterFields);
  const network = cluster.network;
  log.write("info", "scenario.network", {
    latency: `${formatDurationMs(network.latency.baseMs)}+${formatDurationMs(network.latency.jitterMs)}`,
    loss: network.lossProbability,
    duplication: network.duplicationProbability,
    reorder: network.reorder.fraction,
  });

  try {
    for (const nodeId of nodeIds) {
      const roles = { controller: controllers.has(nodeId), monitor: monitors.has(nodeId), host: !controllers.has(nodeId) && !monitors.has(nodeId) };
      world.addNode(nodeId, (ports: NodePorts): RunningNode => {
        const running: RunningNode[] = [];
        for (const { run } of runs) {
          if (roles.controller && run.bootController) running.push(run.bootController(ports));
          if (roles.monitor && run.bootMonitor) running.push(run.bootMonitor(ports));
          if (roles.host && run.bootHost) running.push(run.bootHost(ports));
        }
        return { stop: () => [...running].reverse().forEach((node) => node.stop()) };
      });
    }
  } catch (error) {
    failures.add(`the cluster failed to boot: ${errorMessage(error)}`);
    return finishRun(true);
  }

  const invariants = runs.flatMap(({ name, run }) => (run.invariants ?? []).map((invariant) => ({ component: name, invariant })));
  const violated = new Map<string, Set<string>>();
  let violations = 0;
  const checkInvariant = (invariant: ScenarioInvariant) => {
    const active = violated.get(invariant.name) ?? new Set<string>();
    violated.set(invariant.name, active);
    const now = new Set<string>();
    try {
      invariant.check(world.now(), (subject, detail) => {
        now.add(subject);
        if (active.has(subject)) return;
        violations++;
        const fields: LogFields = { name: invariant.name, subject, detail };
        log.write("error", "invariant.violated", fields);
        failures.add(`${formatDurationMs(world.now())}: invariant ${invariant.name} broken for ${subject}: ${detail}`);
      });
    } catch (error) {
      failures.add(`${formatDurationMs(world.now())}: invariant ${invariant.name} could not be checked: ${errorMessage(error)}`);
    }
    for (const subject of active) if (!now.has(subject)) log.write("info", "invariant.restored", { name: invariant.name, subject });
    violated.set(invariant.name, now);
  };
  for (const { invariant } of invariants) {
    const periodMs = Math.max(minInvariantPeriodMs, invariant.everyMs);
    const tick = () => {
      checkInvariant(invariant);
      if (world.now() + periodMs <= cluster.durationMs) world.schedule(periodMs, tick);
    };
    if (periodMs <= cluster.durationMs) world.schedule(periodMs, tick);
  }

  const companionsOf = (nodeId: string) => runs.flatMap(({ run }) => run.companions?.(nodeId) ?? []);
  const runCommand = (timed: TimedCommand): boolean => {
    log.write("info", "scenario.command", { line: timed.line, text: timed.text });
    try {
      const handler = handlerOf(timed.command);
      if (handler) handler(timed.command);
      else applyWorldCommand(world, timed.command, companionsOf);
      recorder.onCommand(timed.command, timed.line, timed.text);
      return true;
    } catch (error) {
      if (cluster.refusedCommands === "skip") {
        log.write("info", "scenario.command-skipped", { line: timed.line, reason: errorMessage(error) });
        return true;
      }
      failures.add(`commands:${timed.line}: ${timed.text} at ${formatDurationMs(timed.atMs)} failed: ${errorMessage(error)}`);
      log.write("error", "scenario.command-failed", { line: timed.line, reason: errorMessage(error) });
      return false;
    }
  };

  try {
    let stopped = false;
    for (const timed of scenario.commands) {
      world.runUntil(timed.atMs);
      if (!runCommand(timed)) {
        stopped = true;
        break;
      }
    }
    if (!stopped) {
      world.runUntil(cluster.durationMs);
      for (const { invariant } of invariants) checkInvariant(invariant);
    }
  } catch (error) {
    failures.add(`the run stopped at ${formatDurationMs(world.now())}: ${errorMessage(error)}`);
    log.write("error", "scenario.aborted", { reason: errorMessage(error) });
  }

  for (const { name, run } of runs) {
    try {
      run.finish?.();
    } catch (error) {
      failures.add(`the ${name} component failed to finish: ${errorMessage(error)}`);
    }
  }
  const counters = world.networkCounters();
  log.write("info", "scenario.messages", {
    sent: counters.sent,
    delivered: counters.delivered,
    lost: counters.lost,
    duplicated: counters.duplicated,
    partitioned: counters.partitioned,
    droppedCrashed: counters.droppedCrashed,
    droppedPaused: counters.droppedPaused,
  });
  const states = { up: 0, paused: 0, crashed: 0 };
  for (const nodeId of nodeIds) states[world.nodeState(nodeId)]++;
  log.write("info", "scenario.end", { ...states, violations });
  return finishRun(true);
}

function notRun(directory: string, seed: number, failures: string[]): ScenarioResult {
  const name = directory.split(/[\\/]/).filter(Boolean).pop() ?? directory;
  return { ok: false, name, seed, log: "", diff: "", failures, expectedLog: "not-run", virtualMs: 0, timeline: emptyTimeline(name, seed, undefined, failures) };
}

/** Loads, runs and compares a scenario directory (the `haring sim run <dir>` command). Never throws. */
export function runScenario(directory: string, options: RunScenarioOptions = {}): ScenarioResult {
  try {
    return loadRunAndCompare(directory, options);
  } catch (error) {
    // a bug in a component or in the runner, not in the scenario: still one clear failure, not a stack trace
    return notRun(directory, options.seed ?? 0, [`internal error while running the scenario: ${errorMessage(error)}`]);
  }
}

function loadRunAndCompare(directory: string, options: RunScenarioOptions): ScenarioResult {
  const loaded = loadScenario(directory);
  if (!loaded.ok) return notRun(directory, options.seed ?? 0, loaded.problems.map(formatProblem));
  const scenario = loaded.value;
  const seed = options.seed ?? scenario.cluster.seed;
  const runOptions = options.assembly ? { seed, assembly: options.assembly } : { seed };
  const output = runLoadedScenario(scenario, runOptions);
  const failures = [...output.failures];
  const finish = (expectedLog: ExpectedLogOutcome, diff: string): ScenarioResult => ({
    ok: failures.length === 0,
    name: scenario.name,
    seed,
    log: output.log,
    diff,
    failures,
    expectedLog,
    virtualMs: output.virtualMs,
    timeline: { ...output.timeline, failures },
  });
  if (!output.ran) return finish("not-run", "");
  if (options.update) {
    if (seed !== scenario.cluster.seed) {
      failures.push(`expected.log not updated: it holds the log of the scenario's seed ${scenario.cluster.seed}; run --update without --seed, or change "seed" in cluster.json`);
      return finish("skipped", "");
    }
    if (failures.length > 0) {
      failures.push("expected.log not updated because the run failed");
      return finish("not-run", "");
    }
    try {
      writeFileSync(join(directory, expectedLogFileName), output.log);
    } catch (error) {
      failures.push(`expected.log could not be written: ${errorMessage(error)}`);
    }
    return finish("updated", "");
  }
  if (seed !== scenario.cluster.seed) return finish("skipped", "");
  if (scenario.expectedLog === undefined) {
    failures.push("expected.log is missing: check the log and write it with --update");
    return finish("missing", unifiedDiff("", output.log, { expectedName: `${scenario.name}/${expectedLogFileName} (missing)`, actualName: `${scenario.name} (this run)` }));
  }
  const diff = unifiedDiff(scenario.expectedLog, output.log, { expectedName: `${scenario.name}/${expectedLogFileName}`, actualName: `${scenario.name} (this run, seed ${seed})` });
  if (diff !== "") {
    const changed = diff.split("\n").filter((line) => (line.startsWith("+") || line.startsWith("-")) && !line.startsWith("+++") && !line.startsWith("---")).length;
    failures.push(`the log differs from expected.log (${changed} lines changed; see the diff, or accept the new log with --update)`);
    return finish("differs", diff);
  }
  return finish("matched", "");
}

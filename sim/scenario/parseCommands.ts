/**
 * The commands file → timed commands. One command a line:
 *
 *     <time> <command> [args]      # a comment
 *
 * `<time>` is absolute from the start of the run (`2s`, `1500ms`, `0`) or
 * relative to the previous command (`+500ms`); times never go backwards, and
 * commands at one time run in file order. Every node, VM and host named is
 * checked against the cluster here, so a typo fails before the run starts;
 * whether a node is in a state that allows the command (restart needs a
 * crashed node) is checked by the world when the command runs.
 */
import { maxCpuPerEntity, maxMemoryMiBPerEntity, vmPriorities, type VmPriority } from "../../machines/view/viewTypes.ts";
import { maxClockDriftPpm, maxClockOffsetMs } from "../nodeClock.ts";
import { maxLinkLatencyMs } from "../simNetwork.ts";
import { maxSyncLatencyMs } from "../world.ts";
import { expandIdList, maxReportedProblems, parseLatencyText, type ParseResult } from "./parseCluster.ts";
import {
  clusterNodeIds,
  commandsFileName,
  defaultVmResources,
  maxScenarioDurationMs,
  type ClusterSpec,
  type ScenarioCommand,
  type ScenarioProblem,
  type TimedCommand,
  type VirtType,
} from "./scenarioTypes.ts";
import { formatDurationMs, isNodeOrVmId, parseDurationMs, parsePercent, parsePpm, parseSignedDurationMs } from "./scenarioValues.ts";

export const maxCommands = 10_000;
export const maxCommandLineLength = 4_096;
export const maxCommandFileLines = 100_000;

/** The grammar of each command, for error messages and docs/scenarios.md. */
export const commandSyntax: Readonly<Record<ScenarioCommand["kind"], string>> = {
  crash: "crash <nodes>",
  restart: "restart <nodes>",
  pause: "pause <nodes> [<duration>]",
  resume: "resume <nodes>",
  partition: "partition <nodes> | <nodes> [| …]  (rest = every other node)",
  "one-way": "one-way <nodes> -> <nodes>",
  "one-way-restore": "one-way-restore <nodes> -> <nodes>",
  heal: "heal",
  loss: "loss <percent>",
  dup: "dup <percent>",
  latency: "latency <base> [<jitter>]",
  reorder: "reorder <percent> <max extra delay>",
  skew: "skew <nodes> <±offset> [<drift>ppm]",
  "sync-latency": "sync-latency <duration>",
  "torn-writes": "torn-writes <percent>",
  "nats-loss": "nats-loss",
  "nats-restore": "nats-restore",
  "vm-crash": "vm-crash <vm>",
  "vm-hang": "vm-hang <vm>",
  "guest-hang": "guest-hang <vm>",
  "guest-recover": "guest-recover <vm>",
  maintenance: "maintenance <host> on|off",
  "vm-add": "vm-add <vm> [host=<host>] [cpu=<n>] [memoryMiB=<n>] [priority=high|medium|low] [virt=full|para]",
  "vm-remove": "vm-remove <vm>",
};

const aliases: Readonly<Record<string, ScenarioCommand["kind"]>> = { duplication: "dup", "partition-one-way": "one-way" };

function isCommandKind(name: string): name is ScenarioCommand["kind"] {
  return Object.hasOwn(commandSyntax, name);
}

class CommandProblem {
  constructor(readonly message: string) {}
}

function problem(message: string): never {
  throw new CommandProblem(message);
}

/** What the parser knows about the cluster while it reads: which VMs exist changes with vm-add and vm-remove. */
interface ParseContext {
  readonly cluster: ClusterSpec;
  readonly nodeIds: readonly string[];
  readonly nodeIdSet: ReadonlySet<string>;
  readonly hostIds: ReadonlySet<string>;
  readonly vmIds: Set<string>;
}

/** `h1-h3,m1`, `hosts`, `monitors`, `controllers`, `all` → node ids, each checked against the cluster. */
function resolveNodes(text: string, context: ParseContext, what = "nodes"): string[] {
  if (text === "") problem(`expected ${what} (ids, ranges like h1-h5, or hosts/monitors/controllers/all)`);
  const ids: string[] = [];
  for (const rawItem of text.split(",")) {
    const item = rawItem.trim();
    const selected =
      item === "all"
        ? context.nodeIds
        : item === "hosts"
          ? context.cluster.hosts.map((host) => host.hostId)
          : item === "monitors"
            ? context.cluster.monitorIds
            : item === "controllers"
              ? context.cluster.controllerIds
              : undefined;
    if (selected) {
      if (selected.length === 0) problem(`"${item}" selects no node in this cluster`);
      ids.push(...selected);
      continue;
    }
    if (item === "rest") problem(`"rest" only makes sense as a whole group of a partition`);
    const expanded = expandIdList(item, context.nodeIds.length);
    if ("problem" in expanded) problem(expanded.problem);
    for (const id of expanded.ids) {
      if (!context.nodeIdSet.has(id)) problem(`${id} is not a node of this cluster`);
      ids.push(id);
    }
  }
  if (new Set(ids).size !== ids.length) problem(`a node is named twice in ${JSON.stringify(text)}`);
  return ids;
}

function requireArgs(args: readonly string[], min: number, max: number, kind: ScenarioCommand["kind"]): void {
  if (args.length < min || args.length > max) {
    problem(`${kind} takes ${min === max ? min : `${min} to ${max}`} argument${max === 1 ? "" : "s"}: ${commandSyntax[kind]}`);
  }
}

function percentArg(text: string | undefined, kind: ScenarioCommand["kind"]): number {
  const value = text === undefined ? undefined : parsePercent(text);
  if (value === undefined) problem(`expected a percentage like 5% (0% to 100%) after ${kind}, got ${JSON.stringify(text ?? "")}`);
  return value;
}

function durationArg(text: string | undefined, what: string, maxMs: number): number {
  const value = text === undefined ? undefined : parseDurationMs(text);
  if (value === undefined || value > maxMs) problem(`expected ${what} like 3s or 500ms (at most ${formatDurationMs(maxMs)}), got ${JSON.stringify(text ?? "")}`);
  return value;
}

function vmArg(text: string | undefined, context: ParseContext, kind: ScenarioCommand["kind"]): string {
  if (text === undefined || !isNodeOrVmId(text)) problem(`expected a VM id after ${kind}, got ${JSON.stringify(text ?? "")}`);
  if (!context.vmIds.has(text)) problem(`${text} is not a VM of this cluster at this point (VMs come from cluster.json and vm-add)`);
  return text;
}

/** `a,b | c | rest` → groups of node ids; rest is every node not named in another group. */
function parsePartition(argsText: string, context: ParseContext): string[][] {
  const parts = argsText.split("|").map((part) => part.trim());
  if (parts.length < 2) problem(`a partition needs at least two groups separated by |: ${commandSyntax.partition}`);
  const restIndex = parts.indexOf("rest");
  if (parts.lastIndexOf("rest") !== restIndex) problem(`"rest" may be only one group`);
  const groups: (string[] | undefined)[] = parts.map((part, index) => (index === restIndex ? undefined : resolveNodes(part, context, `nodes in group ${index + 1}`)));
  const seen = new Set<string>();
  for (const group of groups) {
    for (const id of group ?? []) {
      if (seen.has(id)) problem(`${id} is in two groups of the partition`);
      seen.add(id);
    }
  }
  if (restIndex >= 0) {
    const rest = context.nodeIds.filter((id) => !seen.has(id));
    if (rest.length === 0) problem(`"rest" is empty: every node is already in another group`);
    groups[restIndex] = rest;
  }
  return groups as string[][];
}

function parseDirected(argsText: string, context: ParseContext, kind: "one-way" | "one-way-restore"): { from: string[]; to: string[] } {
  const parts = argsText.split("->").map((part) => part.trim());
  if (parts.length !== 2) problem(`expected ${commandSyntax[kind]}`);
  const from = resolveNodes(parts[0]!, context, "nodes before ->");
  const to = resolveNodes(parts[1]!, context, "nodes after ->");
  const both = from.find((id) => to.includes(id));
  if (both !== undefined) problem(`${both} is on both sides of ->`);
  return { from, to };
}

function parseVmAdd(args: readonly string[], context: ParseContext): ScenarioCommand {
  const vmId = args[0];
  if (vmId === undefined || !isNodeOrVmId(vmId)) problem(`expected a new VM id after vm-add: ${commandSyntax["vm-add"]}`);
  if (context.vmIds.has(vmId) || context.nodeIdSet.has(vmId)) problem(`${vmId} already exists`);
  const fields = new Map<string, string>();
  for (const arg of args.slice(1)) {
    const match = /^([A-Za-z]+)=(.+)$/.exec(arg);
    if (!match) problem(`expected key=value after the VM id, got ${JSON.stringify(arg)}: ${commandSyntax["vm-add"]}`);
    const [, key, value] = match as unknown as [string, string, string];
    if (!["host", "cpu", "memoryMiB", "priority", "virt"].includes(key)) problem(`unknown vm-add field ${key}: ${commandSyntax["vm-add"]}`);
    if (fields.has(key)) problem(`${key} is given twice`);
    fields.set(key, value);
  }
  const wholeNumber = (key: string, fallback: number, max: number): number => {
    const text = fields.get(key);
    if (text === undefined) return fallback;
    if (!/^\d{1,10}$/.test(text) || Number(text) < 1 || Number(text) > max) problem(`${key} must be a whole number from 1 to ${max}, got ${JSON.stringify(text)}`);
    return Number(text);
  };
  const hostId = fields.get("host");
  if (hostId !== undefined && !context.hostIds.has(hostId)) problem(`host ${hostId} is not a host of this cluster`);
  const priority = fields.get("priority") ?? "medium";
  if (!(vmPriorities as readonly string[]).includes(priority)) problem(`priority must be high, medium or low, got ${JSON.stringify(priority)}`);
  const virt = fields.get("virt") ?? "full";
  if (virt !== "full" && virt !== "para") problem(`virt must be full or para, got ${JSON.stringify(virt)}`);
  context.vmIds.add(vmId);
  return {
    kind: "vm-add",
    vm: {
      vmId,
      hostId,
      resources: { cpu: wholeNumber("cpu", defaultVmResources.cpu, maxCpuPerEntity), memoryMiB: wholeNumber("memoryMiB", defaultVmResources.memoryMiB, maxMemoryMiBPerEntity) },
      priority: priority as VmPriority,
      virt: virt as VirtType,
    },
  };
}

function parseCommand(kind: ScenarioCommand["kind"], args: readonly string[], argsText: string, context: ParseContext): ScenarioCommand {
  switch (kind) {
    case "crash":
    case "restart":
    case "resume":
      requireArgs(args, 1, 1, kind);
      return { kind, nodeIds: resolveNodes(args[0]!, context) };
    case "pause":
      requireArgs(args, 1, 2, kind);
      return { kind, nodeIds: resolveNodes(args[0]!, context), durationMs: args.length === 2 ? durationArg(args[1], "a pause duration", maxScenarioDurationMs) : undefined };
    case "partition":
      return { kind, groups: parsePartition(argsText, context) };
    case "one-way":
    case "one-way-restore":
      return { kind, ...parseDirected(argsText, context, kind) };
    case "heal":
    case "nats-loss":
    case "nats-restore":
      requireArgs(args, 0, 0, kind);
      return { kind };
    case "loss":
    case "dup":
    case "torn-writes":
      requireArgs(args, 1, 1, kind);
      return { kind, probability: percentArg(args[0], kind) };
    case "latency": {
      requireArgs(args, 1, 2, kind);
      const latency = parseLatencyText(argsText);
      if (latency === undefined) problem(`expected ${commandSyntax.latency} with durations like 5ms (each at most ${formatDurationMs(maxLinkLatencyMs)}), got ${JSON.stringify(argsText)}`);
      return { kind, latency };
    }
    case "reorder":
      requireArgs(args, 2, 2, kind);
      return { kind, reorder: { fraction: percentArg(args[0], kind), maxExtraDelayMs: durationArg(args[1], "a maximum extra delay", maxLinkLatencyMs) } };
    case "skew": {
      requireArgs(args, 2, 3, kind);
      const nodeIds = resolveNodes(args[0]!, context);
      const offsetMs = parseSignedDurationMs(args[1]!);
      if (offsetMs === undefined || Math.abs(offsetMs) > maxClockOffsetMs) problem(`expected a clock offset like +200ms or -1s (at most a day), got ${JSON.stringify(args[1])}`);
      const driftPpm = args.length === 3 ? parsePpm(args[2]!) : 0;
      if (driftPpm === undefined || Math.abs(driftPpm) > maxClockDriftPpm) problem(`expected a drift like 50ppm or -20ppm (at most ${maxClockDriftPpm}ppm), got ${JSON.stringify(args[2])}`);
      return { kind, nodeIds, offsetMs, driftPpm };
    }
    case "sync-latency":
      requireArgs(args, 1, 1, kind);
      return { kind, syncLatencyMs: durationArg(args[0], "an fsync latency", maxSyncLatencyMs) };
    case "vm-crash":
    case "vm-hang":
    case "guest-hang":
    case "guest-recover":
      requireArgs(args, 1, 1, kind);
      return { kind, vmId: vmArg(args[0], context, kind) };
    case "vm-remove": {
      requireArgs(args, 1, 1, kind);
      const vmId = vmArg(args[0], context, kind);
      context.vmIds.delete(vmId);
      return { kind, vmId };
    }
    case "maintenance": {
      requireArgs(args, 2, 2, kind);
      const hostId = args[0]!;
      if (!context.hostIds.has(hostId)) problem(`${hostId} is not a host of this cluster`);
      if (args[1] !== "on" && args[1] !== "off") problem(`expected on or off after maintenance ${hostId}, got ${JSON.stringify(args[1])}`);
      return { kind, hostId, on: args[1] === "on" };
    }
    case "vm-add":
      return parseVmAdd(args, context);
  }
}

export function parseCommands(text: string, cluster: ClusterSpec, file = commandsFileName): ParseResult<TimedCommand[]> {
  const problems: ScenarioProblem[] = [];
  const report = (line: number | undefined, message: string) => {
    if (problems.length < maxReportedProblems) problems.push({ file, line, message });
    else if (problems.length === maxReportedProblems) problems.push({ file, line: undefined, message: "more problems not shown" });
  };
  const lines = text.split("\n");
  if (lines.length > maxCommandFileLines) return { ok: false, problems: [{ file, line: undefined, message: `more than ${maxCommandFileLines} lines` }] };
  const nodeIds = clusterNodeIds(cluster);
  const context: ParseContext = {
    cluster,
    nodeIds,
    nodeIdSet: new Set(nodeIds),
    hostIds: new Set(cluster.hosts.map((host) => host.hostId)),
    vmIds: new Set(cluster.vms.map((vm) => vm.vmId)),
  };
  const commands: TimedCommand[] = [];
  let previousAtMs = 0;
  lines.forEach((rawLine, index) => {
    const line = index + 1;
    if (rawLine.length > maxCommandLineLength) {
      report(line, `the line is longer than ${maxCommandLineLength} characters`);
      return;
    }
    const hash = rawLine.indexOf("#");
    const content = (hash >= 0 ? rawLine.slice(0, hash) : rawLine).trim();
    if (content === "") return;
    const tokens = content.split(/\s+/);
    const timeText = tokens[0]!;
    const relative = timeText.startsWith("+");
    const timeMs = parseDurationMs(relative ? timeText.slice(1) : timeText);
    if (timeMs === undefined) {
      report(line, `expected a time like 2s, 1500ms or +500ms at the start of the line, got ${JSON.stringify(timeText)}`);
      return;
    }
    const atMs = relative ? previousAtMs + timeMs : timeMs;
    if (atMs < previousAtMs) {
      report(line, `time ${timeText} is before the previous command's ${formatDurationMs(previousAtMs)}; commands are in time order`);
      return;
    }
    if (atMs > cluster.durationMs) {
      report(line, `time ${formatDurationMs(atMs)} is after the end of the run (duration ${formatDurationMs(cluster.durationMs)} in cluster.json)`);
      return;
    }
    const name = tokens[1];
    if (name === undefined) {
      report(line, `expected a command after the time ${timeText}`);
      return;
    }
    const kind = isCommandKind(name) ? name : aliases[name];
    if (kind === undefined) {
      report(line, `unknown command ${JSON.stringify(name)}; known: ${Object.keys(commandSyntax).join(", ")}`);
      return;
    }
    const args = tokens.slice(2);
    const argsText = args.join(" ");
    try {
      const command = parseCommand(kind, args, argsText, context);
      if (commands.length >= maxCommands) {
        report(line, `more than ${maxCommands} commands`);
        return;
      }
      commands.push({ line, atMs, text: [name, ...args].join(" "), command });
      previousAtMs = atMs;
    } catch (error) {
      if (!(error instanceof CommandProblem)) throw error;
      report(line, `${name}: ${error.message}`);
    }
  });
  return problems.length > 0 ? { ok: false, problems } : { ok: true, value: commands };
}

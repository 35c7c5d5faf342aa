/**
 * cluster.json → ClusterSpec. Every problem is collected (not only the first)
 * with the line it is on; the result is a spec only when there were none.
 */
import { maxControllers, maxCpuPerEntity, maxHosts, maxMemoryMiBPerEntity, maxRuleTargets, maxVms, vmPriorities, type Resources } from "../../machines/view/viewTypes.ts";
import { maxLinkLatencyMs } from "../simNetwork.ts";
import { isScenarioCapability, knownCapabilities } from "./capabilities.ts";
import { describeJsonNode, parseJsonDocument, type JsonNode } from "./jsonDocument.ts";
import { JsonObjectReader, joinPath, type ReportProblem } from "./jsonObjectReader.ts";
import {
  clusterFileName,
  defaultHostCapacity,
  defaultScenarioSeed,
  defaultVmResources,
  maxDescriptionLength,
  maxHostLabels,
  maxLabelLength,
  maxRequiredCapabilities,
  maxScenarioDurationMs,
  maxScenarioMonitors,
  maxScenarioRules,
  reservedIds,
  type ClusterSpec,
  type HostSpec,
  type NetworkSpec,
  type RefusedCommandPolicy,
  type RuleSpec,
  type ScenarioProblem,
  type VmSpec,
} from "./scenarioTypes.ts";
import { expandIdRange, isNodeOrVmId, parseDurationMs, parsePercent } from "./scenarioValues.ts";
import { defaultLatency } from "../simNetwork.ts";

export type ParseResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly problems: readonly ScenarioProblem[] };

/** Errors past this many are summarised: a wrong file should not drown its first mistakes. */
export const maxReportedProblems = 50;

/** A comma list of ids and ranges (`h1-h4,h9`) → ids, or a problem. */
export function expandIdList(text: string, maxIds: number): { ids: string[] } | { problem: string } {
  const ids: string[] = [];
  for (const rawItem of text.split(",")) {
    const item = rawItem.trim();
    if (item === "") return { problem: `an empty item in the list ${JSON.stringify(text)}` };
    const range = expandIdRange(item, maxIds);
    if (range && !range.ok) return { problem: range.problem };
    if (range) ids.push(...range.ids);
    else if (isNodeOrVmId(item)) ids.push(item);
    else return { problem: `${JSON.stringify(item)} is not an id (1-64 of A-Z a-z 0-9 _ -) or a range like h1-h50` };
    if (ids.length > maxIds) return { problem: `more than ${maxIds} ids` };
  }
  return { ids };
}

export function parseCluster(text: string, file = clusterFileName): ParseResult<ClusterSpec> {
  const problems: ScenarioProblem[] = [];
  const report: ReportProblem = (line, message) => {
    if (problems.length < maxReportedProblems) problems.push({ file, line, message });
    else if (problems.length === maxReportedProblems) problems.push({ file, line: undefined, message: "more problems not shown" });
  };
  const document = parseJsonDocument(text);
  if (!document.ok) return { ok: false, problems: [{ file, line: document.line, message: `${document.message} (column ${document.column})` }] };

  const root = new JsonObjectReader(document.root, "", report);
  if (!root.isObject) return { ok: false, problems };
  const lineOf = new Map<string, number>();
  if (document.root.kind === "object") for (const [key, node] of document.root.entries) lineOf.set(key, node.line);

  const description = root.string("description", { maxLength: maxDescriptionLength, fallback: "" });
  const seed = root.integer("seed", { min: 0, max: 2 ** 32 - 1, fallback: defaultScenarioSeed });
  const durationMs = root.duration("duration", { min: 1, max: maxScenarioDurationMs, fallback: 0, isRequired: true });
  const requires = readRequires(root, report);
  const refusedCommands = root.string("refusedCommands", { maxLength: 8, fallback: "fail", pattern: /^(fail|skip)$/, expected: '"fail" or "skip"' }) as RefusedCommandPolicy;

  const definedIds = new Map<string, string>();
  const define = (id: string, kind: string, node: JsonNode | undefined, path: string): boolean => {
    if (reservedIds.has(id)) {
      report(node?.line, `${path}: "${id}" is a reserved word in commands (${[...reservedIds].join(", ")}); pick another id`);
      return false;
    }
    const earlier = definedIds.get(id);
    if (earlier !== undefined) {
      report(node?.line, `${path}: ${id} is already defined as a ${earlier}`);
      return false;
    }
    definedIds.set(id, kind);
    return true;
  };

  const controllerIds = readIdList(root, "controllers", maxControllers, report).filter((id) => define(id, "controller", root.optional("controllers"), "controllers"));
  const monitorIds: string[] = [];
  for (const id of readIdList(root, "monitors", maxScenarioMonitors, report)) {
    // a monitor may run on a controller node (ARCHITECTURE §1); it is then the same node
    if (definedIds.get(id) === "controller") monitorIds.push(id);
    else if (define(id, "monitor", root.optional("monitors"), "monitors")) monitorIds.push(id);
  }
  if (new Set(monitorIds).size !== monitorIds.length) report(lineOf.get("monitors"), "monitors: an id appears twice");
  const hosts = readHosts(root, report, define);
  const hostIds = new Set(hosts.map((host) => host.hostId));
  const vms = readVms(root, report, define, hostIds);
  const rules = readRules(root, report, new Set(vms.map((vm) => vm.vmId)));
  const network = readNetwork(root, report);
  const componentSettings = readComponents(root, report);
  root.finish();

  if (problems.length > 0) return { ok: false, problems };
  return {
    ok: true,
    value: { description, seed, durationMs, requires, refusedCommands, controllerIds, monitorIds, hosts, vms, rules, network, componentSettings, lineOf },
  };
}

function readRequires(root: JsonObjectReader, report: ReportProblem): string[] {
  const node = root.optional("requires");
  if (node === undefined) return [];
  if (node.kind !== "array" || node.items.length > maxRequiredCapabilities) {
    report(node.line, `requires: expected a list of at most ${maxRequiredCapabilities} capability names, got ${describeJsonNode(node)}`);
    return [];
  }
  const names: string[] = [];
  node.items.forEach((item, index) => {
    if (item.kind === "string" && isScenarioCapability(item.value)) names.push(item.value);
    else report(item.line, `requires[${index}]: expected one of ${knownCapabilities.join(", ")}, got ${describeJsonNode(item)}`);
  });
  return names;
}

/** `"m1-m3"`, `"m1,m2"` or `["m1", "c1-c3"]`. */
function readIdList(root: JsonObjectReader, key: string, maxIds: number, report: ReportProblem): string[] {
  const node = root.optional(key);
  if (node === undefined) return [];
  const items = node.kind === "array" ? node.items : [node];
  const ids: string[] = [];
  items.forEach((item, index) => {
    const path = node.kind === "array" ? `${key}[${index}]` : key;
    if (item.kind !== "string") {
      report(item.line, `${path}: expected an id or a range like "h1-h50" in quotes, got ${describeJsonNode(item)}`);
      return;
    }
    const expanded = expandIdList(item.value, maxIds);
    if ("problem" in expanded) report(item.line, `${path}: ${expanded.problem}`);
    else ids.push(...expanded.ids);
  });
  if (ids.length > maxIds) {
    report(node.line, `${key}: ${ids.length} ids, at most ${maxIds}`);
    return ids.slice(0, maxIds);
  }
  return ids;
}

function readResources(parent: JsonObjectReader, key: string, fallback: Resources, report: ReportProblem): Resources {
  const node = parent.optional(key);
  if (node === undefined) return fallback;
  const reader = new JsonObjectReader(node, joinPath(parent.path, key), report);
  const cpu = reader.integer("cpu", { min: 1, max: maxCpuPerEntity, fallback: fallback.cpu, isRequired: true });
  const memoryMiB = reader.integer("memoryMiB", { min: 1, max: maxMemoryMiBPerEntity, fallback: fallback.memoryMiB, isRequired: true });
  reader.finish();
  return { cpu, memoryMiB };
}

type DefineId = (id: string, kind: string, node: JsonNode | undefined, path: string) => boolean;

function readEntries(root: JsonObjectReader, key: string, report: ReportProblem): readonly JsonNode[] {
  const node = root.optional(key);
  if (node === undefined) return [];
  if (node.kind !== "array") {
    report(node.line, `${key}: expected a list [ {…}, … ], got ${describeJsonNode(node)}`);
    return [];
  }
  return node.items;
}

/** The `id` field of a host or VM entry: one id or a range. */
function readEntryIds(reader: JsonObjectReader, maxIds: number): { ids: string[]; node: JsonNode | undefined } {
  const node = reader.required("id", 'an id like "h1" or a range like "h1-h50"');
  if (node === undefined) return { ids: [], node };
  if (node.kind !== "string") {
    reader.problem(node, "id", `expected an id or a range in quotes, got ${describeJsonNode(node)}`);
    return { ids: [], node };
  }
  const range = expandIdRange(node.value, maxIds);
  if (range && !range.ok) reader.problem(node, "id", range.problem);
  else if (range) return { ids: [...range.ids], node };
  else if (isNodeOrVmId(node.value)) return { ids: [node.value], node };
  else reader.problem(node, "id", `${describeJsonNode(node)} is not an id (1-64 of A-Z a-z 0-9 _ -) or a range like h1-h50`);
  return { ids: [], node };
}

function readHosts(root: JsonObjectReader, report: ReportProblem, define: DefineId): HostSpec[] {
  const hosts: HostSpec[] = [];
  readEntries(root, "hosts", report).forEach((entry, index) => {
    const reader = new JsonObjectReader(entry, `hosts[${index}]`, report);
    if (!reader.isObject) return;
    const { ids, node } = readEntryIds(reader, maxHosts);
    const capacity = readResources(reader, "capacity", defaultHostCapacity, report);
    const labels = new Map<string, string>();
    const labelsNode = reader.optional("labels");
    if (labelsNode !== undefined) {
      if (labelsNode.kind !== "object" || labelsNode.entries.size > maxHostLabels) {
        reader.problem(labelsNode, "labels", `expected an object of at most ${maxHostLabels} "name": "value" strings, got ${describeJsonNode(labelsNode)}`);
      } else {
        for (const [name, value] of labelsNode.entries) {
          if (!isNodeOrVmId(name) || value.kind !== "string" || value.value.length > maxLabelLength || value.value.length === 0) {
            report(value.line, `hosts[${index}].labels.${name}: expected a label name of A-Z a-z 0-9 _ - and a value of 1-${maxLabelLength} characters, got ${describeJsonNode(value)}`);
          } else labels.set(name, value.value);
        }
      }
    }
    const liveMigrationNode = reader.optional("liveMigration");
    let liveMigration = false;
    if (liveMigrationNode !== undefined) {
      if (liveMigrationNode.kind === "boolean") liveMigration = liveMigrationNode.value;
      else reader.problem(liveMigrationNode, "liveMigration", `expected true or false, got ${describeJsonNode(liveMigrationNode)}`);
    }
    reader.finish();
    for (const hostId of ids) {
      if (!define(hostId, "host", node, `hosts[${index}].id`)) continue;
      if (hosts.length >= maxHosts) {
        report(entry.line, `hosts: more than ${maxHosts} hosts`);
        return;
      }
      hosts.push({ hostId, capacity, labels, liveMigration });
    }
  });
  return hosts;
}

function readVms(root: JsonObjectReader, report: ReportProblem, define: DefineId, hostIds: ReadonlySet<string>): VmSpec[] {
  const vms: VmSpec[] = [];
  readEntries(root, "vms", report).forEach((entry, index) => {
    const reader = new JsonObjectReader(entry, `vms[${index}]`, report);
    if (!reader.isObject) return;
    const { ids, node } = readEntryIds(reader, maxVms);
    const resources = readResources(reader, "resources", defaultVmResources, report);
    const priority = reader.oneOf("priority", vmPriorities, "medium");
    const virt = reader.oneOf("virt", ["full", "para"] as const, "full");
    const placement = readVmHosts(reader, hostIds);
    reader.finish();
    ids.forEach((vmId, vmIndex) => {
      if (!define(vmId, "vm", node, `vms[${index}].id`)) return;
      if (vms.length >= maxVms) {
        report(entry.line, `vms: more than ${maxVms} VMs`);
        return;
      }
      // a range of VMs over a list of hosts is dealt round-robin
      const hostId = placement.length === 0 ? undefined : placement[vmIndex % placement.length];
      vms.push({ vmId, hostId, resources, priority, virt });
    });
  });
  return vms;
}

function readVmHosts(reader: JsonObjectReader, hostIds: ReadonlySet<string>): string[] {
  const node = reader.optional("host");
  if (node === undefined) return [];
  if (node.kind !== "string") {
    reader.problem(node, "host", `expected a host id, or hosts like "h1-h4" to deal a range of VMs over, got ${describeJsonNode(node)}`);
    return [];
  }
  const expanded = expandIdList(node.value, maxHosts);
  if ("problem" in expanded) {
    reader.problem(node, "host", expanded.problem);
    return [];
  }
  const unknown = expanded.ids.filter((id) => !hostIds.has(id));
  if (unknown.length > 0) {
    reader.problem(node, "host", `${unknown.slice(0, 5).join(", ")} ${unknown.length === 1 ? "is not a host" : "are not hosts"} of this cluster`);
    return [];
  }
  return expanded.ids;
}

function readRules(root: JsonObjectReader, report: ReportProblem, vmIds: ReadonlySet<string>): RuleSpec[] {
  const rules: RuleSpec[] = [];
  const entries = readEntries(root, "rules", report);
  if (entries.length > maxScenarioRules) report(root.optional("rules")?.line, `rules: more than ${maxScenarioRules} rules`);
  entries.slice(0, maxScenarioRules).forEach((entry, index) => {
    const reader = new JsonObjectReader(entry, `rules[${index}]`, report);
    if (!reader.isObject) return;
    const type = reader.oneOf("type", ["affinity", "anti-affinity"] as const, "affinity");
    if (!reader.has("type")) reader.required("type", '"affinity" or "anti-affinity"');
    const vmsNode = reader.required("vms", "a list of at least two VM ids");
    const members: string[] = [];
    if (vmsNode !== undefined) {
      const items = vmsNode.kind === "array" ? vmsNode.items : [vmsNode];
      for (const item of items) {
        const expanded = item.kind === "string" ? expandIdList(item.value, maxRuleTargets) : { problem: `expected VM ids, got ${describeJsonNode(item)}` };
        if ("problem" in expanded) reader.problem(item, "vms", expanded.problem);
        else members.push(...expanded.ids);
      }
      const unknown = members.filter((id) => !vmIds.has(id));
      if (unknown.length > 0) reader.problem(vmsNode, "vms", `${unknown.slice(0, 5).join(", ")} ${unknown.length === 1 ? "is not a VM" : "are not VMs"} of this cluster`);
      else if (new Set(members).size !== members.length) reader.problem(vmsNode, "vms", "a VM appears twice");
      else if (members.length < 2 || members.length > maxRuleTargets) reader.problem(vmsNode, "vms", `a rule joins 2 to ${maxRuleTargets} VMs, got ${members.length}`);
    }
    reader.finish();
    rules.push({ type, vmIds: members });
  });
  return rules;
}

function readNetwork(root: JsonObjectReader, report: ReportProblem): NetworkSpec {
  const reader = new JsonObjectReader(root.optional("network"), "network", report);
  const latencyNode = reader.optional("latency");
  let latency = defaultLatency;
  if (latencyNode !== undefined) {
    const parsed = latencyNode.kind === "string" ? parseLatencyText(latencyNode.value) : undefined;
    if (parsed === undefined) reader.problem(latencyNode, "latency", `expected "<base> [<jitter>]" like "5ms 2ms" (each up to ${maxLinkLatencyMs} ms), got ${describeJsonNode(latencyNode)}`);
    else latency = parsed;
  }
  const lossProbability = reader.percent("loss", 0);
  const duplicationProbability = reader.percent("duplication", 0);
  const reorderNode = reader.optional("reorder");
  let reorder = { fraction: 0, maxExtraDelayMs: 0 };
  if (reorderNode !== undefined) {
    const parts = reorderNode.kind === "string" ? reorderNode.value.trim().split(/\s+/) : [];
    const fraction = parts.length === 2 ? parsePercent(parts[0]!) : undefined;
    const maxExtraDelayMs = parts.length === 2 ? parseDurationMs(parts[1]!) : undefined;
    if (fraction === undefined || maxExtraDelayMs === undefined || maxExtraDelayMs > maxLinkLatencyMs) {
      reader.problem(reorderNode, "reorder", `expected "<share> <max extra delay>" like "10% 5ms", got ${describeJsonNode(reorderNode)}`);
    } else reorder = { fraction, maxExtraDelayMs };
  }
  reader.finish();
  return { latency, lossProbability, duplicationProbability, reorder };
}

/** `"5ms 2ms"` or `"5ms"` (no jitter). */
export function parseLatencyText(text: string): { baseMs: number; jitterMs: number } | undefined {
  const parts = text.trim().split(/\s+/);
  if (parts.length < 1 || parts.length > 2) return undefined;
  const baseMs = parseDurationMs(parts[0]!);
  const jitterMs = parts.length === 2 ? parseDurationMs(parts[1]!) : 0;
  if (baseMs === undefined || jitterMs === undefined || baseMs > maxLinkLatencyMs || jitterMs > maxLinkLatencyMs) return undefined;
  return { baseMs, jitterMs };
}

function readComponents(root: JsonObjectReader, report: ReportProblem): Map<string, JsonNode> {
  const settings = new Map<string, JsonNode>();
  const node = root.optional("components");
  if (node === undefined) return settings;
  if (node.kind !== "object") {
    report(node.line, `components: expected an object of per-component settings, got ${describeJsonNode(node)}`);
    return settings;
  }
  for (const [name, value] of node.entries) {
    if (value.kind !== "object") report(value.line, `components.${name}: expected an object of settings, got ${describeJsonNode(value)}`);
    else settings.set(name, value);
  }
  return settings;
}

/**
 * The view in plain form (arrays, no Maps) for snapshots on disk and on the
 * wire, its validation (a snapshot from a peer is hostile input like any
 * message), and the canonical JSON used for the KV mirror and for comparing
 * learners.
 */
import { ChunkedMap } from "../paxos/chunkedMap.ts";
import { canonicalJson } from "./canonicalJson.ts";
import { maxCommandIdLength, resourcesProblem } from "./viewCommands.ts";
import { isValidViewId } from "./viewIds.ts";
import {
  hostStates,
  maxControllers,
  maxHostFailuresToTolerate,
  maxHosts,
  maxLeavingSourcesPerVm,
  maxRecordedRecoveriesPerKind,
  maxRememberedCommands,
  maxRuleTargets,
  recentCommandsOf,
  rememberedChunkSize,
  maxVms,
  recoveryKinds,
  vmDesiredStates,
  vmPriorities,
  type HostRecord,
  type LeaderRecord,
  type LeavingSource,
  type RecoveryRecord,
  type RememberedCommand,
  type View,
  type VmRecord,
} from "./viewTypes.ts";
import type { SnapshotParse } from "../paxos/replicatedStateMachine.ts";

export const viewSnapshotVersion = 1;

export interface ViewSnapshot {
  readonly version: typeof viewSnapshotVersion;
  readonly epoch: number;
  readonly controllerIds: readonly string[];
  readonly leader: LeaderRecord | null;
  readonly hosts: readonly HostRecord[];
  readonly vms: readonly VmRecord[];
  /** Absent while the view holds none (so snapshots of views without it are what they were before it existed). */
  readonly hostFailuresToTolerate?: number;
  readonly recentCommands: readonly RememberedCommand[];
}

export function viewToSnapshot(view: View): ViewSnapshot {
  return {
    version: viewSnapshotVersion,
    epoch: view.epoch,
    controllerIds: view.controllerIds,
    leader: view.leader,
    hosts: [...view.hosts.values()],
    vms: [...view.vms.values()],
    ...(view.hostFailuresToTolerate === null ? {} : { hostFailuresToTolerate: view.hostFailuresToTolerate }),
    recentCommands: recentCommandsOf(view),
  };
}

/** The whole view as canonical JSON: equal strings exactly when two learners hold equal views. */
export function canonicalViewJson(view: View): string {
  const { version: _version, ...rest } = viewToSnapshot(view);
  return canonicalJson({ ...rest, hosts: view.hosts, vms: view.vms });
}

class SnapshotError extends Error {}

function fail(message: string): never {
  throw new SnapshotError(message);
}

function plainObject(value: unknown, path: string, keys: readonly string[]): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) fail(`${path} must be an object`);
  const prototype = Object.getPrototypeOf(value);
  if (prototype !== Object.prototype && prototype !== null) fail(`${path} must be a plain object`);
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) if (!keys.includes(key)) fail(`${path} has unexpected field ${key.slice(0, 64)}`);
  for (const key of keys) if (!(key in record)) fail(`${path}.${key} is missing`);
  return record;
}

function integer(value: unknown, path: string, min = 0): number {
  if (!Number.isSafeInteger(value) || (value as number) < min) fail(`${path} must be an integer >= ${min}`);
  return value as number;
}

function boundedInteger(value: unknown, path: string, max: number): number {
  const number = integer(value, path);
  if (number > max) fail(`${path} must be at most ${max}`);
  return number;
}

function id(value: unknown, path: string): string {
  if (typeof value !== "string" || !isValidViewId(value)) fail(`${path} must be an id`);
  return value;
}

function list(value: unknown, path: string, max: number): readonly unknown[] {
  if (!Array.isArray(value) || value.length > max) fail(`${path} must be a list of at most ${max}`);
  return value;
}

function oneOf<T extends string>(value: unknown, path: string, allowed: readonly T[]): T {
  if (typeof value !== "string" || !(allowed as readonly string[]).includes(value)) fail(`${path} must be one of ${allowed.join(", ")}`);
  return value as T;
}

function resources(value: unknown, path: string): { cpu: number; memoryMiB: number } {
  const problem = resourcesProblem(value, path);
  if (problem) fail(problem);
  const record = value as { cpu: number; memoryMiB: number };
  return { cpu: record.cpu, memoryMiB: record.memoryMiB };
}

function idList(value: unknown, path: string, max: number): string[] {
  const items = list(value, path, max);
  const ids: string[] = [];
  for (let index = 0; index < items.length; index++) {
    const item = items[index];
    // The path is built only for a bad item: a snapshot holds hundreds of thousands of ids.
    if (typeof item !== "string" || !isValidViewId(item)) fail(`${path}[${index}] must be an id`);
    ids.push(item);
  }
  return ids;
}

/**
 * Parses each item of a list of records whose parser reports paths relative to the item (`.vmId`),
 * prefixing the item's path to a failure only: per-record paths built up front were a good part of
 * installing a snapshot of 60,000 VMs.
 */
function eachRecord<T>(items: readonly unknown[], path: string, parse: (item: unknown) => T, add: (record: T) => void): void {
  for (let index = 0; index < items.length; index++) {
    let record: T;
    try {
      record = parse(items[index]);
    } catch (error) {
      if (error instanceof SnapshotError) fail(`${path}[${index}]${error.message}`);
      throw error;
    }
    add(record);
  }
}

/** A host record; failures name paths relative to it. */
function parseHost(value: unknown): HostRecord {
  const path = "";
  const record = plainObject(value, path, ["hostId", "state", "incarnation", "capacity", "stateEpoch"]);
  return {
    hostId: id(record.hostId, `${path}.hostId`),
    state: oneOf(record.state, `${path}.state`, hostStates),
    incarnation: integer(record.incarnation, `${path}.incarnation`),
    capacity: resources(record.capacity, `${path}.capacity`),
    stateEpoch: integer(record.stateEpoch, `${path}.stateEpoch`),
  };
}

function parseRecoveries(value: unknown, path: string): RecoveryRecord[] {
  const recoveries = list(value, path, maxRecordedRecoveriesPerKind * recoveryKinds.length).map((item, index): RecoveryRecord => {
    const raw = plainObject(item, `${path}[${index}]`, ["kind", "atMs"]);
    return { kind: oneOf(raw.kind, `${path}[${index}].kind`, recoveryKinds), atMs: integer(raw.atMs, `${path}[${index}].atMs`) };
  });
  // Absent, never empty (views are compared by their canonical JSON).
  if (recoveries.length === 0) fail(`${path} must not be empty (omit it)`);
  for (const kind of recoveryKinds) {
    if (recoveries.filter((entry) => entry.kind === kind).length > maxRecordedRecoveriesPerKind) fail(`${path} holds more than ${maxRecordedRecoveriesPerKind} of kind ${kind}`);
  }
  return recoveries;
}

/** A VM record; failures name paths relative to it (`.vmId must be an id`). */
function parseVm(value: unknown): VmRecord {
  const path = "";
  const leavingPresent = typeof value === "object" && value !== null && "leavingFrom" in value;
  const recoveriesPresent = typeof value === "object" && value !== null && "recoveries" in value;
  const record = plainObject(value, path, [
    "vmId",
    "desiredState",
    "placement",
    "priority",
    "resources",
    "rules",
    ...(leavingPresent ? ["leavingFrom"] : []),
    ...(recoveriesPresent ? ["recoveries"] : []),
  ]);
  let placement: VmRecord["placement"] = null;
  if (record.placement !== null) {
    const migrating = typeof record.placement === "object" && record.placement !== null && "migratingFrom" in record.placement;
    const raw = plainObject(record.placement, `${path}.placement`, migrating ? ["hostId", "epoch", "migratingFrom"] : ["hostId", "epoch"]);
    const hostId = id(raw.hostId, `${path}.placement.hostId`);
    const epoch = integer(raw.epoch, `${path}.placement.epoch`, 1);
    if (migrating) {
      const migratingFrom = id(raw.migratingFrom, `${path}.placement.migratingFrom`);
      if (migratingFrom === hostId) fail(`${path}.placement.migratingFrom must differ from its hostId`);
      placement = { hostId, epoch, migratingFrom };
    } else placement = { hostId, epoch };
  }
  const rules = plainObject(record.rules, `${path}.rules`, ["affinity", "antiAffinity"]);
  const vm: VmRecord = {
    vmId: id(record.vmId, `${path}.vmId`),
    desiredState: oneOf(record.desiredState, `${path}.desiredState`, vmDesiredStates),
    placement,
    priority: oneOf(record.priority, `${path}.priority`, vmPriorities),
    resources: resources(record.resources, `${path}.resources`),
    rules: { affinity: idList(rules.affinity, `${path}.rules.affinity`, maxRuleTargets), antiAffinity: idList(rules.antiAffinity, `${path}.rules.antiAffinity`, maxRuleTargets) },
  };
  const withRecoveries: VmRecord = recoveriesPresent ? { ...vm, recoveries: parseRecoveries(record.recoveries, `${path}.recoveries`) } : vm;
  if (!leavingPresent) return withRecoveries;
  const leavingFrom = list(record.leavingFrom, `${path}.leavingFrom`, maxLeavingSourcesPerVm).map((item, index): LeavingSource => {
    const raw = plainObject(item, `${path}.leavingFrom[${index}]`, ["hostId", "incarnation", "placementEpoch"]);
    return { hostId: id(raw.hostId, `${path}.leavingFrom[${index}].hostId`), incarnation: integer(raw.incarnation, `${path}.leavingFrom[${index}].incarnation`), placementEpoch: integer(raw.placementEpoch, `${path}.leavingFrom[${index}].placementEpoch`, 1) };
  });
  // Absent, never empty (views are compared by their canonical JSON); one entry per host.
  if (leavingFrom.length === 0) fail(`${path}.leavingFrom must not be empty (omit it)`);
  if (new Set(leavingFrom.map((entry) => entry.hostId)).size !== leavingFrom.length) fail(`${path}.leavingFrom names a host twice`);
  return { ...withRecoveries, leavingFrom };
}

function parseRemembered(value: unknown, path: string): RememberedCommand {
  const record = plainObject(value, path, ["commandId", "slot", "outcome"]);
  if (typeof record.commandId !== "string" || record.commandId.length < 1 || record.commandId.length > maxCommandIdLength) fail(`${path}.commandId must be a command id`);
  const outcomeRaw = record.outcome as { kind?: unknown } | null;
  let outcome: RememberedCommand["outcome"];
  if (typeof outcomeRaw === "object" && outcomeRaw !== null && outcomeRaw.kind === "committed") {
    plainObject(outcomeRaw, `${path}.outcome`, ["kind"]);
    outcome = { kind: "committed" };
  } else {
    const raw = plainObject(outcomeRaw, `${path}.outcome`, ["kind", "reason"]);
    if (raw.kind !== "rejected" || typeof raw.reason !== "string" || raw.reason.length > 1_000) fail(`${path}.outcome must be committed or rejected with a reason`);
    outcome = { kind: "rejected", reason: raw.reason };
  }
  return { commandId: record.commandId, slot: integer(record.slot, `${path}.slot`), outcome };
}

function addHost(hosts: Map<string, HostRecord>, host: HostRecord): void {
  if (hosts.has(host.hostId)) fail(`snapshot.hosts has ${host.hostId} twice`);
  hosts.set(host.hostId, host);
}

function addVm(vms: Map<string, VmRecord>, vm: VmRecord): void {
  if (vms.has(vm.vmId)) fail(`snapshot.vms has ${vm.vmId} twice`);
  vms.set(vm.vmId, vm);
}

/** Checks every field and bound; never throws. */
export function viewFromSnapshot(value: unknown): SnapshotParse<View> {
  try {
    const configured = typeof value === "object" && value !== null && "hostFailuresToTolerate" in value;
    const record = plainObject(value, "snapshot", ["version", "epoch", "controllerIds", "leader", "hosts", "vms", "recentCommands", ...(configured ? ["hostFailuresToTolerate"] : [])]);
    if (record.version !== viewSnapshotVersion) fail(`snapshot.version must be ${viewSnapshotVersion}`);
    let leader: LeaderRecord | null = null;
    if (record.leader !== null) {
      const raw = plainObject(record.leader, "snapshot.leader", ["controllerId", "round"]);
      leader = { controllerId: id(raw.controllerId, "snapshot.leader.controllerId"), round: integer(raw.round, "snapshot.leader.round", 1) };
    }
    const hosts = new Map<string, HostRecord>();
    eachRecord(list(record.hosts, "snapshot.hosts", maxHosts), "snapshot.hosts", parseHost, addHost.bind(null, hosts));
    const vms = new Map<string, VmRecord>();
    eachRecord(list(record.vms, "snapshot.vms", maxVms), "snapshot.vms", parseVm, addVm.bind(null, vms));
    const recentCommands = list(record.recentCommands, "snapshot.recentCommands", maxRememberedCommands + rememberedChunkSize).map((item, index) => parseRemembered(item, `snapshot.recentCommands[${index}]`));
    const recentCommandIndex = new Map<string, RememberedCommand>();
    for (const remembered of recentCommands) {
      if (recentCommandIndex.has(remembered.commandId)) fail(`snapshot.recentCommands has ${remembered.commandId.slice(0, 64)} twice`);
      recentCommandIndex.set(remembered.commandId, remembered);
    }
    const recentCommandChunks: RememberedCommand[][] = [];
    for (let start = 0; start < recentCommands.length; start += rememberedChunkSize) recentCommandChunks.push(recentCommands.slice(start, start + rememberedChunkSize));
    const view: View = {
      epoch: integer(record.epoch, "snapshot.epoch"),
      controllerIds: idList(record.controllerIds, "snapshot.controllerIds", maxControllers),
      leader,
      hosts: ChunkedMap.from(hosts),
      vms: ChunkedMap.from(vms),
      hostFailuresToTolerate: configured ? boundedInteger(record.hostFailuresToTolerate, "snapshot.hostFailuresToTolerate", maxHostFailuresToTolerate) : null,
      recentCommandChunks,
      recentCommandCount: recentCommands.length,
      recentCommandIndex: ChunkedMap.from(recentCommandIndex),
    };
    return { ok: true, state: view };
  } catch (error) {
    if (error instanceof SnapshotError) return { ok: false, error: error.message };
    throw error;
  }
}

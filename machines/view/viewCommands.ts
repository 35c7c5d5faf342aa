/**
 * Commands that change the view. Each carries a unique `id`: applying the same
 * id twice changes nothing the second time (viewStateMachine.ts). Commands come
 * from the network, so `commandProblem` checks their shape before anything
 * reads them, and the answer is the same on every learner.
 */
import { isValidViewId } from "./viewIds.ts";
import {
  hostStates,
  maxControllers,
  maxCpuPerEntity,
  maxHostFailuresToTolerate,
  maxMemoryMiBPerEntity,
  maxRuleTargets,
  recoveryKinds,
  vmDesiredStates,
  vmPriorities,
  type RecoveryKind,
  type Resources,
  type VmDesiredState,
  type VmPriority,
  type VmRules,
} from "./viewTypes.ts";

export const maxCommandIdLength = 128;

interface CommandBase {
  readonly id: string;
  /**
   * A slot below which the command cannot have been chosen: every slot below it was chosen before the
   * command was first proposed (the proposal client stamps its learner's applied slot or the commit
   * index it heard). A copy that reaches the log once the view no longer remembers every command
   * applied from this slot on is refused instead of risking a second application (applyViewCommands.ts).
   */
  readonly proposedAfterSlot?: number;
}

export type ViewCommand = CommandBase &
  (
    | { readonly type: "controllers.set"; readonly controllerIds: readonly string[] }
    | { readonly type: "leader.elected"; readonly controllerId: string; readonly round: number }
    /**
     * Sets F for admission control. A compare-and-set: `expectedHostFailuresToTolerate` is the value the
     * proposer saw (null when none was set), so a manager that configures an unset cluster never overrides
     * a value another one set meanwhile.
     */
    | { readonly type: "cluster.configure"; readonly hostFailuresToTolerate: number; readonly expectedHostFailuresToTolerate: number | null }
    | { readonly type: "host.register"; readonly hostId: string; readonly capacity: Resources }
    | { readonly type: "host.up"; readonly hostId: string; readonly incarnation: number }
    | { readonly type: "host.suspect"; readonly hostId: string; readonly incarnation: number }
    | { readonly type: "host.failed"; readonly hostId: string; readonly incarnation: number }
    | { readonly type: "host.fenced"; readonly hostId: string; readonly incarnation: number }
    | { readonly type: "host.rejoin"; readonly hostId: string; readonly incarnation: number }
    | { readonly type: "host.maintenance-enter"; readonly hostId: string }
    | { readonly type: "host.maintenance-exit"; readonly hostId: string }
    | { readonly type: "host.remove"; readonly hostId: string }
    | {
        readonly type: "vm.add";
        readonly vmId: string;
        readonly resources: Resources;
        readonly priority: VmPriority;
        readonly rules: VmRules;
        readonly desiredState: VmDesiredState;
      }
    | { readonly type: "vm.remove"; readonly vmId: string }
    | { readonly type: "vm.set-desired"; readonly vmId: string; readonly desiredState: VmDesiredState }
    /** `expectedPlacementEpoch` is the placement epoch the proposer saw (0 when unplaced): a compare-and-set. */
    | { readonly type: "vm.place"; readonly vmId: string; readonly hostId: string; readonly expectedPlacementEpoch: number }
    | { readonly type: "vm.unplace"; readonly vmId: string; readonly expectedPlacementEpoch: number }
    /** Live migration from the VM's current host to `toHostId`: a new placement there, marked as migrating from the source. */
    | { readonly type: "vm.migrate"; readonly vmId: string; readonly toHostId: string; readonly expectedPlacementEpoch: number }
    /** The VM is off its migration source: the target owns it (same placement epoch, marker cleared). */
    | { readonly type: "vm.migrate-done"; readonly vmId: string; readonly expectedPlacementEpoch: number }
    /** The migration did not happen (or its target is gone): placed back on the source, at a new placement epoch. */
    | { readonly type: "vm.migrate-abort"; readonly vmId: string; readonly expectedPlacementEpoch: number }
    /**
     * The VM is off on a host it left (its stop answered, or that incarnation surely ended): clears the
     * `leavingFrom` entry naming exactly this host, incarnation and placement epoch (the one that moved it off).
     */
    | { readonly type: "vm.left"; readonly vmId: string; readonly hostId: string; readonly incarnation: number; readonly placementEpoch: number }
    /** The manager restarted the VM in place after a crash, or reset its hung guest, at `atMs` on its clock: counted against its per-window limit by every later manager. */
    | { readonly type: "vm.record-recovery"; readonly vmId: string; readonly kind: RecoveryKind; readonly atMs: number }
  );

export type ViewCommandType = ViewCommand["type"];

export const viewCommandTypes: readonly ViewCommandType[] = [
  "controllers.set",
  "leader.elected",
  "cluster.configure",
  "host.register",
  "host.up",
  "host.suspect",
  "host.failed",
  "host.fenced",
  "host.rejoin",
  "host.maintenance-enter",
  "host.maintenance-exit",
  "host.remove",
  "vm.add",
  "vm.remove",
  "vm.set-desired",
  "vm.place",
  "vm.unplace",
  "vm.migrate",
  "vm.migrate-done",
  "vm.migrate-abort",
  "vm.left",
  "vm.record-recovery",
];

const allowedKeys: Record<ViewCommandType, readonly string[]> = {
  "controllers.set": ["controllerIds"],
  "leader.elected": ["controllerId", "round"],
  "cluster.configure": ["hostFailuresToTolerate", "expectedHostFailuresToTolerate"],
  "host.register": ["hostId", "capacity"],
  "host.up": ["hostId", "incarnation"],
  "host.suspect": ["hostId", "incarnation"],
  "host.failed": ["hostId", "incarnation"],
  "host.fenced": ["hostId", "incarnation"],
  "host.rejoin": ["hostId", "incarnation"],
  "host.maintenance-enter": ["hostId"],
  "host.maintenance-exit": ["hostId"],
  "host.remove": ["hostId"],
  "vm.add": ["vmId", "resources", "priority", "rules", "desiredState"],
  "vm.remove": ["vmId"],
  "vm.set-desired": ["vmId", "desiredState"],
  "vm.place": ["vmId", "hostId", "expectedPlacementEpoch"],
  "vm.unplace": ["vmId", "expectedPlacementEpoch"],
  "vm.migrate": ["vmId", "toHostId", "expectedPlacementEpoch"],
  "vm.migrate-done": ["vmId", "expectedPlacementEpoch"],
  "vm.migrate-abort": ["vmId", "expectedPlacementEpoch"],
  "vm.left": ["vmId", "hostId", "incarnation", "placementEpoch"],
  "vm.record-recovery": ["vmId", "kind", "atMs"],
};

function isRecord(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

function countProblem(value: unknown, name: string, max: number, min = 0): string | null {
  return Number.isSafeInteger(value) && (value as number) >= min && (value as number) <= max ? null : `${name} must be an integer in [${min}, ${max}]`;
}

function idProblem(value: unknown, name: string): string | null {
  return typeof value === "string" && isValidViewId(value) ? null : `${name} must be 1-64 of [A-Za-z0-9_-]`;
}

export function resourcesProblem(value: unknown, name: string): string | null {
  if (!isRecord(value) || Object.keys(value).length !== 2) return `${name} must be { cpu, memoryMiB }`;
  return countProblem(value.cpu, `${name}.cpu`, maxCpuPerEntity) ?? countProblem(value.memoryMiB, `${name}.memoryMiB`, maxMemoryMiBPerEntity);
}

function idListProblem(value: unknown, name: string, max: number): string | null {
  if (!Array.isArray(value) || value.length > max) return `${name} must be a list of at most ${max} ids`;
  for (const item of value) {
    const problem = idProblem(item, `${name}[]`);
    if (problem) return problem;
  }
  return new Set(value).size === value.length ? null : `${name} contains a duplicate`;
}

/** Why `value` is not a well-formed view command, or null when it is one. Never throws. */
export function commandProblem(value: unknown): string | null {
  if (!isRecord(value)) return "command must be an object";
  if (typeof value.id !== "string" || value.id.length < 1 || value.id.length > maxCommandIdLength) return `id must be a string of 1-${maxCommandIdLength} characters`;
  const type = value.type;
  if (typeof type !== "string" || !(viewCommandTypes as readonly string[]).includes(type)) return "unknown command type";
  const keys = allowedKeys[type as ViewCommandType];
  for (const key of Object.keys(value)) if (key !== "id" && key !== "type" && key !== "proposedAfterSlot" && !keys.includes(key)) return `unexpected field ${key.slice(0, 64)}`;
  if (value.proposedAfterSlot !== undefined) {
    const problem = countProblem(value.proposedAfterSlot, "proposedAfterSlot", Number.MAX_SAFE_INTEGER);
    if (problem) return problem;
  }
  for (const key of keys) if (!(key in value)) return `missing field ${key}`;
  const v = value;
  switch (type as ViewCommandType) {
    case "controllers.set":
      return idListProblem(v.controllerIds, "controllerIds", maxControllers);
    case "leader.elected":
      return idProblem(v.controllerId, "controllerId") ?? countProblem(v.round, "round", Number.MAX_SAFE_INTEGER, 1);
    case "cluster.configure":
      return (
        countProblem(v.hostFailuresToTolerate, "hostFailuresToTolerate", maxHostFailuresToTolerate) ??
        (v.expectedHostFailuresToTolerate === null ? null : countProblem(v.expectedHostFailuresToTolerate, "expectedHostFailuresToTolerate (or null)", maxHostFailuresToTolerate))
      );
    case "host.register":
      return idProblem(v.hostId, "hostId") ?? resourcesProblem(v.capacity, "capacity");
    case "host.up":
    case "host.suspect":
    case "host.failed":
    case "host.fenced":
    case "host.rejoin":
      return idProblem(v.hostId, "hostId") ?? countProblem(v.incarnation, "incarnation", Number.MAX_SAFE_INTEGER);
    case "host.maintenance-enter":
    case "host.maintenance-exit":
    case "host.remove":
      return idProblem(v.hostId, "hostId");
    case "vm.add": {
      const rules = v.rules;
      if (!isRecord(rules) || Object.keys(rules).length !== 2) return "rules must be { affinity, antiAffinity }";
      return (
        idProblem(v.vmId, "vmId") ??
        resourcesProblem(v.resources, "resources") ??
        (typeof v.priority === "string" && (vmPriorities as readonly string[]).includes(v.priority) ? null : "priority must be high, medium or low") ??
        (typeof v.desiredState === "string" && (vmDesiredStates as readonly string[]).includes(v.desiredState) ? null : "desiredState must be running or stopped") ??
        idListProblem(rules.affinity, "rules.affinity", maxRuleTargets) ??
        idListProblem(rules.antiAffinity, "rules.antiAffinity", maxRuleTargets)
      );
    }
    case "vm.remove":
      return idProblem(v.vmId, "vmId");
    case "vm.set-desired":
      return idProblem(v.vmId, "vmId") ?? (typeof v.desiredState === "string" && (vmDesiredStates as readonly string[]).includes(v.desiredState) ? null : "desiredState must be running or stopped");
    case "vm.place":
      return idProblem(v.vmId, "vmId") ?? idProblem(v.hostId, "hostId") ?? countProblem(v.expectedPlacementEpoch, "expectedPlacementEpoch", Number.MAX_SAFE_INTEGER);
    case "vm.migrate":
      return idProblem(v.vmId, "vmId") ?? idProblem(v.toHostId, "toHostId") ?? countProblem(v.expectedPlacementEpoch, "expectedPlacementEpoch", Number.MAX_SAFE_INTEGER, 1);
    case "vm.left":
      return (
        idProblem(v.vmId, "vmId") ??
        idProblem(v.hostId, "hostId") ??
        countProblem(v.incarnation, "incarnation", Number.MAX_SAFE_INTEGER) ??
        countProblem(v.placementEpoch, "placementEpoch", Number.MAX_SAFE_INTEGER, 1)
      );
    case "vm.record-recovery":
      return (
        idProblem(v.vmId, "vmId") ??
        (typeof v.kind === "string" && (recoveryKinds as readonly string[]).includes(v.kind) ? null : "kind must be restart or reset") ??
        countProblem(v.atMs, "atMs", Number.MAX_SAFE_INTEGER)
      );
    case "vm.unplace":
    case "vm.migrate-done":
    case "vm.migrate-abort":
      return idProblem(v.vmId, "vmId") ?? countProblem(v.expectedPlacementEpoch, "expectedPlacementEpoch", Number.MAX_SAFE_INTEGER);
  }
}

export function isHostState(value: unknown): value is (typeof hostStates)[number] {
  return typeof value === "string" && (hostStates as readonly string[]).includes(value);
}

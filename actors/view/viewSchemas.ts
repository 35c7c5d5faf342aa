/**
 * Wire schemas for the view: its commands (carried inside Paxos values) and
 * its snapshot (carried by `paxos.snapshot` and the durable snapshot record).
 *
 * They bound every field the way machines/view/ does (commandProblem,
 * viewFromSnapshot), so a value that passes here is never refused there for
 * its size; the view still runs its own checks, which stay authoritative (a
 * well-shaped command can still be rejected, deterministically, by the view).
 * `test/paxos/paxosMessages.test.ts` checks that the inferred types match the
 * machines' types both ways.
 */
import { arr, discriminated, int, literal, nullable, obj, oneOf, optional, str, type Infer } from "../codec/schema.ts";
import { maxCommandIdLength } from "../../machines/view/viewCommands.ts";
import {
  hostStates,
  maxControllers,
  maxCpuPerEntity,
  maxHostFailuresToTolerate,
  maxHosts,
  maxLeavingSourcesPerVm,
  maxMemoryMiBPerEntity,
  maxRecordedRecoveriesPerKind,
  maxRememberedCommands,
  maxRuleTargets,
  maxVms,
  rememberedChunkSize,
  recoveryKinds,
  vmDesiredStates,
  vmPriorities,
} from "../../machines/view/viewTypes.ts";
import { viewSnapshotVersion } from "../../machines/view/viewSnapshot.ts";

/** Rejection reasons the view writes are short sentences; viewFromSnapshot refuses longer ones. */
export const maxRejectionReasonLength = 1_000;

export const viewIdSchema = str({ minLength: 1, maxLength: 64, pattern: /^[A-Za-z0-9_-]+$/ });
const commandIdSchema = str({ minLength: 1, maxLength: maxCommandIdLength });
const countSchema = int({ min: 0, max: Number.MAX_SAFE_INTEGER });
const resourcesSchema = obj({ cpu: int({ min: 0, max: maxCpuPerEntity }), memoryMiB: int({ min: 0, max: maxMemoryMiBPerEntity }) });
const ruleTargetsSchema = arr(viewIdSchema, { maxLength: maxRuleTargets });
const rulesSchema = obj({ affinity: ruleTargetsSchema, antiAffinity: ruleTargetsSchema });
const prioritySchema = oneOf(vmPriorities);
const desiredStateSchema = oneOf(vmDesiredStates);
const recoveryKindSchema = oneOf(recoveryKinds);
const hostFailuresToTolerateSchema = int({ min: 0, max: maxHostFailuresToTolerate });

/** What every command carries besides its type's fields (machines/view/viewCommands.ts, CommandBase). */
const commandBaseFields = { id: commandIdSchema, proposedAfterSlot: optional(countSchema) };

function hostIncarnationCommand<const T extends string>(type: T) {
  return obj({ ...commandBaseFields, type: literal(type), hostId: viewIdSchema, incarnation: countSchema });
}

function hostCommand<const T extends string>(type: T) {
  return obj({ ...commandBaseFields, type: literal(type), hostId: viewIdSchema });
}

export const viewCommandSchema = discriminated("type", [
  obj({ ...commandBaseFields, type: literal("controllers.set"), controllerIds: arr(viewIdSchema, { maxLength: maxControllers }) }),
  obj({ ...commandBaseFields, type: literal("leader.elected"), controllerId: viewIdSchema, round: int({ min: 1, max: Number.MAX_SAFE_INTEGER }) }),
  obj({
    ...commandBaseFields,
    type: literal("cluster.configure"),
    hostFailuresToTolerate: hostFailuresToTolerateSchema,
    expectedHostFailuresToTolerate: nullable(hostFailuresToTolerateSchema),
  }),
  obj({ ...commandBaseFields, type: literal("host.register"), hostId: viewIdSchema, capacity: resourcesSchema }),
  hostIncarnationCommand("host.up"),
  hostIncarnationCommand("host.suspect"),
  hostIncarnationCommand("host.failed"),
  hostIncarnationCommand("host.fenced"),
  hostIncarnationCommand("host.rejoin"),
  hostCommand("host.maintenance-enter"),
  hostCommand("host.maintenance-exit"),
  hostCommand("host.remove"),
  obj({
    ...commandBaseFields,
    type: literal("vm.add"),
    vmId: viewIdSchema,
    resources: resourcesSchema,
    priority: prioritySchema,
    rules: rulesSchema,
    desiredState: desiredStateSchema,
  }),
  obj({ ...commandBaseFields, type: literal("vm.remove"), vmId: viewIdSchema }),
  obj({ ...commandBaseFields, type: literal("vm.set-desired"), vmId: viewIdSchema, desiredState: desiredStateSchema }),
  obj({ ...commandBaseFields, type: literal("vm.place"), vmId: viewIdSchema, hostId: viewIdSchema, expectedPlacementEpoch: countSchema }),
  obj({ ...commandBaseFields, type: literal("vm.unplace"), vmId: viewIdSchema, expectedPlacementEpoch: countSchema }),
  obj({ ...commandBaseFields, type: literal("vm.migrate"), vmId: viewIdSchema, toHostId: viewIdSchema, expectedPlacementEpoch: countSchema }),
  obj({ ...commandBaseFields, type: literal("vm.migrate-done"), vmId: viewIdSchema, expectedPlacementEpoch: countSchema }),
  obj({ ...commandBaseFields, type: literal("vm.migrate-abort"), vmId: viewIdSchema, expectedPlacementEpoch: countSchema }),
  obj({ ...commandBaseFields, type: literal("vm.left"), vmId: viewIdSchema, hostId: viewIdSchema, incarnation: countSchema, placementEpoch: int({ min: 1, max: Number.MAX_SAFE_INTEGER }) }),
  obj({ ...commandBaseFields, type: literal("vm.record-recovery"), vmId: viewIdSchema, kind: recoveryKindSchema, atMs: countSchema }),
]);

export type WireViewCommand = Infer<typeof viewCommandSchema>;

export const hostRecordSchema = obj({
  hostId: viewIdSchema,
  state: oneOf(hostStates),
  incarnation: countSchema,
  capacity: resourcesSchema,
  stateEpoch: countSchema,
});

export const vmRecordSchema = obj({
  vmId: viewIdSchema,
  desiredState: desiredStateSchema,
  placement: nullable(obj({ hostId: viewIdSchema, epoch: int({ min: 1, max: Number.MAX_SAFE_INTEGER }), migratingFrom: optional(viewIdSchema) })),
  priority: prioritySchema,
  resources: resourcesSchema,
  rules: rulesSchema,
  leavingFrom: optional(
    arr(obj({ hostId: viewIdSchema, incarnation: countSchema, placementEpoch: int({ min: 1, max: Number.MAX_SAFE_INTEGER }) }), { maxLength: maxLeavingSourcesPerVm }),
  ),
  recoveries: optional(arr(obj({ kind: recoveryKindSchema, atMs: countSchema }), { maxLength: maxRecordedRecoveriesPerKind * recoveryKinds.length })),
});

const rememberedOutcomeSchema = discriminated("kind", [
  obj({ kind: literal("committed") }),
  obj({ kind: literal("rejected"), reason: str({ maxLength: maxRejectionReasonLength }) }),
]);

export const rememberedCommandSchema = obj({ commandId: commandIdSchema, slot: countSchema, outcome: rememberedOutcomeSchema });

/** The most remembered commands a snapshot may carry. */
export const maxRememberedSnapshotCommands = maxRememberedCommands + rememberedChunkSize;

export const viewSnapshotSchema = obj({
  version: literal(viewSnapshotVersion),
  epoch: countSchema,
  controllerIds: arr(viewIdSchema, { maxLength: maxControllers }),
  leader: nullable(obj({ controllerId: viewIdSchema, round: int({ min: 1, max: Number.MAX_SAFE_INTEGER }) })),
  hosts: arr(hostRecordSchema, { maxLength: maxHosts }),
  vms: arr(vmRecordSchema, { maxLength: maxVms }),
  hostFailuresToTolerate: optional(hostFailuresToTolerateSchema),
  recentCommands: arr(rememberedCommandSchema, { maxLength: maxRememberedSnapshotCommands }),
});

export type WireViewSnapshot = Infer<typeof viewSnapshotSchema>;

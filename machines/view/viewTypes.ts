/**
 * The cluster view: the state every node learns from the Paxos log. It is a
 * deterministic function of the applied commands (applyViewCommands.ts), so
 * learners that applied the same slots hold equal views (compare them with
 * canonicalViewJson).
 *
 * Hosts and VMs live in ChunkedMaps (a change copies one bucket, not the
 * map); their iteration order is the same on every learner that applied the
 * same commands.
 */
import { ChunkedMap } from "../paxos/chunkedMap.ts";
import type { FirstOutcome } from "../paxos/replicatedStateMachine.ts";

export const hostStates = ["joining", "up", "suspect", "failed", "fenced", "maintenance"] as const;
export type HostState = (typeof hostStates)[number];

export const vmPriorities = ["high", "medium", "low"] as const;
export type VmPriority = (typeof vmPriorities)[number];

export const vmDesiredStates = ["running", "stopped"] as const;
export type VmDesiredState = (typeof vmDesiredStates)[number];

export interface Resources {
  readonly cpu: number;
  readonly memoryMiB: number;
}

export interface HostRecord {
  readonly hostId: string;
  readonly state: HostState;
  /** Rises each time the host rejoins after failing or being fenced, so stale reports about it are refused. */
  readonly incarnation: number;
  readonly capacity: Resources;
  /** The view epoch at which `state` was last set. */
  readonly stateEpoch: number;
}

export interface VmPlacement {
  readonly hostId: string;
  /** The view epoch of the placement: a host may only run the VM while the view still names this epoch. */
  readonly epoch: number;
  /**
   * Set while the VM moves here by live migration from this host (`vm.migrate`): the source may keep
   * running it until the switchover, and the target does not start it. `vm.migrate-done` clears it (the
   * target owns the VM), `vm.migrate-abort` places the VM back on the source; absent otherwise.
   */
  readonly migratingFrom?: string;
}

export interface VmRules {
  /** VMs that must run on the same host as this one. */
  readonly affinity: readonly string[];
  /** VMs that must not run on the same host as this one. */
  readonly antiAffinity: readonly string[];
}

/**
 * A host a VM left without live migration (evacuation, relocation), or the target of a migration undone, whose
 * stop is not confirmed: the VM may still run there, at that incarnation. Replicated so that every manager,
 * a new leader's included, stops it there before starting the VM anywhere else.
 */
export interface LeavingSource {
  readonly hostId: string;
  /** The host's incarnation when the VM left it: the one that may still run it. */
  readonly incarnation: number;
  /** The placement epoch that moved the VM off it: a stop answered for an older epoch says nothing about now. */
  readonly placementEpoch: number;
}

export interface VmRecord {
  readonly vmId: string;
  readonly desiredState: VmDesiredState;
  readonly placement: VmPlacement | null;
  readonly priority: VmPriority;
  readonly resources: Resources;
  readonly rules: VmRules;
  /**
   * Hosts the VM left whose stop is not confirmed (at most `maxLeavingSourcesPerVm`, distinct hosts); absent
   * when there are none. Set by `vm.place` off a host that is up, suspect or in maintenance (and by
   * `vm.migrate-abort` for a live target); cleared by `vm.left`, by a placement back on that host, and when the
   * host's incarnation ends (`host.fenced`, `host.rejoin`, `host.remove`).
   */
  readonly leavingFrom?: readonly LeavingSource[];
  /**
   * The manager's last restarts in place and guest resets of this VM (`vm.record-recovery`), oldest first, at
   * most `maxRecordedRecoveriesPerKind` of each kind; absent when there are none. Replicated so that a new
   * leader's manager counts its restarts and resets per window from where the last one left off.
   */
  readonly recoveries?: readonly RecoveryRecord[];
}

export const recoveryKinds = ["restart", "reset"] as const;
export type RecoveryKind = (typeof recoveryKinds)[number];

export interface RecoveryRecord {
  readonly kind: RecoveryKind;
  /** When the manager decided it, on its controller's clock (Unix ms in the runtime, virtual ms in the simulator). */
  readonly atMs: number;
}

export interface LeaderRecord {
  readonly controllerId: string;
  /** The Paxos ballot round under which it was elected; a lower or equal announcement is stale. */
  readonly round: number;
}

export type RememberedOutcome = FirstOutcome;

export interface RememberedCommand {
  readonly commandId: string;
  readonly slot: number;
  readonly outcome: RememberedOutcome;
}

export interface View {
  /** Rises by one with every command that changes the view; never goes back. */
  readonly epoch: number;
  readonly controllerIds: readonly string[];
  readonly leader: LeaderRecord | null;
  readonly hosts: ChunkedMap<string, HostRecord>;
  readonly vms: ChunkedMap<string, VmRecord>;
  /**
   * F for admission control: room is kept to restart every VM after this many host failures
   * (`cluster.configure`). Null until configured (views and logs from before the setting, or a cluster
   * whose manager has not set it yet): then the view admits every VM.
   */
  readonly hostFailuresToTolerate: number | null;
  /**
   * The command ids applied most recently, oldest first, with their slot and outcome, in chunks of
   * `rememberedChunkSize`: at least the last `maxRememberedCommands` (whole chunks are forgotten), and
   * part of every snapshot.
   */
  readonly recentCommandChunks: readonly (readonly RememberedCommand[])[];
  readonly recentCommandCount: number;
  readonly recentCommandIndex: ChunkedMap<string, RememberedCommand>;
}

export const maxRememberedCommands = 10_000;
export const rememberedChunkSize = 256;

export function recentCommandsOf(view: View): RememberedCommand[] {
  return view.recentCommandChunks.flat();
}
export const maxHosts = 10_000;
export const maxVms = 200_000;
export const maxControllers = 9;
export const maxRuleTargets = 64;
/** Unconfirmed hosts a VM left, per VM: a placement that would add one more is refused until a stop is confirmed. */
export const maxLeavingSourcesPerVm = 16;
/** Restarts (and, separately, resets) recorded per VM: the manager's per-window limits may not exceed it. */
export const maxRecordedRecoveriesPerKind = 32;
/** The largest F a cluster can be configured with. */
export const maxHostFailuresToTolerate = 100;
export const maxCpuPerEntity = 1_000_000;
export const maxMemoryMiBPerEntity = 1_000_000_000;

export const emptyView: View = {
  epoch: 0,
  controllerIds: [],
  leader: null,
  hosts: ChunkedMap.empty(),
  vms: ChunkedMap.empty(),
  hostFailuresToTolerate: null,
  recentCommandChunks: [],
  recentCommandCount: 0,
  recentCommandIndex: ChunkedMap.empty(),
};

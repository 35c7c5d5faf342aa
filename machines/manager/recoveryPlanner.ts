/**
 * The recovery policy as a pure step function, etcd-raft style: each input
 * (a committed view, a report from a host, a command result, leadership, a
 * clock tick) goes in with the controller's clock reading, and out come the
 * decisions — view commands to propose, commands to send to hosts, notes for
 * the log. No I/O and no timers: the caller feeds `tick` inputs.
 *
 * The state is owned by the caller and changed in place by `stepRecoveryPlanner`.
 *
 * The manager acts only on the committed view: a placement it proposed takes
 * effect when the view shows the VM at a new placement epoch, whoever
 * proposed it; a VM is started only at the host and placement epoch the view
 * names. It is active only while its controller is the Paxos leader with a
 * lease; losing that drops everything in flight (a new term rebuilds from the
 * view). Restarts and resets are recorded in the view (`vm.record-recovery`)
 * and counted from there, so their per-window limits hold across leaders.
 */
import type { GuestHealth } from "../guest/guestWatchdog.ts";
import type { ViewCommand } from "../view/viewCommands.ts";
import type { HostState, LeavingSource, RecoveryKind, Resources, View, VmRecord } from "../view/viewTypes.ts";
import type { VmHealth } from "../vm/vmHealth.ts";
import { startRetryDelayMs, type ManagerConfig } from "./managerConfig.ts";
import { comparePlacementOrder, compareIds, planPlacements, type PlacementReservation } from "./placement.ts";

export type HostCommand =
  | { readonly action: "start"; readonly hostId: string; readonly vmId: string; readonly placementEpoch: number; readonly attempt: number }
  /** Sent to the host a VM is leaving without live migration: the placement already moved on (`placementEpoch` is the new one). */
  | { readonly action: "stop"; readonly hostId: string; readonly vmId: string; readonly placementEpoch: number }
  | { readonly action: "reset"; readonly hostId: string; readonly vmId: string; readonly placementEpoch: number }
  /** Sent to the source host: move the VM, live, to `targetHostId`, where the view places it at `placementEpoch` marked as migrating from the source. */
  | { readonly action: "migrate"; readonly hostId: string; readonly targetHostId: string; readonly vmId: string; readonly placementEpoch: number };

export type HostCommandAction = HostCommand["action"];

export type ManagerInput =
  | { readonly type: "leadership"; readonly nowMs: number; readonly isLeader: boolean; readonly leaseValidUntilMs: number }
  | { readonly type: "view"; readonly nowMs: number; readonly view: View }
  /** From this controller's failure detector (`proposeHostFailed`): the leader-clock time by which the host's lease and VMs are surely gone. */
  | { readonly type: "host-failure-declared"; readonly nowMs: number; readonly hostId: string; readonly incarnation: number; readonly leaseExpiresByMs: number }
  | { readonly type: "host-capabilities"; readonly nowMs: number; readonly hostId: string; readonly supportsLiveMigration: boolean }
  | { readonly type: "vm-report"; readonly nowMs: number; readonly hostId: string; readonly incarnation: number; readonly vmId: string; readonly health: VmHealth }
  | { readonly type: "guest-report"; readonly nowMs: number; readonly hostId: string; readonly incarnation: number; readonly vmId: string; readonly health: GuestHealth }
  | {
      readonly type: "host-command-result";
      readonly nowMs: number;
      readonly hostId: string;
      readonly vmId: string;
      readonly action: HostCommandAction;
      readonly placementEpoch: number;
      readonly ok: boolean;
      readonly error?: string;
    }
  /** The outcome of a proposed command, when the proposal client reports one (a commit is also seen in the view). */
  | { readonly type: "proposal-result"; readonly nowMs: number; readonly commandId: string; readonly committed: boolean; readonly reason?: string }
  /**
   * VMs that are placed by someone else at first (an import of VMs already running on known hosts): the
   * manager gives them no initial placement until `untilMs`, so it never starts a second copy.
   */
  | { readonly type: "hold-initial-placement"; readonly nowMs: number; readonly vmIds: readonly string[]; readonly untilMs: number }
  | { readonly type: "tick"; readonly nowMs: number };

export type ManagerNoteKind =
  | "activated"
  | "deactivated"
  | "waiting-for-lease"
  | "placement-proposed"
  /** A live migration answered: `ok` false means the VM stayed on (or is placed back on) the source. */
  | "migration-finished"
  | "placement-refused"
  | "pending"
  | "placed"
  | "start-failed"
  | "started"
  | "restart-in-place"
  | "crash-loop-relocate"
  | "reset"
  | "reset-limit"
  | "evacuation-stuck"
  | "host-drained"
  | "stale-report"
  /** A VM placed on an up host that the host says is not there (an earlier leader placed it and never saw it started). */
  | "not-running"
  /** A host the view holds up reports from a newer incarnation: the view's one ended (its VMs were powered off). */
  | "host-superseded"
  /** The view holds no F for admission control: this manager proposes its configured one. */
  | "configure-proposed"
  /** The view's F differs from this manager's configured one: the view's holds (noted once per term and value). */
  | "configuration-differs";

export type ManagerOutput =
  | { readonly kind: "propose"; readonly command: ViewCommand }
  | { readonly kind: "host-command"; readonly command: HostCommand }
  | { readonly kind: "note"; readonly note: ManagerNoteKind; readonly fields: Readonly<Record<string, string | number | boolean>> };

type TaskReason = "initial" | "failover" | "evacuate" | "relocate" | "restart" | "migrate";

/** What a task in phase `finishing` waits to see committed. */
type MigrationEnd = "done" | "done-then-start" | "abort";

interface VmTask {
  readonly vmId: string;
  readonly reason: TaskReason;
  phase: "proposing" | "stopping-source" | "migrating" | "finishing" | "queued" | "starting";
  /** In phase `finishing`: the migration command proposed (`vm.migrate-done` or `vm.migrate-abort`) and what follows its commit. */
  migrationEnd: MigrationEnd | null;
  commandId: string;
  proposedAtMs: number;
  expectedPlacementEpoch: number;
  resources: Resources;
  /** Where the VM is to run: the proposed host, then the committed one. */
  hostId: string;
  placementEpoch: number;
  /** The host a running VM is leaving (evacuation), stopped or migrated from before it starts elsewhere. */
  sourceHostId: string | null;
  attempts: number;
  notBeforeMs: number;
  deadlineMs: number;
}

interface VmHistory {
  /** This manager's restarts and guest resets (whole ms of its clock) not yet seen in the view's record: proposed, not committed yet, or lost. */
  readonly unrecordedAtMs: Record<RecoveryKind, number[]>;
  readonly excludedHosts: Set<string>;
  relocate: boolean;
  hungSinceMs: number | null;
  hungOnHostId: string | null;
  /** Live migrations of this VM that failed or got no answer; at `maxMigrationAttemptsPerVm` it is evacuated by restart. */
  migrationFailures: number;
  /** Targets a migration of this VM failed to, each with until when an evacuation avoids it (a dead host fails at once, again and again). */
  readonly failedMigrationTargets: Map<string, number>;
  /**
   * Hosts the VM left (evacuation, relocation) whose stop is not confirmed: it may still run there. Kept across
   * later moves and tasks; no start goes out anywhere else until each confirmed the VM off or its incarnation ended.
   * The view's `leavingFrom` is the replicated record (so a new leader knows them too): its entries are taken in
   * here whenever the VM's sources are read (`sourcesOf`), and each one dropped here is cleared there (`vm.left`).
   */
  readonly unconfirmedSources: Map<string, UnconfirmedSource>;
}

interface UnconfirmedSource {
  /** The view's incarnation of the host when the VM left it: the one that may still run it. */
  readonly incarnation: number;
  /** The placement epoch that moved the VM off it: a stop answered for an older epoch says nothing about now. */
  readonly sincePlacementEpoch: number;
}

export interface RecoveryPlannerState {
  readonly config: ManagerConfig;
  active: boolean;
  leaseValidUntilMs: number;
  view: View | null;
  readonly tasks: Map<string, VmTask>;
  readonly pending: Map<string, string>;
  readonly history: Map<string, VmHistory>;
  /** `${hostId}@${incarnation}` → leaseExpiresByMs, from this controller's detector. */
  readonly declaredLeaseExpiry: Map<string, number>;
  /** `${hostId}@${incarnation}` → when this term first saw the failure committed. */
  readonly failureSeenAtMs: Map<string, number>;
  readonly liveMigrationHosts: Set<string>;
  readonly refusedCommandIds: Map<string, string>;
  readonly hungVms: Set<string>;
  /**
   * hostId → the view's incarnation of it that its own reports show has ended (they come from a newer
   * one, which the view has not recorded yet): its VMs are placed elsewhere, and nothing is placed there.
   */
  readonly supersededHosts: Map<string, number>;
  /** vmId → until when it gets no initial placement from this manager. */
  readonly initialPlacementHeld: Map<string, number>;
  /** `leavingFrom` entries (`leftKey`) this manager found off and proposed `vm.left` for: not taken in again while the view still shows them. */
  readonly leftProposed: Set<string>;
  /** When this term last proposed its F for a view that has none (proposed again after `proposalTimeoutMs`). */
  configureProposedAtMs: number;
  /** The view's F last noted as differing from the configured one in this term (undefined: none noted). */
  configurationDiffersNoted: number | undefined;
  /** The earliest time a failed host's VMs become placeable, if any are waiting. */
  nextFailureMaturesAtMs: number;
  lastPendingPlanAtMs: number;
  upHostsSignature: string;
  /** The pending set (ids and reasons) last noted, so the note comes only when it changes. */
  pendingNotedSignature: string;
  rescan: boolean;
}

/** Bounds on remembered facts, so hostile or endless input cannot grow the state without limit. */
export const maxRememberedFailures = 10_000;
export const maxRememberedRefusals = 10_000;
export const maxTrackedCapabilities = 10_000;
export const maxHeldInitialPlacements = 200_000;
/** Live migrations in flight per host, counted at the source and at the target; more evacuations wait for one to end. */
export const maxConcurrentMigrationsPerHost = 2;
/** A VM whose live migration failed this often is evacuated by stop and restart instead. */
export const maxMigrationAttemptsPerVm = 2;
/** Ids of VMs named in one `pending` note; the rest are counted. */
export const maxPendingIdsNoted = 5;
/** Failed migration targets remembered per VM. */
export const maxFailedMigrationTargetsPerVm = 64;
/** An evacuation avoids a host a migration of the same VM just failed to for this long (the detector fails a dead one meanwhile). */
export const failedMigrationTargetAvoidMs = 5_000;
/** `vm.left` proposals remembered (so an entry the view still shows is not taken in again before the commit). */
export const maxRememberedLeftProposals = 10_000;

export function createRecoveryPlanner(config: ManagerConfig): RecoveryPlannerState {
  return {
    config,
    active: false,
    leaseValidUntilMs: 0,
    view: null,
    tasks: new Map(),
    pending: new Map(),
    history: new Map(),
    declaredLeaseExpiry: new Map(),
    failureSeenAtMs: new Map(),
    liveMigrationHosts: new Set(),
    refusedCommandIds: new Map(),
    hungVms: new Set(),
    initialPlacementHeld: new Map(),
    leftProposed: new Set(),
    supersededHosts: new Map(),
    configureProposedAtMs: -Infinity,
    configurationDiffersNoted: undefined,
    nextFailureMaturesAtMs: Infinity,
    lastPendingPlanAtMs: -Infinity,
    upHostsSignature: "",
    pendingNotedSignature: "",
    rescan: true,
  };
}

function boundedSet<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  map.delete(key);
  map.set(key, value);
  while (map.size > max) map.delete(map.keys().next().value as K);
}

function historyOf(state: RecoveryPlannerState, vmId: string): VmHistory {
  let entry = state.history.get(vmId);
  if (!entry) {
    entry = { unrecordedAtMs: { restart: [], reset: [] }, excludedHosts: new Set(), relocate: false, hungSinceMs: null, hungOnHostId: null, migrationFailures: 0, failedMigrationTargets: new Map(), unconfirmedSources: new Map() };
    state.history.set(vmId, entry);
  }
  return entry;
}

class Step {
  readonly outputs: ManagerOutput[] = [];
  /** Hosts noted drained in this step (several placements committed in one view drain a host once). */
  readonly drainedNoted = new Set<string>();
  hostCommands = 0;
  constructor(
    readonly state: RecoveryPlannerState,
    readonly nowMs: number,
  ) {}
  note(note: ManagerNoteKind, fields: Record<string, string | number | boolean>): void {
    this.outputs.push({ kind: "note", note, fields });
  }
  propose(command: ViewCommand): void {
    this.outputs.push({ kind: "propose", command });
  }
  send(command: HostCommand): void {
    this.hostCommands++;
    this.outputs.push({ kind: "host-command", command });
  }
}

export function stepRecoveryPlanner(state: RecoveryPlannerState, input: ManagerInput): ManagerOutput[] {
  const step = new Step(state, input.nowMs);
  switch (input.type) {
    case "leadership": {
      const active = input.isLeader && input.nowMs < input.leaseValidUntilMs;
      state.leaseValidUntilMs = input.leaseValidUntilMs;
      setActive(step, active);
      break;
    }
    case "view":
      if (input.view !== state.view) {
        state.view = input.view;
        state.rescan = true;
      }
      break;
    case "host-failure-declared":
      boundedSet(state.declaredLeaseExpiry, `${input.hostId}@${input.incarnation}`, input.leaseExpiresByMs, maxRememberedFailures);
      state.rescan = true;
      break;
    case "host-capabilities":
      if (input.supportsLiveMigration) {
        state.liveMigrationHosts.add(input.hostId);
        while (state.liveMigrationHosts.size > maxTrackedCapabilities) state.liveMigrationHosts.delete(state.liveMigrationHosts.values().next().value as string);
      } else state.liveMigrationHosts.delete(input.hostId);
      break;
    case "vm-report":
      if (state.active) onVmReport(step, input);
      break;
    case "guest-report":
      if (state.active) onGuestReport(step, input);
      break;
    case "host-command-result":
      if (state.active) onHostCommandResult(step, input);
      break;
    case "proposal-result":
      if (state.active && !input.committed) onProposalRefused(step, input.commandId, input.reason ?? "refused");
      break;
    case "hold-initial-placement":
      for (const vmId of input.vmIds) boundedSet(state.initialPlacementHeld, vmId, input.untilMs, maxHeldInitialPlacements);
      state.rescan = true;
      break;
    case "tick":
      for (const [vmId, untilMs] of state.initialPlacementHeld) {
        if (input.nowMs < untilMs) continue;
        state.initialPlacementHeld.delete(vmId);
        state.rescan = true;
      }
      break;
  }
  if (state.active && input.nowMs >= state.leaseValidUntilMs) setActive(step, false);
  if (state.active && state.view) reconcile(step, state.view);
  return step.outputs;
}

function setActive(step: Step, active: boolean): void {
  const { state } = step;
  if (active === state.active) return;
  state.active = active;
  state.tasks.clear();
  state.pending.clear();
  state.failureSeenAtMs.clear();
  state.supersededHosts.clear();
  state.refusedCommandIds.clear();
  state.hungVms.clear();
  for (const history of state.history.values()) {
    history.hungSinceMs = null;
    history.hungOnHostId = null;
  }
  state.nextFailureMaturesAtMs = Infinity;
  state.lastPendingPlanAtMs = -Infinity;
  state.pendingNotedSignature = "";
  state.configureProposedAtMs = -Infinity;
  state.configurationDiffersNoted = undefined;
  state.rescan = true;
  step.note(active ? "activated" : "deactivated", {});
}

/** A report counts only from the host the view places the VM on, at the incarnation the view has for it. */
function trustedReport(step: Step, hostId: string, incarnation: number, vmId: string): VmRecord | null {
  const view = step.state.view;
  const vm = view?.vms.get(vmId);
  const host = view?.hosts.get(hostId);
  const task = step.state.tasks.get(vmId);
  const placedHere =
    vm?.placement?.hostId === hostId ||
    vm?.placement?.migratingFrom === hostId ||
    (task?.phase === "stopping-source" && task.sourceHostId === hostId) ||
    (view !== null && sourcesOf(step.state, view, vmId).get(hostId)?.incarnation === incarnation);
  if (!vm || !host || host.incarnation !== incarnation || !placedHere || (host.state !== "up" && host.state !== "maintenance")) {
    // From a newer incarnation of the host the VM is placed on: an agent takes a new incarnation only after
    // isolating (its VMs powered off) or rebooting, so the view's incarnation of the host has ended.
    if (vm && host && placedHere && incarnation > host.incarnation && host.state !== "failed" && host.state !== "fenced" && step.state.supersededHosts.get(hostId) !== host.incarnation) {
      boundedSet(step.state.supersededHosts, hostId, host.incarnation, maxRememberedFailures);
      step.state.rescan = true;
      step.note("host-superseded", { hostId, viewIncarnation: host.incarnation, reportedIncarnation: incarnation });
    }
    step.note("stale-report", { hostId, incarnation, vmId });
    return null;
  }
  return vm;
}

/** Whether the view's incarnation of this host is known to have ended (its own reports come from a newer one). */
function isSuperseded(state: RecoveryPlannerState, view: View, hostId: string): boolean {
  const host = view.hosts.get(hostId);
  return host !== undefined && host.state !== "failed" && host.state !== "fenced" && state.supersededHosts.get(hostId) === host.incarnation;
}

function onVmReport(step: Step, input: Extract<ManagerInput, { type: "vm-report" }>): void {
  const { state, nowMs } = step;
  const vm = trustedReport(step, input.hostId, input.incarnation, input.vmId);
  if (!vm) return;
  const task = state.tasks.get(vm.vmId);
  const off = input.health === "crashed" || input.health === "shutoff" || input.health === "stopped" || input.health === "missing";
  // Mid-migration the migration task decides; the target does not have it yet, the source is about to let go.
  if (vm.placement?.migratingFrom !== undefined) return;
  if (vm.placement?.hostId !== input.hostId) {
    // From a host the VM left: only its stop matters here; nothing is ever started on it from such a report.
    if (off) confirmSourceOff(step, vm.vmId, input.hostId, Infinity);
    return;
  }
  if (task) {
    if (task.phase === "stopping-source" && task.sourceHostId === input.hostId && off) sourceStopped(step, task);
    else if (task.hostId === input.hostId && input.health === "running" && (task.phase === "starting" || task.phase === "queued")) finishStart(step, task);
    else if (task.phase === "starting" && task.hostId === input.hostId && (input.health === "crashed" || input.health === "shutoff")) startFailed(step, task, `vm ${input.health}`);
    return;
  }
  if (vm.desiredState !== "running" || !vm.placement) return;
  if (input.health === "hung") {
    markHung(state, vm.vmId, input.hostId, nowMs);
    return;
  }
  if (input.health === "missing") {
    // Not a crash: nothing ran here to crash. Started without counting against the restart window.
    step.note("not-running", { vmId: vm.vmId, hostId: input.hostId, placementEpoch: vm.placement.epoch });
    queueStartInPlace(state, vm, input.hostId, nowMs);
    return;
  }
  if (input.health !== "crashed" && input.health !== "shutoff") return;
  const history = historyOf(state, vm.vmId);
  const restarts = recoveriesInWindow(step, vm, "restart", state.config.restartWindowMs);
  if (restarts < state.config.maxRestartsPerWindow) {
    recordRecovery(step, vm.vmId, "restart");
    step.note("restart-in-place", { vmId: vm.vmId, hostId: input.hostId, restartsInWindow: restarts + 1 });
    queueStartInPlace(state, vm, input.hostId, nowMs);
    return;
  }
  step.note("crash-loop-relocate", { vmId: vm.vmId, hostId: input.hostId, restartsInWindow: restarts });
  history.excludedHosts.add(input.hostId);
  history.relocate = true;
  state.rescan = true;
}

function queueStartInPlace(state: RecoveryPlannerState, vm: VmRecord, hostId: string, nowMs: number): void {
  const epoch = vm.placement!.epoch;
  state.tasks.set(vm.vmId, {
    vmId: vm.vmId,
    reason: "restart",
    phase: "queued",
    commandId: "",
    proposedAtMs: nowMs,
    expectedPlacementEpoch: epoch,
    resources: vm.resources,
    hostId,
    placementEpoch: epoch,
    sourceHostId: null,
    attempts: 0,
    notBeforeMs: nowMs,
    deadlineMs: Infinity,
    migrationEnd: null,
  });
}

function markHung(state: RecoveryPlannerState, vmId: string, hostId: string, nowMs: number): void {
  const history = historyOf(state, vmId);
  if (history.hungSinceMs !== null && history.hungOnHostId === hostId) return;
  history.hungSinceMs = nowMs;
  history.hungOnHostId = hostId;
  state.hungVms.add(vmId);
}

function clearHung(state: RecoveryPlannerState, vmId: string): void {
  const history = state.history.get(vmId);
  if (history) {
    history.hungSinceMs = null;
    history.hungOnHostId = null;
  }
  state.hungVms.delete(vmId);
}

function onGuestReport(step: Step, input: Extract<ManagerInput, { type: "guest-report" }>): void {
  const vm = trustedReport(step, input.hostId, input.incarnation, input.vmId);
  if (!vm) return;
  if (input.health === "hung") markHung(step.state, vm.vmId, input.hostId, step.nowMs);
  else clearHung(step.state, vm.vmId);
}

function onHostCommandResult(step: Step, input: Extract<ManagerInput, { type: "host-command-result" }>): void {
  if (input.action === "stop" && input.ok) {
    // Whatever task sent it (possibly one since replaced by a later move), the VM was off there when it answered.
    if (confirmSourceOff(step, input.vmId, input.hostId, input.placementEpoch)) return;
  }
  const task = step.state.tasks.get(input.vmId);
  if (!task) return;
  const error = input.error ?? "failed";
  switch (input.action) {
    case "start":
      if (task.phase !== "starting" || task.hostId !== input.hostId || task.placementEpoch !== input.placementEpoch) return;
      if (input.ok) finishStart(step, task);
      else startFailed(step, task, error);
      return;
    case "stop":
      if (task.phase !== "stopping-source" || task.sourceHostId !== input.hostId || task.placementEpoch !== input.placementEpoch) return;
      if (input.ok) sourceStopped(step, task);
      else retryStop(step, task, error);
      return;
    case "migrate":
      if (task.phase !== "migrating" || task.sourceHostId !== input.hostId || task.placementEpoch !== input.placementEpoch) return;
      if (input.ok) endMigration(step, task, "done", { ok: true, from: input.hostId, to: task.hostId });
      else {
        // The source still runs it (the host judged by the hypervisor's state): placed back there. A driver that gave
        // up may still finish the copy later, so the target is stopped before the VM starts anywhere else.
        noteFailedMigration(step.state, task, step.nowMs);
        if (step.state.view !== null) addUnconfirmedSource(step.state, step.state.view, task.vmId, task.hostId, task.placementEpoch);
        endMigration(step, task, "abort", { ok: false, from: input.hostId, to: task.hostId, error: error.slice(0, 200) });
      }
      return;
    case "reset":
      return;
  }
}

function onProposalRefused(step: Step, commandId: string, reason: string): void {
  for (const task of step.state.tasks.values()) {
    if (task.phase !== "proposing" || task.commandId !== commandId) continue;
    boundedSet(step.state.refusedCommandIds, commandId, reason, maxRememberedRefusals);
    step.note("placement-refused", { vmId: task.vmId, hostId: task.hostId, reason });
    step.state.tasks.delete(task.vmId);
    step.state.rescan = true;
    return;
  }
}

function noteFailedMigration(state: RecoveryPlannerState, task: VmTask, nowMs: number): void {
  const history = historyOf(state, task.vmId);
  history.migrationFailures++;
  history.failedMigrationTargets.delete(task.hostId);
  history.failedMigrationTargets.set(task.hostId, nowMs + failedMigrationTargetAvoidMs);
  while (history.failedMigrationTargets.size > maxFailedMigrationTargetsPerVm) history.failedMigrationTargets.delete(history.failedMigrationTargets.keys().next().value as string);
}

/** Proposes the end of a live migration (the marker cleared, or the VM placed back on its source) and waits for its commit. */
function endMigration(step: Step, task: VmTask, end: MigrationEnd, fields: Record<string, string | number | boolean>): void {
  const type = end === "abort" ? "vm.migrate-abort" : "vm.migrate-done";
  task.phase = "finishing";
  task.migrationEnd = end;
  task.commandId = `${end === "abort" ? "migrate-abort" : "migrate-done"}-${task.vmId}-${task.placementEpoch}`;
  task.proposedAtMs = step.nowMs;
  task.deadlineMs = Infinity;
  if (end !== "done-then-start") step.note("migration-finished", { vmId: task.vmId, placementEpoch: task.placementEpoch, ...fields });
  step.propose({ id: task.commandId, type, vmId: task.vmId, expectedPlacementEpoch: task.placementEpoch });
}

function finishStart(step: Step, task: VmTask): void {
  step.state.tasks.delete(task.vmId);
  const history = step.state.history.get(task.vmId);
  if (history) {
    history.relocate = false;
    history.failedMigrationTargets.clear();
  }
  step.note("started", { vmId: task.vmId, hostId: task.hostId, placementEpoch: task.placementEpoch, reason: task.reason });
}

function startFailed(step: Step, task: VmTask, error: string): void {
  const { state, nowMs } = step;
  step.note("start-failed", { vmId: task.vmId, hostId: task.hostId, attempt: task.attempts, error });
  if (task.attempts < state.config.maxStartAttempts) {
    task.phase = "queued";
    task.notBeforeMs = nowMs + startRetryDelayMs(state.config, task.attempts);
    task.deadlineMs = Infinity;
    return;
  }
  const history = historyOf(state, task.vmId);
  history.excludedHosts.add(task.hostId);
  history.relocate = true;
  state.tasks.delete(task.vmId);
  state.rescan = true;
}

function beginStop(step: Step, task: VmTask): void {
  task.phase = "stopping-source";
  task.attempts++;
  task.deadlineMs = step.nowMs + step.state.config.hostCommandTimeoutMs;
  step.send({ action: "stop", hostId: task.sourceHostId!, vmId: task.vmId, placementEpoch: task.placementEpoch });
}

function retryStop(step: Step, task: VmTask, error: string): void {
  if (task.attempts >= step.state.config.maxStartAttempts) {
    // Never start the VM elsewhere while it may still run on the source: leave it to an operator.
    step.note("evacuation-stuck", { vmId: task.vmId, hostId: task.sourceHostId!, error });
    step.state.tasks.delete(task.vmId);
    return;
  }
  task.notBeforeMs = step.nowMs + startRetryDelayMs(step.state.config, task.attempts);
  task.deadlineMs = Infinity;
}

/**
 * The VM is off on a host it left (a stop or migration answered ok for a placement epoch at least the one that
 * moved it off, or an off report from that incarnation). Returns whether the task's own source was confirmed.
 */
function confirmSourceOff(step: Step, vmId: string, hostId: string, placementEpoch: number): boolean {
  const view = step.state.view;
  const source = view === null ? undefined : sourcesOf(step.state, view, vmId).get(hostId);
  if (!source || placementEpoch < source.sincePlacementEpoch) return false;
  forgetSource(step, vmId, hostId);
  const task = step.state.tasks.get(vmId);
  if (task?.phase !== "stopping-source" || task.sourceHostId !== hostId) return false;
  sourceStopped(step, task);
  return true;
}

function addUnconfirmedSource(state: RecoveryPlannerState, view: View, vmId: string, hostId: string, placementEpoch: number): void {
  const host = view.hosts.get(hostId);
  if (host === undefined) return;
  const sources = historyOf(state, vmId).unconfirmedSources;
  if (!sources.has(hostId)) sources.set(hostId, { incarnation: host.incarnation, sincePlacementEpoch: placementEpoch });
}

/** Whether the incarnation of a host that may still run the VM has surely ended: removed, newer incarnation, superseded, or failed with its lease surely out. */
function sourceIncarnationEnded(step: Step, view: View, hostId: string, incarnation: number): boolean {
  const host = view.hosts.get(hostId);
  if (host === undefined || host.incarnation > incarnation) return true;
  if (host.incarnation < incarnation) return false;
  return sourceGone(step, view, hostId);
}

/** The hosts that may still run the VM, other than `exceptHostId`, after dropping those whose incarnation ended. */
function remainingSources(step: Step, view: View, vmId: string, exceptHostId: string | null): string[] {
  const sources = sourcesOf(step.state, view, vmId);
  if (sources.size === 0) return [];
  const remaining: string[] = [];
  for (const [hostId, source] of [...sources]) {
    if (sourceIncarnationEnded(step, view, hostId, source.incarnation)) forgetSource(step, vmId, hostId);
    else if (hostId !== exceptHostId) remaining.push(hostId);
  }
  return remaining;
}

function leftKey(vmId: string, entry: LeavingSource): string {
  return `${vmId}\u0000${entry.hostId}\u0000${entry.incarnation}\u0000${entry.placementEpoch}`;
}

/**
 * The hosts the VM left that may still run it, with the view's `leavingFrom` taken in: whoever moved the VM (an
 * earlier leader too), this manager stops it there before starting it anywhere else.
 */
function sourcesOf(state: RecoveryPlannerState, view: View, vmId: string): Map<string, UnconfirmedSource> {
  const leaving = view.vms.get(vmId)?.leavingFrom;
  const existing = state.history.get(vmId)?.unconfirmedSources;
  if (leaving === undefined) return existing ?? noSources;
  const sources = existing ?? historyOf(state, vmId).unconfirmedSources;
  for (const entry of leaving) {
    if (state.leftProposed.has(leftKey(vmId, entry))) continue;
    const known = sources.get(entry.hostId);
    if (known === undefined || known.incarnation < entry.incarnation) sources.set(entry.hostId, { incarnation: entry.incarnation, sincePlacementEpoch: entry.placementEpoch });
    else if (known.incarnation === entry.incarnation && known.sincePlacementEpoch < entry.placementEpoch) sources.set(entry.hostId, { incarnation: entry.incarnation, sincePlacementEpoch: entry.placementEpoch });
  }
  return sources;
}

const noSources: Map<string, UnconfirmedSource> = new Map();

/** The VM is off on a host it left (or that incarnation ended): forgotten here, and cleared in the view by `vm.left`. */
function forgetSource(step: Step, vmId: string, hostId: string): void {
  const { state } = step;
  state.history.get(vmId)?.unconfirmedSources.delete(hostId);
  const entry = state.view?.vms.get(vmId)?.leavingFrom?.find((candidate) => candidate.hostId === hostId);
  if (entry === undefined) return;
  const key = leftKey(vmId, entry);
  if (state.leftProposed.has(key)) return;
  state.leftProposed.add(key);
  while (state.leftProposed.size > maxRememberedLeftProposals) state.leftProposed.delete(state.leftProposed.values().next().value as string);
  step.propose({ id: `left-${vmId}-${hostId}-${entry.incarnation}-${entry.placementEpoch}`, type: "vm.left", vmId, hostId, incarnation: entry.incarnation, placementEpoch: entry.placementEpoch });
}

function sourceStopped(step: Step, task: VmTask): void {
  if (task.sourceHostId !== null) forgetSource(step, task.vmId, task.sourceHostId);
  const view = step.state.view;
  const next = view ? remainingSources(step, view, task.vmId, task.hostId) : [];
  if (next.length > 0) {
    // Another host it left earlier has not confirmed its stop: stopped there too before any start.
    task.sourceHostId = next[0]!;
    task.attempts = 0;
    beginStop(step, task);
    return;
  }
  task.phase = "queued";
  task.sourceHostId = null;
  task.attempts = 0;
  task.notBeforeMs = step.nowMs;
  task.deadlineMs = Infinity;
}

function placementHostState(view: View, vm: VmRecord): HostState | "unknown" | null {
  if (!vm.placement) return null;
  return view.hosts.get(vm.placement.hostId)?.state ?? "unknown";
}

function reconcile(step: Step, view: View): void {
  const { state, nowMs } = step;
  advanceTasks(step, view);
  if (nowMs >= state.nextFailureMaturesAtMs) state.rescan = true;
  const upSignature = upHostsSignature(view);
  const capacityMayHaveGrown = upSignature !== state.upHostsSignature;
  state.upHostsSignature = upSignature;
  const retryPending = capacityMayHaveGrown || nowMs >= state.lastPendingPlanAtMs + state.config.pendingRetryIntervalMs;
  if (state.rescan || (retryPending && state.pending.size > 0)) {
    planPlacementsNeeded(step, view, retryPending);
    notePendingSet(step);
  }
  dispatchHostCommands(step, view);
  resetHungGuests(step, view);
  configureCluster(step, view);
}

/**
 * F gets into the view from the active manager: its configured F, proposed only while the view has none (a
 * compare-and-set on "unset"), so two controllers configured differently never take turns overriding each
 * other; the one whose proposal commits first sets it, and the other notes the difference (and an operator
 * changes it with `cluster.configure`). Not while imports are outstanding (VMs placed by someone else first,
 * already running): admission would refuse VMs that run, before their hosts are even up.
 */
function configureCluster(step: Step, view: View): void {
  const { state, nowMs } = step;
  const configured = state.config.hostFailuresToTolerate;
  const inView = view.hostFailuresToTolerate;
  if (inView !== null) {
    if (inView !== configured && state.configurationDiffersNoted !== inView) {
      state.configurationDiffersNoted = inView;
      step.note("configuration-differs", { viewHostFailuresToTolerate: inView, configuredHostFailuresToTolerate: configured });
    }
    return;
  }
  if (state.initialPlacementHeld.size > 0 || nowMs < state.configureProposedAtMs + state.config.proposalTimeoutMs) return;
  state.configureProposedAtMs = nowMs;
  step.note("configure-proposed", { hostFailuresToTolerate: configured });
  step.propose({ id: `configure-f${configured}-e${view.epoch}`, type: "cluster.configure", hostFailuresToTolerate: configured, expectedHostFailuresToTolerate: null });
}

function upHostsSignature(view: View): string {
  let upCount = 0;
  let epochSum = 0;
  for (const host of view.hosts.values()) {
    if (host.state !== "up") continue;
    upCount++;
    epochSum += host.stateEpoch;
  }
  // Every transition to up sets a new, larger stateEpoch, so a host coming up changes the sum; VMs leaving change the count of VMs.
  return `${upCount}:${epochSum}:${view.vms.size}`;
}

function advanceTasks(step: Step, view: View): void {
  const { state, nowMs } = step;
  for (const task of [...state.tasks.values()]) {
    const vm = view.vms.get(task.vmId);
    if (!vm || vm.desiredState !== "running") {
      state.tasks.delete(task.vmId);
      continue;
    }
    if (task.phase === "proposing") {
      if (vm.placement && vm.placement.epoch !== task.expectedPlacementEpoch) {
        placementCommitted(step, view, task, vm);
      } else if (nowMs >= task.proposedAtMs + state.config.proposalTimeoutMs) {
        state.tasks.delete(task.vmId);
        state.rescan = true;
      }
      continue;
    }
    if (task.phase === "finishing") {
      migrationEndCommitted(step, view, task, vm);
      continue;
    }
    // Past proposing, the task works for one placement; if the view moved the VM on, the task is stale.
    if (!vm.placement || vm.placement.epoch !== task.placementEpoch || vm.placement.hostId !== task.hostId || view.hosts.get(task.hostId)?.state !== "up" || isSuperseded(state, view, task.hostId)) {
      state.tasks.delete(task.vmId);
      state.rescan = true;
      continue;
    }
    // A migration whose source is no longer up or in maintenance: the marker's rules take over (planPlacementsNeeded).
    if (task.phase === "migrating" && (!migrationEndAlive(state, view, task.sourceHostId!) || viewIncarnationGone(step, view, task.sourceHostId!) || viewIncarnationGone(step, view, task.hostId))) {
      state.tasks.delete(task.vmId);
      state.rescan = true;
      continue;
    }
    // The host it is leaving failed meanwhile: once that host's lease has surely run out, the VM is off there.
    if (task.phase === "stopping-source" && task.sourceHostId !== null) {
      const source = sourcesOf(state, view, task.vmId).get(task.sourceHostId);
      if (source === undefined || sourceIncarnationEnded(step, view, task.sourceHostId, source.incarnation)) sourceStopped(step, task);
    }
  }
}

/** Whether a migration's end (its source or target) can still take part: up or in maintenance, at the view's incarnation. */
function migrationEndAlive(state: RecoveryPlannerState, view: View, hostId: string): boolean {
  const host = view.hosts.get(hostId);
  return host !== undefined && (host.state === "up" || host.state === "maintenance") && !isSuperseded(state, view, hostId);
}

/** Whether the incarnation of a host the view names surely runs nothing any more (failed and matured, rejoined since, superseded, removed). */
function viewIncarnationGone(step: Step, view: View, hostId: string): boolean {
  const host = view.hosts.get(hostId);
  if (host === undefined) return true;
  if (host.state === "joining" && host.incarnation > 0) return true;
  return sourceGone(step, view, hostId);
}

/** A task in phase `finishing`: its `vm.migrate-done` or `vm.migrate-abort` committed, was overtaken, or timed out. */
function migrationEndCommitted(step: Step, view: View, task: VmTask, vm: VmRecord): void {
  const { state, nowMs } = step;
  const placement = vm.placement;
  const stillMarked = placement !== null && placement.epoch === task.placementEpoch && placement.migratingFrom !== undefined;
  if (stillMarked) {
    if (nowMs >= task.proposedAtMs + state.config.proposalTimeoutMs) {
      // No commit: the marker's rules pick it up again from the view.
      state.tasks.delete(task.vmId);
      state.rescan = true;
    }
    return;
  }
  if (task.migrationEnd !== "abort" && placement !== null && placement.epoch === task.placementEpoch && placement.hostId === task.hostId) {
    const source = task.sourceHostId;
    if (task.migrationEnd === "done" && source !== null && view.hosts.get(source)?.state === "maintenance") noteIfDrained(step, view, source);
    // The target owns the VM now. A start there confirms it runs (it finds the migrated VM running) and starts it
    // where it does not: the source answers "applied" for a VM that was not running there at all, and the
    // source's incarnation may have ended mid-migration.
    task.migrationEnd = null;
    task.phase = "queued";
    task.sourceHostId = null;
    task.attempts = 0;
    task.notBeforeMs = nowMs;
    task.deadlineMs = Infinity;
    return;
  }
  // Placed back on the source (or moved on otherwise): planned again from the view.
  state.tasks.delete(task.vmId);
  state.rescan = true;
}

/** Whether a host the view holds failed or fenced (or superseded) has surely stopped its VMs by now. */
function sourceGone(step: Step, view: View, hostId: string): boolean {
  const host = view.hosts.get(hostId);
  if (host === undefined) return true;
  if (isSuperseded(step.state, view, hostId)) return true;
  if (host.state !== "failed" && host.state !== "fenced") {
    // This controller's detector declared the view's incarnation of it failed, but the view does not show it
    // failed (it refuses a failure of a host in maintenance, which may then leave maintenance): the same
    // lease bound says its VMs are off.
    const declared = step.state.declaredLeaseExpiry.get(`${hostId}@${host.incarnation}`);
    return declared !== undefined && step.nowMs >= declared;
  }
  const maturesAt = failureMaturesAt(step, host.hostId, host.incarnation);
  // Checked again at every step (ticks included), so nothing needs scheduling here.
  return step.nowMs >= maturesAt;
}

/** When the VMs of this failed host incarnation are surely off: the detector's bound, or the undeclared wait from when this term saw it. */
function failureMaturesAt(step: Step, hostId: string, incarnation: number): number {
  const { state, nowMs } = step;
  const key = `${hostId}@${incarnation}`;
  let seenAt = state.failureSeenAtMs.get(key);
  if (seenAt === undefined) {
    seenAt = nowMs;
    boundedSet(state.failureSeenAtMs, key, seenAt, maxRememberedFailures);
  }
  return state.declaredLeaseExpiry.get(key) ?? seenAt + state.config.undeclaredFailureWaitMs;
}

function placementCommitted(step: Step, view: View, task: VmTask, vm: VmRecord): void {
  const placement = vm.placement!;
  task.hostId = placement.hostId;
  task.placementEpoch = placement.epoch;
  task.attempts = 0;
  task.notBeforeMs = step.nowMs;
  task.deadlineMs = Infinity;
  step.note("placed", { vmId: vm.vmId, hostId: placement.hostId, placementEpoch: placement.epoch, reason: task.reason });
  if (view.hosts.get(placement.hostId)?.state !== "up") {
    step.state.tasks.delete(vm.vmId);
    step.state.rescan = true;
    return;
  }
  if (placement.migratingFrom !== undefined) {
    // Live migration: the source moves it; nothing is stopped or started.
    task.sourceHostId = placement.migratingFrom;
    beginMigration(step, task);
    return;
  }
  task.phase = "queued";
  // Placed again on the host it is leaving (a new epoch there): nothing to stop; a start there finds it running if it does.
  if (task.sourceHostId === placement.hostId) task.sourceHostId = null;
  const sources = historyOf(step.state, vm.vmId).unconfirmedSources;
  sources.delete(placement.hostId);
  sourcesOf(step.state, view, vm.vmId);
  if (task.sourceHostId !== null) addUnconfirmedSource(step.state, view, vm.vmId, task.sourceHostId, placement.epoch);
  if (task.sourceHostId === null && sources.size > 0) {
    // An earlier move's stop is still unconfirmed (its task was replaced): that host is stopped first.
    const earlier = remainingSources(step, view, vm.vmId, placement.hostId);
    if (earlier.length > 0) task.sourceHostId = earlier[0]!;
  }
  if (task.sourceHostId !== null) beginStop(step, task);
  const drainedHost = task.sourceHostId;
  if (drainedHost !== null && view.hosts.get(drainedHost)?.state === "maintenance") noteIfDrained(step, view, drainedHost);
}

function beginMigration(step: Step, task: VmTask): void {
  task.phase = "migrating";
  task.attempts++;
  task.deadlineMs = step.nowMs + step.state.config.hostCommandTimeoutMs;
  step.send({ action: "migrate", hostId: task.sourceHostId!, targetHostId: task.hostId, vmId: task.vmId, placementEpoch: task.placementEpoch });
}

function noteIfDrained(step: Step, view: View, hostId: string): void {
  if (step.drainedNoted.has(hostId)) return;
  for (const vm of view.vms.values()) if (vm.placement?.hostId === hostId || vm.placement?.migratingFrom === hostId) return;
  step.drainedNoted.add(hostId);
  step.note("host-drained", { hostId });
}

/** Which VMs need a placement now, and why; failed hosts whose lease may still run make their VMs wait. */
function planPlacementsNeeded(step: Step, view: View, retryPending: boolean): void {
  const { state, nowMs } = step;
  state.rescan = false;
  state.nextFailureMaturesAtMs = Infinity;
  const needed: { vm: VmRecord; reason: TaskReason; sourceHostId: string | null }[] = [];
  const stillNeeded = new Set<string>();
  for (const vm of view.vms.values()) {
    if (vm.desiredState !== "running" || state.tasks.has(vm.vmId)) continue;
    if (vm.placement?.migratingFrom !== undefined) {
      followMigration(step, view, vm);
      continue;
    }
    const hostState = placementHostState(view, vm);
    let reason: TaskReason | null = null;
    let sourceHostId: string | null = null;
    if (hostState !== null) state.initialPlacementHeld.delete(vm.vmId);
    if (hostState !== null && hostState !== "failed" && hostState !== "fenced" && isSuperseded(state, view, vm.placement!.hostId)) {
      // No lease wait: the host itself runs a newer incarnation, so the view's one isolated or rebooted.
      reason = "failover";
    } else if (hostState === null) {
      if (!state.initialPlacementHeld.has(vm.vmId)) reason = "initial";
    } else if (hostState === "failed" || hostState === "fenced") {
      const host = view.hosts.get(vm.placement!.hostId)!;
      const maturesAt = failureMaturesAt(step, host.hostId, host.incarnation);
      if (nowMs >= maturesAt) reason = "failover";
      else if (maturesAt < state.nextFailureMaturesAtMs) {
        state.nextFailureMaturesAtMs = maturesAt;
        step.note("waiting-for-lease", { hostId: host.hostId, incarnation: host.incarnation, untilMs: maturesAt });
      }
    } else if (hostState === "joining" && view.hosts.get(vm.placement!.hostId)!.incarnation > 0) {
      // Rejoined: the old incarnation isolated (its lease ended, its VMs are off) before taking the new one.
      reason = "failover";
    } else if (hostState === "maintenance") {
      reason = "evacuate";
      sourceHostId = vm.placement!.hostId;
    } else if (hostState === "up" && state.history.get(vm.vmId)?.relocate) {
      // It may run there after all (a start that timed out, or one whose result a former term received):
      // stopped there first, like an evacuation, so it never runs on two hosts.
      reason = "relocate";
      sourceHostId = vm.placement!.hostId;
    }
    if (reason === null) continue;
    // Until it is started somewhere, the VM needs a new placement even if its old host comes back up:
    // the old placement epoch belongs to an incarnation that is gone.
    if (reason === "failover") historyOf(state, vm.vmId).relocate = true;
    stillNeeded.add(vm.vmId);
    if (state.pending.has(vm.vmId) && !retryPending) continue;
    needed.push({ vm, reason, sourceHostId });
  }
  for (const vmId of [...state.pending.keys()]) if (!stillNeeded.has(vmId)) state.pending.delete(vmId);
  if (needed.length === 0) return;
  if (retryPending) state.lastPendingPlanAtMs = nowMs;

  const reservations: PlacementReservation[] = [];
  let proposing = 0;
  for (const task of state.tasks.values()) {
    if (task.phase !== "proposing") continue;
    proposing++;
    reservations.push({ vmId: task.vmId, hostId: task.hostId, resources: task.resources });
  }
  const excludedHostsByVm = new Map<string, ReadonlySet<string>>();
  const superseded = [...state.supersededHosts.keys()].filter((hostId) => isSuperseded(state, view, hostId));
  // Hosts up in the view at an incarnation this controller's detector declared failed (the view refused the
  // failure, as it did for a host in maintenance): placing there would wait on a host that is gone.
  for (const [key] of state.declaredLeaseExpiry) {
    const at = key.lastIndexOf("@");
    const hostId = key.slice(0, at);
    const host = view.hosts.get(hostId);
    if (host?.state === "up" && `${host.incarnation}` === key.slice(at + 1) && !superseded.includes(hostId)) superseded.push(hostId);
  }
  for (const { vm, reason } of needed) {
    const history = state.history.get(vm.vmId);
    const excluded = history?.excludedHosts;
    // An evacuation avoids a target its migration just failed to, for a while.
    const failedTargets = reason === "evacuate" && history !== undefined ? [...history.failedMigrationTargets].filter(([, untilMs]) => nowMs < untilMs).map(([hostId]) => hostId) : [];
    if (superseded.length > 0 || failedTargets.length > 0) excludedHostsByVm.set(vm.vmId, new Set([...(excluded ?? []), ...superseded, ...failedTargets]));
    else if (excluded && excluded.size > 0) excludedHostsByVm.set(vm.vmId, excluded);
  }
  const byId = new Map(needed.map((entry) => [entry.vm.vmId, entry]));
  const plan = planPlacements({ view, vmIds: needed.map((entry) => entry.vm.vmId), reservations, excludedHostsByVm });
  let migrationsByHost: Map<string, number> | null = null;
  for (const placement of plan.placements) {
    const entry = byId.get(placement.vmId)!;
    let live = false;
    if (entry.reason === "evacuate" && state.liveMigrationHosts.size > 0) {
      migrationsByHost ??= migrationsInFlight(state, view);
      const decision = migratesLive(state, placement.vmId, entry.sourceHostId, placement.hostId, migrationsByHost);
      // Both ends busy with other migrations: it waits for one to end (that commit plans again), still running where it is.
      if (decision === "wait") continue;
      live = decision;
    }
    const command: ViewCommand = live
      ? { id: `migrate-${placement.vmId}-${placement.expectedPlacementEpoch}-${view.epoch}`, type: "vm.migrate", vmId: placement.vmId, toHostId: placement.hostId, expectedPlacementEpoch: placement.expectedPlacementEpoch }
      : placement.command;
    const refusal = state.refusedCommandIds.get(command.id);
    if (refusal !== undefined) {
      setPending(step, placement.vmId, `placement refused by the view: ${refusal}`);
      continue;
    }
    if (proposing >= state.config.maxProposalsInFlight) {
      setPending(step, placement.vmId, `waiting: ${state.config.maxProposalsInFlight} placements already in flight`);
      continue;
    }
    proposing++;
    state.pending.delete(placement.vmId);
    state.tasks.set(placement.vmId, {
      vmId: placement.vmId,
      reason: live ? "migrate" : entry.reason,
      phase: "proposing",
      commandId: command.id,
      proposedAtMs: nowMs,
      expectedPlacementEpoch: placement.expectedPlacementEpoch,
      resources: entry.vm.resources,
      hostId: placement.hostId,
      placementEpoch: 0,
      sourceHostId: live ? null : entry.sourceHostId,
      attempts: 0,
      notBeforeMs: nowMs,
      deadlineMs: Infinity,
      migrationEnd: null,
    });
    step.note("placement-proposed", { vmId: placement.vmId, hostId: placement.hostId, reason: live ? "migrate" : entry.reason, priority: entry.vm.priority });
    step.propose(command);
  }
  for (const pending of plan.pending) setPending(step, pending.vmId, pending.reason);
}

/** Whether this evacuation goes by live migration: both hypervisors migrate live, the VM has not failed to too often, and both hosts have a migration slot. */
function migratesLive(state: RecoveryPlannerState, vmId: string, sourceHostId: string | null, targetHostId: string, migrationsByHost: Map<string, number>): boolean | "wait" {
  if (sourceHostId === null || !state.liveMigrationHosts.has(sourceHostId) || !state.liveMigrationHosts.has(targetHostId)) return false;
  if ((state.history.get(vmId)?.migrationFailures ?? 0) >= maxMigrationAttemptsPerVm) return false;
  if ((migrationsByHost.get(sourceHostId) ?? 0) >= maxConcurrentMigrationsPerHost || (migrationsByHost.get(targetHostId) ?? 0) >= maxConcurrentMigrationsPerHost) return "wait";
  migrationsByHost.set(sourceHostId, (migrationsByHost.get(sourceHostId) ?? 0) + 1);
  migrationsByHost.set(targetHostId, (migrationsByHost.get(targetHostId) ?? 0) + 1);
  return true;
}

/** Live migrations in flight per host (at both ends): marked in the view, or proposed by this manager. */
function migrationsInFlight(state: RecoveryPlannerState, view: View): Map<string, number> {
  const counts = new Map<string, number>();
  const add = (hostId: string): void => void counts.set(hostId, (counts.get(hostId) ?? 0) + 1);
  for (const vm of view.vms.values()) {
    if (vm.placement?.migratingFrom === undefined) continue;
    add(vm.placement.migratingFrom);
    add(vm.placement.hostId);
  }
  for (const task of state.tasks.values()) {
    if (task.phase !== "proposing" || task.reason !== "migrate") continue;
    add(task.hostId);
    const source = view.vms.get(task.vmId)?.placement?.hostId;
    if (source !== undefined) add(source);
  }
  return counts;
}

/**
 * A VM the view shows mid-migration with no task here (an earlier leader's migration, or one whose task
 * ended): both ends alive → the source is asked again (it answers from where the VM runs); the source's
 * incarnation surely over → the target owns it (`vm.migrate-done`, then a start there); the target's
 * surely over → back to the source (`vm.migrate-abort`). Until one of these holds, it waits: the source
 * keeps running it.
 */
function followMigration(step: Step, view: View, vm: VmRecord): void {
  const { state, nowMs } = step;
  const placement = vm.placement!;
  const source = placement.migratingFrom!;
  const task: VmTask = {
    vmId: vm.vmId,
    reason: "migrate",
    phase: "migrating",
    commandId: "",
    proposedAtMs: nowMs,
    expectedPlacementEpoch: placement.epoch,
    resources: vm.resources,
    hostId: placement.hostId,
    placementEpoch: placement.epoch,
    sourceHostId: source,
    attempts: 0,
    notBeforeMs: nowMs,
    deadlineMs: Infinity,
    migrationEnd: null,
  };
  if (viewIncarnationGone(step, view, source)) {
    state.tasks.set(vm.vmId, task);
    endMigration(step, task, "done-then-start", {});
  } else if (viewIncarnationGone(step, view, placement.hostId)) {
    state.tasks.set(vm.vmId, task);
    endMigration(step, task, "abort", { ok: false, from: source, to: placement.hostId, error: `target host ${placement.hostId} is gone` });
  } else if (migrationEndAlive(state, view, source) && migrationEndAlive(state, view, placement.hostId)) {
    if (step.hostCommands >= state.config.maxHostCommandsPerStep) {
      state.rescan = true;
      return;
    }
    state.tasks.set(vm.vmId, task);
    beginMigration(step, task);
  } else {
    // An end is failed but its lease may still run, or suspect: checked again when that lease is surely out, or soon.
    let recheckAtMs = nowMs + state.config.pendingRetryIntervalMs;
    for (const hostId of [source, placement.hostId]) {
      const host = view.hosts.get(hostId);
      if (host === undefined) continue;
      const declared = state.declaredLeaseExpiry.get(`${hostId}@${host.incarnation}`);
      const goneAtMs = host.state === "failed" || host.state === "fenced" ? failureMaturesAt(step, hostId, host.incarnation) : host.state === "maintenance" ? declared : undefined;
      if (goneAtMs !== undefined) recheckAtMs = Math.min(recheckAtMs, goneAtMs);
    }
    state.nextFailureMaturesAtMs = Math.min(state.nextFailureMaturesAtMs, recheckAtMs);
  }
}

function setPending(step: Step, vmId: string, reason: string): void {
  step.state.pending.set(vmId, reason);
}

/** One note for the whole pending set, when it changed: its size and the first few ids (a note per VM floods the log under load). */
function notePendingSet(step: Step): void {
  const { state } = step;
  let signature = "";
  for (const [vmId, reason] of state.pending) signature += `${vmId}\u0000${reason}\u0001`;
  if (signature === state.pendingNotedSignature) return;
  state.pendingNotedSignature = signature;
  if (state.pending.size === 0) {
    step.note("pending", { count: 0 });
    return;
  }
  const ids = [...state.pending.keys()].sort(compareIds);
  const firstReason = state.pending.get(ids[0]!)!;
  step.note("pending", {
    count: ids.length,
    vmIds: ids.slice(0, maxPendingIdsNoted).join(",") + (ids.length > maxPendingIdsNoted ? `,+${ids.length - maxPendingIdsNoted}` : ""),
    reason: firstReason,
  });
}

function dispatchHostCommands(step: Step, view: View): void {
  const { state, nowMs } = step;
  const inFlightByHost = new Map<string, number>();
  const ready: VmTask[] = [];
  for (const task of state.tasks.values()) {
    if (task.phase === "starting" || task.phase === "migrating") {
      if (nowMs >= task.deadlineMs) {
        if (task.phase === "starting") startFailed(step, task, "no result in time");
        else {
          // No answer: the VM may have reached the target. Placed back on the source; the target is stopped before it starts anywhere else.
          noteFailedMigration(state, task, nowMs);
          addUnconfirmedSource(state, view, task.vmId, task.hostId, task.placementEpoch);
          endMigration(step, task, "abort", { ok: false, from: task.sourceHostId!, to: task.hostId, error: "no result in time" });
        }
      }
    } else if (task.phase === "stopping-source") {
      if (nowMs >= task.deadlineMs) retryStop(step, task, "no result in time");
      else if (task.deadlineMs === Infinity && nowMs >= task.notBeforeMs) beginStop(step, task);
    }
    if (!state.tasks.has(task.vmId)) continue;
    if (task.phase === "starting" || task.phase === "migrating") inFlightByHost.set(task.hostId, (inFlightByHost.get(task.hostId) ?? 0) + 1);
    else if (task.phase === "queued" && nowMs >= task.notBeforeMs) ready.push(task);
  }
  ready.sort((a, b) => comparePlacementOrder(view.vms.get(a.vmId)!, view.vms.get(b.vmId)!) || compareIds(a.vmId, b.vmId));
  for (const task of ready) {
    if (step.hostCommands >= state.config.maxHostCommandsPerStep) break;
    const unconfirmed = remainingSources(step, view, task.vmId, task.hostId);
    if (unconfirmed.length > 0) {
      // Never started while a host it left may still run it: that host is stopped first.
      task.sourceHostId = unconfirmed[0]!;
      task.attempts = 0;
      beginStop(step, task);
      continue;
    }
    const inFlight = inFlightByHost.get(task.hostId) ?? 0;
    if (inFlight >= state.config.maxConcurrentRestartsPerHost) continue;
    inFlightByHost.set(task.hostId, inFlight + 1);
    task.phase = "starting";
    task.attempts++;
    task.deadlineMs = nowMs + state.config.hostCommandTimeoutMs;
    step.send({ action: "start", hostId: task.hostId, vmId: task.vmId, placementEpoch: task.placementEpoch, attempt: task.attempts });
  }
}

function resetHungGuests(step: Step, view: View): void {
  const { state, nowMs } = step;
  for (const vmId of [...state.hungVms]) {
    const history = state.history.get(vmId);
    const vm = view.vms.get(vmId);
    if (!history || history.hungSinceMs === null || !vm || vm.desiredState !== "running" || vm.placement?.hostId !== history.hungOnHostId) {
      clearHung(state, vmId);
      continue;
    }
    if (nowMs < history.hungSinceMs + state.config.guestHangGraceMs || state.tasks.has(vmId)) continue;
    if (step.hostCommands >= state.config.maxHostCommandsPerStep) break;
    const hostId = history.hungOnHostId;
    clearHung(state, vmId);
    const resets = recoveriesInWindow(step, vm, "reset", state.config.resetWindowMs);
    if (resets >= state.config.maxResetsPerWindow) {
      step.note("reset-limit", { vmId, hostId, resetsInWindow: resets });
      continue;
    }
    recordRecovery(step, vmId, "reset");
    step.note("reset", { vmId, hostId, resetsInWindow: resets + 1 });
    step.send({ action: "reset", hostId, vmId, placementEpoch: vm.placement.epoch });
  }
}

/**
 * Restarts (or resets) of the VM within the window ending now: every one the view records, whichever leader made it,
 * plus this manager's own that the view does not show yet. The view's entries carry the proposing leader's clock;
 * leaders' clocks differ by their skew, which moves the window's edge by as much (small against windows of minutes).
 * This manager's entries reach the view with the same `atMs`, so each counts once.
 */
function recoveriesInWindow(step: Step, vm: VmRecord, kind: RecoveryKind, windowMs: number): number {
  const since = step.nowMs - windowMs;
  const recorded = new Set<number>();
  let count = 0;
  for (const entry of vm.recoveries ?? []) {
    if (entry.kind !== kind || entry.atMs <= since) continue;
    count++;
    recorded.add(entry.atMs);
  }
  const history = historyOf(step.state, vm.vmId);
  const pending = history.unrecordedAtMs[kind].filter((atMs) => atMs > since && !recorded.has(atMs));
  history.unrecordedAtMs[kind] = pending;
  return count + pending.length;
}

/** Counts a restart or reset here at once and records it in the view for every later manager. */
function recordRecovery(step: Step, vmId: string, kind: RecoveryKind): void {
  const atMs = Math.floor(step.nowMs);
  historyOf(step.state, vmId).unrecordedAtMs[kind].push(atMs);
  step.propose({ id: `recovery-${vmId}-${kind}-${atMs}`, type: "vm.record-recovery", vmId, kind, atMs });
}

/** What the planner is doing, for status pages and tests. */
export function plannerSnapshot(state: RecoveryPlannerState): {
  active: boolean;
  tasks: { vmId: string; phase: string; hostId: string; attempts: number }[];
  pending: { vmId: string; reason: string }[];
} {
  return {
    active: state.active,
    tasks: [...state.tasks.values()].map((task) => ({ vmId: task.vmId, phase: task.phase, hostId: task.hostId, attempts: task.attempts })).sort((a, b) => compareIds(a.vmId, b.vmId)),
    pending: [...state.pending].map(([vmId, reason]) => ({ vmId, reason })).sort((a, b) => compareIds(a.vmId, b.vmId)),
  };
}

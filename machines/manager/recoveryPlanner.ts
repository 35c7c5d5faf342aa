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
 * view), keeping only the per-VM restart and reset history.
 */
import type { GuestHealth } from "../guest/guestWatchdog.ts";
import type { ViewCommand } from "../view/viewCommands.ts";
import type { HostState, Resources, View, VmRecord } from "../view/viewTypes.ts";
import type { VmHealth } from "../vm/vmHealth.ts";
import { startRetryDelayMs, type ManagerConfig } from "./managerConfig.ts";
import { comparePlacementOrder, compareIds, planPlacements, type PlacementReservation } from "./placement.ts";

export type HostCommand =
  | { readonly action: "start"; readonly hostId: string; readonly vmId: string; readonly placementEpoch: number; readonly attempt: number }
  /** Sent to the host a VM is leaving without live migration: the placement already moved on (`placementEpoch` is the new one). */
  | { readonly action: "stop"; readonly hostId: string; readonly vmId: string; readonly placementEpoch: number }
  | { readonly action: "reset"; readonly hostId: string; readonly vmId: string; readonly placementEpoch: number }
  /** Sent to the source host: move the VM, live, to `targetHostId`, where the view places it at `placementEpoch`. */
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
  | "host-superseded";

export type ManagerOutput =
  | { readonly kind: "propose"; readonly command: ViewCommand }
  | { readonly kind: "host-command"; readonly command: HostCommand }
  | { readonly kind: "note"; readonly note: ManagerNoteKind; readonly fields: Readonly<Record<string, string | number | boolean>> };

type TaskReason = "initial" | "failover" | "evacuate" | "relocate" | "restart";

interface VmTask {
  readonly vmId: string;
  readonly reason: TaskReason;
  phase: "proposing" | "stopping-source" | "migrating" | "queued" | "starting";
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
  restartsAtMs: number[];
  resetsAtMs: number[];
  readonly excludedHosts: Set<string>;
  relocate: boolean;
  hungSinceMs: number | null;
  hungOnHostId: string | null;
  /**
   * Hosts the VM left (evacuation, relocation) whose stop is not confirmed: it may still run there. Kept across
   * later moves and tasks; no start goes out anywhere else until each confirmed the VM off or its incarnation ended.
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
  /** The earliest time a failed host's VMs become placeable, if any are waiting. */
  nextFailureMaturesAtMs: number;
  lastPendingPlanAtMs: number;
  upHostsSignature: string;
  rescan: boolean;
}

/** Bounds on remembered facts, so hostile or endless input cannot grow the state without limit. */
export const maxRememberedFailures = 10_000;
export const maxRememberedRefusals = 10_000;
export const maxTrackedCapabilities = 10_000;
export const maxHeldInitialPlacements = 200_000;

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
    supersededHosts: new Map(),
    nextFailureMaturesAtMs: Infinity,
    lastPendingPlanAtMs: -Infinity,
    upHostsSignature: "",
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
    entry = { restartsAtMs: [], resetsAtMs: [], excludedHosts: new Set(), relocate: false, hungSinceMs: null, hungOnHostId: null, unconfirmedSources: new Map() };
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
    vm?.placement?.hostId === hostId || (task?.phase === "stopping-source" && task.sourceHostId === hostId) || step.state.history.get(vmId)?.unconfirmedSources.get(hostId)?.incarnation === incarnation;
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
  history.restartsAtMs = history.restartsAtMs.filter((at) => at > nowMs - state.config.restartWindowMs);
  if (history.restartsAtMs.length < state.config.maxRestartsPerWindow) {
    history.restartsAtMs.push(nowMs);
    step.note("restart-in-place", { vmId: vm.vmId, hostId: input.hostId, restartsInWindow: history.restartsAtMs.length });
    queueStartInPlace(state, vm, input.hostId, nowMs);
    return;
  }
  step.note("crash-loop-relocate", { vmId: vm.vmId, hostId: input.hostId, restartsInWindow: history.restartsAtMs.length });
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
  if ((input.action === "stop" || input.action === "migrate") && input.ok) {
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
      if (input.ok) finishStart(step, task);
      else {
        // A failed migration leaves the VM on the source: stop it there, then start it on the target.
        task.attempts = 0;
        beginStop(step, task);
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

function finishStart(step: Step, task: VmTask): void {
  step.state.tasks.delete(task.vmId);
  const history = step.state.history.get(task.vmId);
  if (history) history.relocate = false;
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
  const history = step.state.history.get(vmId);
  const source = history?.unconfirmedSources.get(hostId);
  if (!history || !source || placementEpoch < source.sincePlacementEpoch) return false;
  history.unconfirmedSources.delete(hostId);
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
  const sources = step.state.history.get(vmId)?.unconfirmedSources;
  if (!sources || sources.size === 0) return [];
  const remaining: string[] = [];
  for (const [hostId, source] of [...sources]) {
    if (sourceIncarnationEnded(step, view, hostId, source.incarnation)) sources.delete(hostId);
    else if (hostId !== exceptHostId) remaining.push(hostId);
  }
  return remaining;
}

function sourceStopped(step: Step, task: VmTask): void {
  if (task.sourceHostId !== null) step.state.history.get(task.vmId)?.unconfirmedSources.delete(task.sourceHostId);
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
  if (state.rescan || (retryPending && state.pending.size > 0)) planPlacementsNeeded(step, view, retryPending);
  dispatchHostCommands(step, view);
  resetHungGuests(step, view);
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
    // Past proposing, the task works for one placement; if the view moved the VM on, the task is stale.
    if (!vm.placement || vm.placement.epoch !== task.placementEpoch || vm.placement.hostId !== task.hostId || view.hosts.get(task.hostId)?.state !== "up" || isSuperseded(state, view, task.hostId)) {
      state.tasks.delete(task.vmId);
      state.rescan = true;
      continue;
    }
    // The host it is leaving failed meanwhile: once that host's lease has surely run out, the VM is off there.
    if ((task.phase === "stopping-source" || task.phase === "migrating") && task.sourceHostId !== null) {
      const source = state.history.get(task.vmId)?.unconfirmedSources.get(task.sourceHostId);
      if (source === undefined || sourceIncarnationEnded(step, view, task.sourceHostId, source.incarnation)) sourceStopped(step, task);
    }
  }
}

/** Whether a host the view holds failed or fenced (or superseded) has surely stopped its VMs by now. */
function sourceGone(step: Step, view: View, hostId: string): boolean {
  const host = view.hosts.get(hostId);
  if (host === undefined) return true;
  if (isSuperseded(step.state, view, hostId)) return true;
  if (host.state !== "failed" && host.state !== "fenced") return false;
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
  task.phase = "queued";
  // Placed again on the host it is leaving (a new epoch there): nothing to stop; a start there finds it running if it does.
  if (task.sourceHostId === placement.hostId) task.sourceHostId = null;
  const sources = historyOf(step.state, vm.vmId).unconfirmedSources;
  sources.delete(placement.hostId);
  if (task.sourceHostId !== null) addUnconfirmedSource(step.state, view, vm.vmId, task.sourceHostId, placement.epoch);
  if (task.sourceHostId === null && sources.size > 0) {
    // An earlier move's stop is still unconfirmed (its task was replaced): that host is stopped first.
    const earlier = remainingSources(step, view, vm.vmId, placement.hostId);
    if (earlier.length > 0) task.sourceHostId = earlier[0]!;
  }
  if (task.sourceHostId !== null) {
    if (step.state.liveMigrationHosts.has(task.sourceHostId) && step.state.liveMigrationHosts.has(placement.hostId)) {
      task.phase = "migrating";
      task.deadlineMs = step.nowMs + step.state.config.hostCommandTimeoutMs;
      step.send({ action: "migrate", hostId: task.sourceHostId, targetHostId: placement.hostId, vmId: vm.vmId, placementEpoch: placement.epoch });
    } else beginStop(step, task);
  }
  const drainedHost = task.sourceHostId;
  if (drainedHost !== null && view.hosts.get(drainedHost)?.state === "maintenance") noteIfDrained(step, view, drainedHost);
}

function noteIfDrained(step: Step, view: View, hostId: string): void {
  if (step.drainedNoted.has(hostId)) return;
  for (const vm of view.vms.values()) if (vm.placement?.hostId === hostId) return;
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
  for (const { vm } of needed) {
    const excluded = state.history.get(vm.vmId)?.excludedHosts;
    if (superseded.length > 0) excludedHostsByVm.set(vm.vmId, new Set([...(excluded ?? []), ...superseded]));
    else if (excluded && excluded.size > 0) excludedHostsByVm.set(vm.vmId, excluded);
  }
  const byId = new Map(needed.map((entry) => [entry.vm.vmId, entry]));
  const plan = planPlacements({ view, vmIds: needed.map((entry) => entry.vm.vmId), reservations, excludedHostsByVm });
  for (const placement of plan.placements) {
    const entry = byId.get(placement.vmId)!;
    const refusal = state.refusedCommandIds.get(placement.command.id);
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
      reason: entry.reason,
      phase: "proposing",
      commandId: placement.command.id,
      proposedAtMs: nowMs,
      expectedPlacementEpoch: placement.expectedPlacementEpoch,
      resources: entry.vm.resources,
      hostId: placement.hostId,
      placementEpoch: 0,
      sourceHostId: entry.sourceHostId,
      attempts: 0,
      notBeforeMs: nowMs,
      deadlineMs: Infinity,
    });
    step.note("placement-proposed", { vmId: placement.vmId, hostId: placement.hostId, reason: entry.reason, priority: entry.vm.priority });
    step.propose(placement.command);
  }
  for (const pending of plan.pending) setPending(step, pending.vmId, pending.reason);
}

function setPending(step: Step, vmId: string, reason: string): void {
  if (step.state.pending.get(vmId) === reason) return;
  step.state.pending.set(vmId, reason);
  step.note("pending", { vmId, reason });
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
          task.attempts = 0;
          beginStop(step, task);
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
    history.resetsAtMs = history.resetsAtMs.filter((at) => at > nowMs - state.config.resetWindowMs);
    if (history.resetsAtMs.length >= state.config.maxResetsPerWindow) {
      step.note("reset-limit", { vmId, hostId, resetsInWindow: history.resetsAtMs.length });
      continue;
    }
    history.resetsAtMs.push(nowMs);
    step.note("reset", { vmId, hostId, resetsInWindow: history.resetsAtMs.length });
    step.send({ action: "reset", hostId, vmId, placementEpoch: vm.placement.epoch });
  }
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

/**
 * The view's transition function: applies one slot's commands, in order, and
 * says for each whether it was committed or rejected (and why). Deterministic:
 * it reads nothing but its arguments, so every learner that applies the same
 * slots reaches the same view and the same rejections.
 *
 * Each slot edits drafts of the view's maps (one copied bucket per changed
 * key), sealed into the new view at the end of the slot.
 */
import type { CommandOutcome, FirstOutcome } from "../paxos/replicatedStateMachine.ts";
import { addedDemand, admitToRoom, roomOf } from "./admission.ts";
import { commandProblem, type ViewCommand } from "./viewCommands.ts";
import { boundedReason, carryRecordBytes, hostRecordBytesBound, recordBytesRefusal, viewRecordBytes, vmRecordBytesBound } from "./viewSize.ts";
import { ChunkedMap, type ChunkedMapDraft } from "../paxos/chunkedMap.ts";
import {
  maxHosts,
  maxLeavingSourcesPerVm,
  maxRecordedRecoveriesPerKind,
  maxRememberedCommands,
  maxVms,
  rememberedChunkSize,
  type HostRecord,
  type HostState,
  type LeavingSource,
  type RememberedCommand,
  type Resources,
  type View,
  type VmRecord,
} from "./viewTypes.ts";

export interface SlotApplication {
  readonly view: View;
  readonly outcomes: readonly CommandOutcome[];
}

const committed: FirstOutcome = { kind: "committed" };

function rejected(reason: string): FirstOutcome {
  return { kind: "rejected", reason: boundedReason(reason) };
}

/** What a command changed in the draft's maps, to undo it when the view has no room for the result. */
type DraftChange = { readonly map: "host"; readonly previous: HostRecord | undefined; readonly id: string } | { readonly map: "vm"; readonly previous: VmRecord | undefined; readonly id: string };

class ViewDraft {
  epoch: number;
  controllerIds: readonly string[];
  leader: View["leader"];
  hostFailuresToTolerate: number | null;
  private hostsDraft: ChunkedMapDraft<string, HostRecord> | null = null;
  private vmsDraft: ChunkedMapDraft<string, VmRecord> | null = null;
  private vmsByHostDraft: ChunkedMapDraft<string, readonly string[]> | null = null;
  private recentChunks: Array<readonly RememberedCommand[]> | null = null;
  /**
   * The newest chunk when this draft made it (no view shares it yet): the draft's further commands are
   * pushed onto it instead of copying it once per command (a slot of 64 commands copied a 256-entry chunk 64 times).
   */
  private ownedLastChunk: RememberedCommand[] | null = null;
  private recentCount: number;
  private recentIndexDraft: ChunkedMapDraft<string, RememberedCommand> | null = null;

  constructor(private readonly base: View) {
    this.epoch = base.epoch;
    this.controllerIds = base.controllerIds;
    this.leader = base.leader;
    this.hostFailuresToTolerate = base.hostFailuresToTolerate;
    this.recentCount = base.recentCommandCount;
  }

  get hosts(): { get(id: string): HostRecord | undefined; has(id: string): boolean; readonly size: number } {
    return this.hostsDraft ?? this.base.hosts;
  }
  get vms(): { get(id: string): VmRecord | undefined; has(id: string): boolean; readonly size: number } {
    return this.vmsDraft ?? this.base.vms;
  }
  rememberedOutcome(commandId: string): RememberedCommand | undefined {
    return (this.recentIndexDraft ?? this.base.recentCommandIndex).get(commandId);
  }
  vmsOnHost(hostId: string): readonly string[] {
    return (this.vmsByHostDraft ?? vmsByHost(this.base)).get(hostId) ?? [];
  }

  setHost(host: HostRecord): void {
    const previous = this.hosts.get(host.hostId);
    this.changes?.push({ map: "host", id: host.hostId, previous });
    this.recordBytesChange += hostRecordBytesBound(host) - (previous === undefined ? 0 : hostRecordBytesBound(previous));
    if (!this.base.hosts.has(host.hostId)) this.addedHostIds.add(host.hostId);
    (this.hostsDraft ??= this.base.hosts.edit()).set(host.hostId, host);
  }
  private readonly addedHostIds = new Set<string>();
  /** Every host as the draft holds it now. */
  *currentHosts(): Generator<HostRecord> {
    for (const hostId of [...this.base.hosts.keys(), ...this.addedHostIds]) {
      const host = this.hosts.get(hostId);
      if (host !== undefined) yield host;
    }
  }
  /** What the VMs meant to run need, as the draft holds them now (the base's total, cached per view, plus this slot's changes). */
  runningDemand(): Resources {
    const base = runningDemandOf(this.base);
    return { cpu: base.cpu + this.demandChange.cpu, memoryMiB: base.memoryMiB + this.demandChange.memoryMiB };
  }
  private readonly demandChange = { cpu: 0, memoryMiB: 0 };
  private changeDemand(vm: VmRecord | undefined, sign: 1 | -1): void {
    if (vm?.desiredState !== "running") return;
    this.demandChange.cpu += sign * vm.resources.cpu;
    this.demandChange.memoryMiB += sign * vm.resources.memoryMiB;
  }
  deleteHost(hostId: string): void {
    const previous = this.hosts.get(hostId);
    this.changes?.push({ map: "host", id: hostId, previous });
    if (previous !== undefined) this.recordBytesChange -= hostRecordBytesBound(previous);
    (this.hostsDraft ??= this.base.hosts.edit()).delete(hostId);
  }
  /** Whether any VM as the draft holds it now matches (scans every VM: for rare commands only). */
  someVm(predicate: (vm: VmRecord) => boolean): boolean {
    for (const base of this.base.vms.values()) {
      const vm = this.vms.get(base.vmId);
      if (vm !== undefined && predicate(vm)) return true;
    }
    for (const vmId of this.addedVmIds) {
      const vm = this.vms.get(vmId);
      if (vm !== undefined && predicate(vm)) return true;
    }
    return false;
  }
  /** Drops the `leavingFrom` entries naming this host that `ended` says ended (scans every VM: for rare commands only). */
  clearLeaving(hostId: string, ended: (entry: LeavingSource) => boolean): void {
    const ids = [...this.base.vms.keys(), ...this.addedVmIds];
    for (const vmId of ids) {
      const vm = this.vms.get(vmId);
      if (vm?.leavingFrom === undefined || !vm.leavingFrom.some((entry) => entry.hostId === hostId && ended(entry))) continue;
      this.setVm(withLeaving(vm, vm.leavingFrom.filter((entry) => !(entry.hostId === hostId && ended(entry)))));
    }
  }
  private readonly addedVmIds = new Set<string>();
  setVm(vm: VmRecord): void {
    const previous = this.vms.get(vm.vmId);
    this.changes?.push({ map: "vm", id: vm.vmId, previous });
    this.recordBytesChange += vmRecordBytesBound(vm) - (previous === undefined ? 0 : vmRecordBytesBound(previous));
    this.changeDemand(previous, -1);
    this.changeDemand(vm, 1);
    if (!this.base.vms.has(vm.vmId)) this.addedVmIds.add(vm.vmId);
    (this.vmsDraft ??= this.base.vms.edit()).set(vm.vmId, vm);
    this.movePlacement(vm.vmId, previous?.placement?.hostId ?? null, vm.placement?.hostId ?? null);
  }
  deleteVm(vmId: string): void {
    const previous = this.vms.get(vmId);
    this.changes?.push({ map: "vm", id: vmId, previous });
    if (previous !== undefined) this.recordBytesChange -= vmRecordBytesBound(previous);
    this.changeDemand(previous, -1);
    (this.vmsDraft ??= this.base.vms.edit()).delete(vmId);
    this.movePlacement(vmId, previous?.placement?.hostId ?? null, null);
  }
  /** The bound of the hosts and VMs as the draft holds them now (viewSize.ts). */
  recordBytes(): number {
    return viewRecordBytes(this.base) + this.recordBytesChange;
  }
  private recordBytesChange = 0;
  private changes: DraftChange[] | null = null;
  private recordBytesAtCommand = 0;

  /** Starts recording the changes of one command, so that `sizeRefusal` can undo them. */
  beginCommand(): void {
    this.changes = [];
    this.recordBytesAtCommand = this.recordBytesChange;
  }

  /**
   * After a command applied: null if the view has room for what it did, else why not, with its changes
   * undone. Only a command that grew the bound can be refused; none of those deletes a record, so
   * undoing puts back the previous values of keys that stay in their maps.
   */
  sizeRefusal(command: ViewCommand): FirstOutcome | null {
    const changes = this.changes ?? [];
    this.changes = null;
    const growth = this.recordBytesChange - this.recordBytesAtCommand;
    if (growth <= 0) return null;
    const reason = recordBytesRefusal(command, this.recordBytes(), growth);
    if (reason === null) return null;
    for (let index = changes.length - 1; index >= 0; index--) {
      const change = changes[index]!;
      if (change.map === "host") {
        if (change.previous === undefined) this.deleteHost(change.id);
        else this.setHost(change.previous);
      } else if (change.previous === undefined) this.deleteVm(change.id);
      else this.setVm(change.previous);
    }
    return rejected(reason);
  }

  private movePlacement(vmId: string, fromHost: string | null, toHost: string | null): void {
    if (fromHost === toHost) return;
    const index = (this.vmsByHostDraft ??= vmsByHost(this.base).edit());
    if (fromHost !== null) {
      const remaining = (index.get(fromHost) ?? []).filter((id) => id !== vmId);
      if (remaining.length === 0) index.delete(fromHost);
      else index.set(fromHost, remaining);
    }
    if (toHost !== null) index.set(toHost, withIdInOrder(index.get(toHost) ?? [], vmId));
  }
  /**
   * Every command applied at this slot or later is remembered. Ids are forgotten, a chunk at a time,
   * only while maxRememberedCommands newer ones remain, so below that count nothing was ever forgotten.
   * At or above it something may have been (conservatively assumed), and the oldest remembered slot may
   * have lost some of its commands with the chunk before it: only the slots after it are whole.
   */
  rememberedFromSlot(): number {
    if (this.recentCount < maxRememberedCommands) return 0;
    const chunks = this.recentChunks ?? this.base.recentCommandChunks;
    const oldest = chunks[0]?.[0];
    return oldest === undefined ? 0 : oldest.slot + 1;
  }

  remember(entry: RememberedCommand): void {
    const chunks = (this.recentChunks ??= [...this.base.recentCommandChunks]);
    const index = (this.recentIndexDraft ??= this.base.recentCommandIndex.edit());
    const last = chunks[chunks.length - 1];
    if (last !== undefined && last === this.ownedLastChunk && last.length < rememberedChunkSize) this.ownedLastChunk.push(entry);
    else if (last !== undefined && last.length < rememberedChunkSize) chunks[chunks.length - 1] = this.ownedLastChunk = [...last, entry];
    else chunks.push((this.ownedLastChunk = [entry]));
    this.recentCount++;
    index.set(entry.commandId, entry);
    // Forget whole chunks, oldest first, while the rest still holds the last maxRememberedCommands.
    while (chunks.length > 0 && this.recentCount - chunks[0]!.length >= maxRememberedCommands) {
      const dropped = chunks.shift()!;
      this.recentCount -= dropped.length;
      for (const old of dropped) if (index.get(old.commandId) === old) index.delete(old.commandId);
    }
  }

  finish(): View {
    const view: View = {
      epoch: this.epoch,
      controllerIds: this.controllerIds,
      leader: this.leader,
      hosts: this.hostsDraft?.done() ?? this.base.hosts,
      vms: this.vmsDraft?.done() ?? this.base.vms,
      hostFailuresToTolerate: this.hostFailuresToTolerate,
      recentCommandChunks: this.recentChunks ?? this.base.recentCommandChunks,
      recentCommandCount: this.recentCount,
      recentCommandIndex: this.recentIndexDraft?.done() ?? this.base.recentCommandIndex,
    };
    vmsByHostCache.set(view, this.vmsByHostDraft?.done() ?? vmsByHost(this.base));
    // Once a view's demand is known, each later one costs only its slot's changes.
    if (runningDemandCache.has(this.base)) runningDemandCache.set(view, this.runningDemand());
    carryRecordBytes(this.base, view, this.recordBytesChange);
    return view;
  }
}

/** What every VM meant to run needs in total: derived from `vms`, cached per view object. */
const runningDemandCache = new WeakMap<View, Resources>();

function runningDemandOf(view: View): Resources {
  let demand = runningDemandCache.get(view);
  if (!demand) {
    let cpu = 0;
    let memoryMiB = 0;
    view.vms.forEach((vm) => {
      if (vm.desiredState !== "running") return;
      cpu += vm.resources.cpu;
      memoryMiB += vm.resources.memoryMiB;
    });
    demand = { cpu, memoryMiB };
    runningDemandCache.set(view, demand);
  }
  return demand;
}

/**
 * Which VMs are placed on each host, each host's ids in ascending order: derived from `vms`, cached per
 * view object. The order is the ids', not the placements': a learner that installed a snapshot or
 * restarted builds this index from `vms` in another order than one that applied every placement, and
 * an outcome found by walking it (the VM an anti-affinity refusal names) must be the same on both.
 */
const vmsByHostCache = new WeakMap<View, ChunkedMap<string, readonly string[]>>();

function withIdInOrder(ids: readonly string[], id: string): readonly string[] {
  let at = ids.length;
  while (at > 0 && ids[at - 1]! > id) at--;
  return [...ids.slice(0, at), id, ...ids.slice(at)];
}

export function vmsByHost(view: View): ChunkedMap<string, readonly string[]> {
  let index = vmsByHostCache.get(view);
  if (!index) {
    const built = new Map<string, string[]>();
    for (const vm of view.vms.values()) {
      if (!vm.placement) continue;
      const list = built.get(vm.placement.hostId);
      if (list) list.push(vm.vmId);
      else built.set(vm.placement.hostId, [vm.vmId]);
    }
    for (const ids of built.values()) ids.sort();
    index = ChunkedMap.from<string, readonly string[]>(built);
    vmsByHostCache.set(view, index);
  }
  return index;
}

export function applyViewCommands(view: View, slot: number, commands: readonly unknown[]): SlotApplication {
  const draft = new ViewDraft(view);
  const outcomes: CommandOutcome[] = [];
  for (const command of commands) {
    const id = typeof command === "object" && command !== null && typeof (command as { id?: unknown }).id === "string" ? (command as { id: string }).id : null;
    const remembered = id === null ? undefined : draft.rememberedOutcome(id);
    if (remembered) {
      // Applied before (a retried proposal): no change, and the first outcome.
      outcomes.push({ kind: "duplicate", firstSlot: remembered.slot, first: remembered.outcome });
      continue;
    }
    const problem = commandProblem(command);
    const tooLate = problem ? null : retryTooLate(draft, command as ViewCommand);
    let outcome: FirstOutcome;
    if (problem) outcome = rejected(`malformed command: ${problem}`);
    else if (tooLate) outcome = tooLate;
    else {
      draft.beginCommand();
      outcome = applyOne(draft, command as ViewCommand);
      const refusal = draft.sizeRefusal(command as ViewCommand);
      if (refusal !== null) outcome = refusal;
    }
    if (outcome.kind === "committed") draft.epoch++;
    // A copy refused as too late is not remembered: the same id proposed anew (with a newer stamp, by its
    // client or by another node that derives the same id) is then judged as usual instead of refused forever.
    if (id !== null && !problem && tooLate === null) draft.remember({ commandId: id, slot, outcome });
    outcomes.push(outcome);
  }
  return { view: draft.finish(), outcomes };
}

/**
 * A command stamped `proposedAfterSlot` L was chosen, if ever, at L or later. While the view remembers
 * every command applied from L on, an id it does not remember was never applied, and the command applies
 * now. Otherwise (a retry that reached the log after more than maxRememberedCommands others) it may have
 * been applied and forgotten: it is refused (and not remembered, see applyViewCommands), and the
 * proposer looks at the view before proposing anew. The rule only ever refuses what the id window
 * alone would have applied. Unstamped commands are deduplicated by the remembered ids alone.
 */
function retryTooLate(draft: ViewDraft, command: ViewCommand): FirstOutcome | null {
  const since = command.proposedAfterSlot;
  if (since === undefined) return null;
  const rememberedFrom = draft.rememberedFromSlot();
  if (since >= rememberedFrom) return null;
  return rejected(
    `first proposed after slot ${since}, but the view remembers the commands applied from slot ${rememberedFrom} on only: it may have been applied already; check the view before proposing it again`,
  );
}

function hostTransition(draft: ViewDraft, hostId: string, incarnation: number | null, from: readonly HostState[], to: HostState): FirstOutcome {
  const host = draft.hosts.get(hostId);
  if (!host) return rejected(`unknown host ${hostId}`);
  if (incarnation !== null && incarnation !== host.incarnation) return rejected(`stale incarnation ${incarnation} for host ${hostId} (now ${host.incarnation})`);
  if (!from.includes(host.state)) return rejected(`host ${hostId} is ${host.state}, not ${from.join(" or ")}`);
  draft.setHost({ ...host, state: to, stateEpoch: draft.epoch + 1 });
  return committed;
}

function compareLeader(a: { round: number; controllerId: string }, b: { round: number; controllerId: string }): number {
  if (a.round !== b.round) return a.round < b.round ? -1 : 1;
  return a.controllerId === b.controllerId ? 0 : a.controllerId < b.controllerId ? -1 : 1;
}

/**
 * Admission control with the view's own F: a command adding demand (a running `vm.add`, `vm.set-desired`
 * running) is refused unless room is left for F host failures. No F in the view, no check.
 */
function admissionRefusal(draft: ViewDraft, command: ViewCommand): FirstOutcome | null {
  const hostFailuresToTolerate = draft.hostFailuresToTolerate;
  if (hostFailuresToTolerate === null) return null;
  const added = addedDemand(draft, command);
  if (added === null) return null;
  const decision = admitToRoom(roomOf(draft.currentHosts(), draft.runningDemand(), hostFailuresToTolerate), added.vmId, added.resources, hostFailuresToTolerate);
  return decision.admitted ? null : rejected(decision.error);
}

function describeFailuresToTolerate(value: number | null): string {
  return value === null ? "unset" : `${value}`;
}

function applyOne(draft: ViewDraft, command: ViewCommand): FirstOutcome {
  switch (command.type) {
    case "cluster.configure": {
      const current = draft.hostFailuresToTolerate;
      if (current !== command.expectedHostFailuresToTolerate) {
        return rejected(`host failures to tolerate is ${describeFailuresToTolerate(current)}, not ${describeFailuresToTolerate(command.expectedHostFailuresToTolerate)}`);
      }
      if (current === command.hostFailuresToTolerate) return rejected(`host failures to tolerate is already ${current}`);
      draft.hostFailuresToTolerate = command.hostFailuresToTolerate;
      return committed;
    }
    case "controllers.set":
      draft.controllerIds = [...command.controllerIds];
      return committed;
    case "leader.elected": {
      const elected = { controllerId: command.controllerId, round: command.round };
      if (draft.leader && compareLeader(elected, draft.leader) <= 0) {
        return rejected(`stale leader announcement ${command.round}.${command.controllerId} (view has ${draft.leader.round}.${draft.leader.controllerId})`);
      }
      draft.leader = elected;
      return committed;
    }
    case "host.register":
      if (draft.hosts.has(command.hostId)) return rejected(`host ${command.hostId} already registered`);
      if (draft.hosts.size >= maxHosts) return rejected(`at most ${maxHosts} hosts`);
      draft.setHost({ hostId: command.hostId, state: "joining", incarnation: 0, capacity: { ...command.capacity }, stateEpoch: draft.epoch + 1 });
      return committed;
    case "host.up": {
      // A joining host comes up at its agent's incarnation, which may be above the view's (0 from registration,
      // or the rejoin's): from then on the view and the agent number incarnations alike.
      const host = draft.hosts.get(command.hostId);
      if (host?.state === "joining" && command.incarnation > host.incarnation) {
        draft.setHost({ ...host, state: "up", incarnation: command.incarnation, stateEpoch: draft.epoch + 1 });
        return committed;
      }
      return hostTransition(draft, command.hostId, command.incarnation, ["joining", "suspect"], "up");
    }
    case "host.suspect":
      return hostTransition(draft, command.hostId, command.incarnation, ["up"], "suspect");
    case "host.failed":
      // A host in maintenance can fail too (it may still run VMs being evacuated, or migrating away).
      return hostTransition(draft, command.hostId, command.incarnation, ["joining", "up", "suspect", "maintenance"], "failed");
    case "host.fenced": {
      const outcome = hostTransition(draft, command.hostId, command.incarnation, ["failed"], "fenced");
      // Fenced: that incarnation runs nothing any more.
      if (outcome.kind === "committed") draft.clearLeaving(command.hostId, (entry) => entry.incarnation <= command.incarnation);
      return outcome;
    }
    case "host.rejoin": {
      const host = draft.hosts.get(command.hostId);
      if (!host) return rejected(`unknown host ${command.hostId}`);
      if (host.state !== "failed" && host.state !== "fenced") return rejected(`host ${command.hostId} is ${host.state}, not failed or fenced`);
      if (command.incarnation <= host.incarnation) return rejected(`rejoin incarnation ${command.incarnation} must exceed ${host.incarnation}`);
      draft.setHost({ ...host, state: "joining", incarnation: command.incarnation, stateEpoch: draft.epoch + 1 });
      // An agent takes a new incarnation only after isolating (its VMs powered off) or rebooting.
      draft.clearLeaving(command.hostId, (entry) => entry.incarnation < command.incarnation);
      return committed;
    }
    case "host.maintenance-enter":
      return hostTransition(draft, command.hostId, null, ["up"], "maintenance");
    case "host.maintenance-exit":
      return hostTransition(draft, command.hostId, null, ["maintenance"], "up");
    case "host.remove": {
      const host = draft.hosts.get(command.hostId);
      if (!host) return rejected(`unknown host ${command.hostId}`);
      if (host.state === "up" || host.state === "suspect") return rejected(`host ${command.hostId} is ${host.state}: fail, fence or drain it first`);
      if (draft.vmsOnHost(command.hostId).length > 0) return rejected(`host ${command.hostId} still has VMs placed on it`);
      // A migration source still holds its VM until the migration ends; removing it would orphan the marker.
      if (draft.someVm((vm) => vm.placement?.migratingFrom === command.hostId)) return rejected(`host ${command.hostId} is the source of a migration in progress`);
      draft.deleteHost(command.hostId);
      draft.clearLeaving(command.hostId, () => true);
      return committed;
    }
    case "vm.add": {
      if (draft.vms.has(command.vmId)) return rejected(`vm ${command.vmId} already exists`);
      if (draft.vms.size >= maxVms) return rejected(`at most ${maxVms} VMs`);
      if (command.rules.affinity.includes(command.vmId) || command.rules.antiAffinity.includes(command.vmId)) return rejected(`vm ${command.vmId} names itself in its rules`);
      if (command.rules.affinity.some((id) => command.rules.antiAffinity.includes(id))) return rejected(`vm ${command.vmId} has a VM in both affinity and anti-affinity`);
      const refusal = admissionRefusal(draft, command);
      if (refusal) return refusal;
      draft.setVm({
        vmId: command.vmId,
        desiredState: command.desiredState,
        placement: null,
        priority: command.priority,
        resources: { ...command.resources },
        rules: { affinity: [...command.rules.affinity], antiAffinity: [...command.rules.antiAffinity] },
      });
      return committed;
    }
    case "vm.remove":
      if (!draft.vms.has(command.vmId)) return rejected(`unknown vm ${command.vmId}`);
      draft.deleteVm(command.vmId);
      return committed;
    case "vm.set-desired": {
      const vm = draft.vms.get(command.vmId);
      if (!vm) return rejected(`unknown vm ${command.vmId}`);
      if (vm.desiredState === command.desiredState) return rejected(`vm ${command.vmId} is already ${command.desiredState}`);
      const refusal = admissionRefusal(draft, command);
      if (refusal) return refusal;
      draft.setVm({ ...vm, desiredState: command.desiredState });
      return committed;
    }
    case "vm.place":
      return place(draft, command.vmId, command.hostId, command.expectedPlacementEpoch);
    case "vm.migrate": {
      const vm = draft.vms.get(command.vmId);
      if (!vm) return rejected(`unknown vm ${command.vmId}`);
      const source = vm.placement;
      if (!source) return rejected(`vm ${command.vmId} is not placed: nothing to migrate`);
      if (source.migratingFrom !== undefined) return rejected(`vm ${command.vmId} is already migrating from host ${source.migratingFrom}`);
      if (vm.desiredState !== "running") return rejected(`vm ${command.vmId} is meant to be ${vm.desiredState}: nothing to migrate`);
      if (source.hostId === command.toHostId) return rejected(`vm ${command.vmId} is already placed on host ${command.toHostId}`);
      const sourceState = draft.hosts.get(source.hostId)?.state;
      if (sourceState !== "up" && sourceState !== "maintenance") return rejected(`host ${source.hostId} is ${sourceState ?? "unknown"}: only an up or maintenance host can migrate`);
      return place(draft, command.vmId, command.toHostId, command.expectedPlacementEpoch, source.hostId);
    }
    case "vm.migrate-done":
    case "vm.migrate-abort": {
      const vm = draft.vms.get(command.vmId);
      if (!vm) return rejected(`unknown vm ${command.vmId}`);
      const current = vm.placement?.epoch ?? 0;
      if (current !== command.expectedPlacementEpoch) return rejected(`placement epoch of vm ${command.vmId} is ${current}, not ${command.expectedPlacementEpoch}`);
      const from = vm.placement?.migratingFrom;
      if (!vm.placement || from === undefined) return rejected(`vm ${command.vmId} is not migrating`);
      if (command.type === "vm.migrate-done") {
        // Same placement epoch: the target's commands for it stay valid; only the source lets go.
        draft.setVm({ ...vm, placement: { hostId: vm.placement.hostId, epoch: vm.placement.epoch } });
        return committed;
      }
      // Back where it runs (or last ran), even in maintenance: the source never let go of it.
      if (!draft.hosts.has(from)) return rejected(`unknown host ${from}`);
      const epoch = draft.epoch + 1;
      // The target may have received it after all (a driver that gave up may still finish the copy): it counts as a
      // host the VM left until its stop is confirmed or its incarnation ends.
      const target = draft.hosts.get(vm.placement.hostId);
      let leaving = (vm.leavingFrom ?? []).filter((entry) => entry.hostId !== from);
      if (target !== undefined && (target.state === "up" || target.state === "maintenance" || target.state === "suspect" || target.state === "failed")) {
        // At most maxLeavingSourcesPerVm: `vm.migrate` left room for this one.
        leaving = [...leaving.filter((entry) => entry.hostId !== target.hostId), { hostId: target.hostId, incarnation: target.incarnation, placementEpoch: epoch }];
      }
      draft.setVm(withLeaving({ ...vm, placement: { hostId: from, epoch } }, leaving));
      return committed;
    }
    case "vm.left": {
      const vm = draft.vms.get(command.vmId);
      if (!vm) return rejected(`unknown vm ${command.vmId}`);
      const leaving = vm.leavingFrom ?? [];
      const matches = (entry: LeavingSource): boolean => entry.hostId === command.hostId && entry.incarnation === command.incarnation && entry.placementEpoch === command.placementEpoch;
      if (!leaving.some(matches)) return rejected(`vm ${command.vmId} is not leaving host ${command.hostId} at incarnation ${command.incarnation} since placement epoch ${command.placementEpoch}`);
      draft.setVm(withLeaving(vm, leaving.filter((entry) => !matches(entry))));
      return committed;
    }
    case "vm.record-recovery": {
      const vm = draft.vms.get(command.vmId);
      if (!vm) return rejected(`unknown vm ${command.vmId}`);
      // The last maxRecordedRecoveriesPerKind of each kind, in the order they committed (leaders' clocks differ).
      let recoveries = [...(vm.recoveries ?? []), { kind: command.kind, atMs: command.atMs }];
      const ofKind = recoveries.filter((entry) => entry.kind === command.kind).length;
      if (ofKind > maxRecordedRecoveriesPerKind) {
        const oldest = recoveries.findIndex((entry) => entry.kind === command.kind);
        recoveries = recoveries.filter((_, index) => index !== oldest);
      }
      draft.setVm({ ...vm, recoveries });
      return committed;
    }
    case "vm.unplace": {
      const vm = draft.vms.get(command.vmId);
      if (!vm) return rejected(`unknown vm ${command.vmId}`);
      const current = vm.placement?.epoch ?? 0;
      if (current !== command.expectedPlacementEpoch) return rejected(`placement epoch of vm ${command.vmId} is ${current}, not ${command.expectedPlacementEpoch}`);
      if (!vm.placement) return rejected(`vm ${command.vmId} is not placed`);
      draft.setVm({ ...vm, placement: null });
      return committed;
    }
  }
}

function place(draft: ViewDraft, vmId: string, hostId: string, expectedPlacementEpoch: number, migratingFrom?: string): FirstOutcome {
  const vm = draft.vms.get(vmId);
  if (!vm) return rejected(`unknown vm ${vmId}`);
  const current = vm.placement?.epoch ?? 0;
  if (current !== expectedPlacementEpoch) return rejected(`placement epoch of vm ${vmId} is ${current}, not ${expectedPlacementEpoch}`);
  const host = draft.hosts.get(hostId);
  if (!host) return rejected(`unknown host ${hostId}`);
  if (host.state !== "up") return rejected(`host ${hostId} is ${host.state}, not up`);
  let cpu = vm.resources.cpu;
  let memoryMiB = vm.resources.memoryMiB;
  for (const otherId of draft.vmsOnHost(hostId)) {
    if (otherId === vmId) continue;
    const other = draft.vms.get(otherId)!;
    cpu += other.resources.cpu;
    memoryMiB += other.resources.memoryMiB;
    if (vm.rules.antiAffinity.includes(otherId) || other.rules.antiAffinity.includes(vmId)) return rejected(`anti-affinity: vm ${vmId} may not share host ${hostId} with vm ${otherId}`);
  }
  if (cpu > host.capacity.cpu || memoryMiB > host.capacity.memoryMiB) return rejected(`host ${hostId} lacks capacity for vm ${vmId}`);
  for (const partnerId of vm.rules.affinity) {
    const partner = draft.vms.get(partnerId);
    if (partner?.placement && partner.placement.hostId !== hostId) return rejected(`affinity: vm ${vmId} must run with vm ${partnerId} on host ${partner.placement.hostId}`);
  }
  const epoch = draft.epoch + 1;
  // Placed (back) on a host it left: a start there finds it running if it does. Moved off a host that may still run
  // it (not by live migration, whose marker says so): that host is recorded until its stop is confirmed.
  let leaving = (vm.leavingFrom ?? []).filter((entry) => entry.hostId !== hostId);
  if (migratingFrom === undefined && vm.placement !== null) {
    for (const previousId of [vm.placement.hostId, vm.placement.migratingFrom]) {
      if (previousId === undefined || previousId === hostId) continue;
      const previous = draft.hosts.get(previousId);
      if (previous === undefined || (previous.state !== "up" && previous.state !== "maintenance" && previous.state !== "suspect")) continue;
      leaving = [...leaving.filter((entry) => entry.hostId !== previousId), { hostId: previousId, incarnation: previous.incarnation, placementEpoch: epoch }];
    }
  }
  // A migration leaves room for its target, which its abort may add.
  const limit = migratingFrom === undefined ? maxLeavingSourcesPerVm : maxLeavingSourcesPerVm - 1;
  if (leaving.length > limit) return rejected(`vm ${vmId} has ${leaving.length} hosts it left that have not confirmed its stop (at most ${limit} here)`);
  const placement = migratingFrom === undefined ? { hostId, epoch } : { hostId, epoch, migratingFrom };
  draft.setVm(withLeaving({ ...vm, placement }, leaving));
  return committed;
}

/** The VM with these unconfirmed sources (the field absent when there are none, so views without any are unchanged). */
function withLeaving(vm: VmRecord, leaving: readonly LeavingSource[]): VmRecord {
  const { leavingFrom: _previous, ...rest } = vm;
  return leaving.length === 0 ? rest : { ...rest, leavingFrom: leaving };
}

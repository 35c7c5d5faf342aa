/**
 * The `sim` hypervisor driver: one simulated hypervisor per host node of a
 * SimWorld, plus the world-level ground truth of which VM runs where.
 *
 * - VMs are hardware, not the agent: they live on global virtual time and keep
 *   running while the host's agent is paused. A host crash (power loss) stops
 *   every VM on it; a restarted host finds its VMs defined but shut off.
 * - CPU time advances with virtual time while a VM runs and is not hung.
 * - Every port callback and event goes through the host node's Clock, after a
 *   virtual latency: never inside the call, held while the node is paused,
 *   dropped when it crashes. A state change asked through the port happens when
 *   its callback fires.
 * - Faults (world-level, written to the transcript): VM crash, VM hang (still
 *   "running", CPU time frozen, guest frozen), guest hang (hypervisor state and
 *   CPU fine; the guest's processes stop, so its agent stops heartbeating and
 *   guest ping times out), VM pause, guest-initiated shutdown.
 * - Live migration (hosts given `setLiveMigration`): the memory copy takes
 *   `migrationBaseMs` plus `migrationMsPerGiB` per GiB of the VM's memory
 *   (capped at `maxSimMigrationCopyMs`), during which the VM keeps running on
 *   the source; then a short switchover, and the VM runs on the target and is
 *   gone from the source (like libvirt's `--undefinesource`). The source
 *   stopping the VM, either host crashing, or a partition between them at
 *   the end of the copy or of the switchover aborts it and the VM stays on
 *   the source. The registry records the source inactive before the target
 *   active, so the ground truth never shows the VM on both.
 * - `SimVmRegistry` records every time a VM becomes active (running or paused:
 *   its memory image exists) or inactive on a host, with virtual time, so a
 *   simulation can check "no VM ever runs on two hosts at once" from the
 *   hypervisors' own state rather than from what the cluster believes.
 * - Optionally (`runGuests`), each VM's guest OS is a world node of its own
 *   whose lifecycle follows the VM: executing → up, frozen (paused, hung, guest
 *   hung) → paused, off → crashed. A guest agent actor booted there heartbeats
 *   over the simulated network like the real one does over NATS.
 */
import {
  definitionProblem,
  maxVmVcpus,
  type Hypervisor,
  type HypervisorEvent,
  type HypervisorFailureReason,
  type HypervisorOutcome,
  type VmDefinition,
  type VmPowerState,
  type VmStatus,
} from "../actors/ports/hypervisor.ts";
import type { Clock } from "../actors/ports/clock.ts";
import type { Log } from "../actors/ports/telemetry.ts";
import type { GuestCheckRunner } from "../actors/guest/guestCheckRunner.ts";
import { isValidId } from "../actors/subjects.ts";
import type { NodeClock } from "./nodeClock.ts";
import type { ExtraPortsContext, NodeBoot, NodeLifecycleEvent, SimWorld } from "./world.ts";

export const simHypervisorDriver = "sim";
export const maxVmsPerSimHost = 10_000;
export const maxSimHypervisorEventHandlers = 10_000;
/** Ground-truth history entries kept; older ones are dropped (and counted), the live view and overlaps are kept whole. */
export const maxVmRegistryHistoryEntries = 1_000_000;
export const maxVmOverlapsKept = 10_000;
export const maxVmRegistryListeners = 1_000;
/** A guest ping longer than this is a caller bug. */
export const maxGuestPingTimeoutMs = 60_000;

export interface SimHypervisorSettings {
  /** Virtual time from a port call to its callback (and to the state change it asks for). */
  readonly commandLatencyMs: number;
  /** From a state change to the event reaching the host's handlers. */
  readonly eventLatencyMs: number;
  /** How long a guest takes to power off after an ACPI shutdown request. */
  readonly gracefulShutdownMs: number;
  /** CPU ms a running VM uses per ms of virtual time (0.25: a quarter of one CPU). */
  readonly cpuUsage: number;
  /** A live migration's memory copy: this much plus `migrationMsPerGiB` per GiB of VM memory. */
  readonly migrationBaseMs: number;
  readonly migrationMsPerGiB: number;
  /** The VM is frozen this long between the copy and running on the target. */
  readonly migrationSwitchoverMs: number;
}

/** The memory copy of one live migration never takes longer than this, however large the VM. */
export const maxSimMigrationCopyMs = 20_000;

export const defaultSimHypervisorSettings: SimHypervisorSettings = {
  commandLatencyMs: 1,
  eventLatencyMs: 1,
  gracefulShutdownMs: 200,
  cpuUsage: 0.25,
  migrationBaseMs: 100,
  migrationMsPerGiB: 250,
  migrationSwitchoverMs: 20,
};

// ---------------------------------------------------------------- ground truth

export type VmActivityCause =
  | "start"
  | "stop"
  | "destroy"
  | "crash"
  | "host-crash"
  | "guest-shutdown"
  | "placed"
  | "migrate-out"
  | "migrate-in";

export interface VmActivityRecord {
  readonly atMs: number;
  readonly hostId: string;
  readonly vmId: string;
  readonly active: boolean;
  readonly cause: VmActivityCause;
}

/** A moment a VM became active on a host while it was active on another: the safety violation. */
export interface VmOverlap {
  readonly atMs: number;
  readonly vmId: string;
  readonly hostIds: readonly string[];
}

const noHosts: readonly string[] = Object.freeze([]);

export class SimVmRegistry {
  private readonly activeByVm = new Map<string, readonly string[]>();
  /** VMs active on more than one host right now, so a per-tick safety check need not scan every VM. */
  private readonly multiplyActive = new Set<string>();
  private readonly records: VmActivityRecord[] = [];
  private readonly overlapList: VmOverlap[] = [];
  private readonly listeners = new Set<(record: VmActivityRecord) => void>();
  private droppedRecords = 0;
  private droppedOverlaps = 0;
  private historyHead = 0;

  /** @internal Called by the simulated hypervisors only. */
  record(record: VmActivityRecord): void {
    // Copy on write: the arrays handed out by activeHosts never change under their reader, and reading costs no copy.
    const hosts = this.activeByVm.get(record.vmId) ?? noHosts;
    const index = hosts.indexOf(record.hostId);
    if (record.active) {
      if (index >= 0) return;
      const now = Object.freeze([...hosts, record.hostId]);
      this.activeByVm.set(record.vmId, now);
      if (now.length > 1) {
        this.multiplyActive.add(record.vmId);
        if (this.overlapList.length < maxVmOverlapsKept) this.overlapList.push({ atMs: record.atMs, vmId: record.vmId, hostIds: now });
        else this.droppedOverlaps++;
      }
    } else {
      if (index < 0) return;
      const now = Object.freeze(hosts.filter((_, at) => at !== index));
      if (now.length <= 1) this.multiplyActive.delete(record.vmId);
      if (now.length === 0) this.activeByVm.delete(record.vmId);
      else this.activeByVm.set(record.vmId, now);
    }
    this.records.push(record);
    if (this.records.length - this.historyHead > maxVmRegistryHistoryEntries) {
      this.historyHead++;
      this.droppedRecords++;
      if (this.historyHead >= 65_536) {
        this.records.splice(0, this.historyHead);
        this.historyHead = 0;
      }
    }
    for (const listener of this.listeners) listener(record);
  }

  /** Hosts where the VM is active right now (running or paused), in the order it became active there. */
  activeHosts(vmId: string): readonly string[] {
    return this.activeByVm.get(vmId) ?? noHosts;
  }

  /** The first host where the VM became active among those where it is active now (no copy: cheap enough to ask per VM per tick). */
  firstActiveHost(vmId: string): string | undefined {
    return this.activeByVm.get(vmId)?.[0];
  }

  /** VMs active on two or more hosts right now, in the order they became so. Empty in a correct run. */
  multiplyActiveVmIds(): readonly string[] {
    return [...this.multiplyActive];
  }

  get activeVmCount(): number {
    return this.activeByVm.size;
  }

  /** VMs active anywhere right now, in the order they became active. */
  activeVmIds(): readonly string[] {
    return [...this.activeByVm.keys()];
  }

  /** Every time a VM was active on two hosts at once. Empty in a correct run. */
  overlaps(): readonly VmOverlap[] {
    return this.overlapList;
  }

  get overlapsDropped(): number {
    return this.droppedOverlaps;
  }

  /** Activity changes, oldest first (the oldest beyond `maxVmRegistryHistoryEntries` are gone). */
  history(): readonly VmActivityRecord[] {
    return this.records.slice(this.historyHead);
  }

  get historyDropped(): number {
    return this.droppedRecords;
  }

  /** Called synchronously on every recorded change (for invariant checkers). */
  onRecord(listener: (record: VmActivityRecord) => void): { unsubscribe(): void } {
    if (this.listeners.size >= maxVmRegistryListeners) throw new RangeError(`more than ${maxVmRegistryListeners} registry listeners`);
    this.listeners.add(listener);
    return { unsubscribe: () => this.listeners.delete(listener) };
  }
}

// ---------------------------------------------------------------- simulated VMs

/** What a test or scenario may read about one simulated VM. */
export interface SimVmView {
  readonly hostId: string;
  readonly vmId: string;
  readonly definition: VmDefinition;
  readonly state: VmPowerState;
  readonly hung: boolean;
  readonly guestHung: boolean;
  readonly cpuTimeMs: number;
}

interface SimVm {
  definition: VmDefinition;
  state: VmPowerState;
  /** The whole VM is stuck: state reads running, CPU time frozen. */
  hung: boolean;
  /** The guest OS is stuck: hypervisor fine, CPU may advance, guest agent silent. */
  guestHung: boolean;
  cpuAccumulatedMs: number;
  /** Global time CPU time started counting again, while it counts. */
  cpuSinceMs: number | undefined;
  cpuUsage: number;
  /** Bumped by every stop/start/reset, so a pending graceful shutdown of an earlier run does nothing. */
  runGeneration: number;
  /** The host a live migration is copying this VM to, while one is. */
  migratingTo: string | undefined;
}

interface SimHost {
  readonly hostId: string;
  readonly clock: NodeClock;
  readonly vms: Map<string, SimVm>;
  face: SimHypervisorFace | undefined;
}

function fail<T>(reason: HypervisorFailureReason, error: string): HypervisorOutcome<T> {
  return { ok: false, reason, error };
}

const ok: HypervisorOutcome<void> = { ok: true, value: undefined };

function isActive(state: VmPowerState): boolean {
  return state === "running" || state === "paused";
}

function checkSettings(settings: SimHypervisorSettings): void {
  for (const key of ["commandLatencyMs", "eventLatencyMs", "gracefulShutdownMs", "migrationBaseMs", "migrationMsPerGiB", "migrationSwitchoverMs"] as const) {
    const value = settings[key];
    if (!Number.isFinite(value) || value < 0 || value > 60_000) throw new RangeError(`${key} must be within [0, 60000] ms, got ${value}`);
  }
  checkCpuUsage(settings.cpuUsage);
}

/** CPU usage is in CPUs; a VM cannot use more than its largest possible vCPU count. */
function checkCpuUsage(usage: number): void {
  if (!Number.isFinite(usage) || usage < 0 || usage > maxVmVcpus) throw new RangeError(`cpu usage must be within [0, ${maxVmVcpus}], got ${usage}`);
}

/** The world node id a VM's guest OS runs as, under `runGuests`. */
export function guestNodeId(vmId: string): string {
  return `guest-${vmId}`;
}

/**
 * All simulated hypervisors of one world:
 *
 *     const hypervisors = new SimHypervisors();
 *     const world = new SimWorld({ seed, clusterId, extraPorts: (context) => ({ hypervisor: hypervisors.hypervisorFor(context) }) });
 */
export class SimHypervisors {
  readonly registry = new SimVmRegistry();
  readonly settings: SimHypervisorSettings;
  private readonly hosts = new Map<string, SimHost>();
  private guestBoot: ((vmId: string) => NodeBoot) | undefined;
  private readonly guestNodes = new Set<string>();
  private attachedWorld: SimWorld | undefined;
  /** Application checks made to fail inside each guest, by VM. */
  private readonly failingChecks = new Map<string, Set<string>>();
  /** Hosts whose hypervisor can migrate live (both ends of a migration must). */
  private readonly liveMigrationHosts = new Set<string>();
  /** Migrations under way, each with how to abort it now (a host at either end crashed). */
  private readonly migrations = new Set<{ readonly sourceHostId: string; readonly targetHostId: string; abort(reason: string): void }>();

  /** Attaches to the world the first time `hypervisorFor` is called from its `extraPorts` factory. */
  constructor(settings: Partial<SimHypervisorSettings> = {}) {
    this.settings = { ...defaultSimHypervisorSettings, ...settings };
    checkSettings(this.settings);
  }

  private get world(): SimWorld {
    if (this.attachedWorld === undefined) throw new RangeError("no host yet: pass hypervisorFor to the world's extraPorts and add a node");
    return this.attachedWorld;
  }

  /**
   * The Hypervisor port of one node incarnation, for the world's `extraPorts`
   * factory: every node gets one (and becomes a host) except the guest nodes
   * of `runGuests`, which get undefined.
   */
  hypervisorFor(context: ExtraPortsContext): Hypervisor | undefined {
    if (this.attachedWorld === undefined) {
      this.attachedWorld = context.world;
      context.world.onNodeLifecycle((event) => this.onLifecycle(event));
    }
    if (context.world !== this.attachedWorld) throw new RangeError("these simulated hypervisors belong to another world");
    if (this.guestNodes.has(context.nodeId)) return undefined;
    let host = this.hosts.get(context.nodeId);
    if (host === undefined) {
      host = { hostId: context.nodeId, clock: context.clock, vms: new Map(), face: undefined };
      this.hosts.set(context.nodeId, host);
    }
    host.face = new SimHypervisorFace(this, host, context.log);
    return host.face;
  }

  /**
   * Runs each VM's guest OS as a world node named `guestNodeId(vmId)`, booted
   * with `boot(vmId)` whenever the VM (re)starts. Call before VMs start.
   */
  runGuests(boot: (vmId: string) => NodeBoot): void {
    this.guestBoot = boot;
    for (const host of this.hosts.values()) for (const vm of host.vms.values()) this.syncGuest(vm);
  }

  hostIds(): readonly string[] {
    return [...this.hosts.keys()];
  }

  /** Whether the host's hypervisor migrates live (its port's `supportsLiveMigration`); set before the host boots. */
  setLiveMigration(hostId: string, enabled: boolean): void {
    if (!isValidId(hostId)) throw new RangeError(`invalid host id ${JSON.stringify(hostId).slice(0, 80)}`);
    if (enabled) this.liveMigrationHosts.add(hostId);
    else this.liveMigrationHosts.delete(hostId);
  }

  supportsLiveMigration(hostId: string): boolean {
    return this.liveMigrationHosts.has(hostId);
  }

  vmIds(hostId: string): readonly string[] {
    return [...this.host(hostId).vms.keys()];
  }

  vm(hostId: string, vmId: string): SimVmView | undefined {
    const vm = this.hosts.get(hostId)?.vms.get(vmId);
    if (vm === undefined) return undefined;
    return {
      hostId,
      vmId,
      definition: vm.definition,
      state: vm.state,
      hung: vm.hung,
      guestHung: vm.guestHung,
      cpuTimeMs: this.cpuTimeMs(vm),
    };
  }

  // ------------------------------------------------ world-level setup and faults (transcript lines, RangeError on misuse)

  /** Scenario setup: defines the VM on the host at once, and starts it unless `running` is false. */
  placeVm(hostId: string, definition: VmDefinition, options: { readonly running?: boolean } = {}): void {
    const host = this.host(hostId);
    const problem = definitionProblem(definition, isValidId) ?? this.defineProblem(host, definition);
    if (problem !== undefined) throw new RangeError(problem);
    const vm = this.defineVm(host, definition);
    this.world.log.write("info", "vm-place", { host: hostId, vm: definition.vmId, virtualization: definition.virtualization });
    if (options.running !== false && !isActive(vm.state)) this.startVm(host, vm, "placed");
  }

  crashVm(hostId: string, vmId: string): void {
    const { host, vm } = this.activeVm(hostId, vmId, "crash");
    this.world.log.write("info", "vm-crash", { host: hostId, vm: vmId });
    this.deactivate(host, vm, "crashed", "crash");
  }

  /** The VM stops executing but its state still reads running: only its frozen CPU time gives it away. */
  hangVm(hostId: string, vmId: string): void {
    const { vm } = this.activeVm(hostId, vmId, "hang");
    if (vm.state !== "running") throw new RangeError(`vm ${vmId} on ${hostId} is ${vm.state}, cannot hang`);
    this.world.log.write("info", "vm-hang", { host: hostId, vm: vmId });
    this.stopCpu(vm);
    vm.hung = true;
    this.syncGuest(vm);
  }

  unhangVm(hostId: string, vmId: string): void {
    const { vm } = this.activeVm(hostId, vmId, "unhang");
    if (!vm.hung) throw new RangeError(`vm ${vmId} on ${hostId} is not hung`);
    this.world.log.write("info", "vm-unhang", { host: hostId, vm: vmId });
    vm.hung = false;
    if (vm.state === "running") this.startCpu(vm);
    this.syncGuest(vm);
  }

  /** The guest OS stops (its agent with it); the hypervisor sees nothing wrong. */
  hangGuest(hostId: string, vmId: string): void {
    const { vm } = this.activeVm(hostId, vmId, "guest-hang");
    if (vm.guestHung) throw new RangeError(`guest of vm ${vmId} on ${hostId} is already hung`);
    this.world.log.write("info", "guest-hang", { host: hostId, vm: vmId });
    vm.guestHung = true;
    this.syncGuest(vm);
  }

  unhangGuest(hostId: string, vmId: string): void {
    const { vm } = this.activeVm(hostId, vmId, "guest-unhang");
    if (!vm.guestHung) throw new RangeError(`guest of vm ${vmId} on ${hostId} is not hung`);
    this.world.log.write("info", "guest-unhang", { host: hostId, vm: vmId });
    vm.guestHung = false;
    this.syncGuest(vm);
  }

  /** A pause the host agent did not ask for (an operator, an I/O error policy). */
  pauseVm(hostId: string, vmId: string): void {
    const { host, vm } = this.activeVm(hostId, vmId, "pause");
    if (vm.state !== "running") throw new RangeError(`vm ${vmId} on ${hostId} is ${vm.state}, cannot pause`);
    this.world.log.write("info", "vm-pause", { host: hostId, vm: vmId });
    this.applyPause(host, vm);
  }

  resumeVm(hostId: string, vmId: string): void {
    const { host, vm } = this.activeVm(hostId, vmId, "resume");
    if (vm.state !== "paused") throw new RangeError(`vm ${vmId} on ${hostId} is ${vm.state}, cannot resume`);
    this.world.log.write("info", "vm-resume", { host: hostId, vm: vmId });
    this.applyResume(host, vm);
  }

  /** The guest powers itself off (someone typed `poweroff` inside it). */
  shutdownFromGuest(hostId: string, vmId: string): void {
    const { host, vm } = this.activeVm(hostId, vmId, "guest-shutdown");
    this.world.log.write("info", "vm-guest-shutdown", { host: hostId, vm: vmId });
    this.deactivate(host, vm, "shutoff", "guest-shutdown");
  }

  /** From now on the named application check fails inside the VM's guest (the service died). */
  failGuestCheck(vmId: string, checkName: string): void {
    const failing = this.failingChecks.get(vmId) ?? new Set<string>();
    failing.add(checkName);
    this.failingChecks.set(vmId, failing);
    this.world.log.write("info", "guest-check-fail", { vm: vmId, check: checkName });
  }

  passGuestCheck(vmId: string, checkName: string): void {
    this.failingChecks.get(vmId)?.delete(checkName);
    this.world.log.write("info", "guest-check-pass", { vm: vmId, check: checkName });
  }

  /** Simulated application checks for a guest agent running on a guest node's clock. */
  guestCheckRunner(vmId: string, clock: Clock): GuestCheckRunner {
    return {
      run: (check, timeoutMs, done) => {
        const failing = this.failingChecks.get(vmId)?.has(check.name) ?? false;
        clock.setTimeout(
          () => done(failing ? { ok: false, detail: check.kind === "tcp" ? "connection refused" : "exit code 1" } : { ok: true, detail: "" }),
          Math.min(timeoutMs, this.settings.commandLatencyMs),
        );
      },
    };
  }

  setCpuUsage(hostId: string, vmId: string, usage: number): void {
    checkCpuUsage(usage);
    const vm = this.host(hostId).vms.get(vmId);
    if (vm === undefined) throw new RangeError(`no vm ${vmId} on ${hostId}`);
    const counting = vm.cpuSinceMs !== undefined;
    if (counting) this.stopCpu(vm);
    vm.cpuUsage = usage;
    if (counting) this.startCpu(vm);
  }

  // ------------------------------------------------ operations behind the port (called when the command completes)

  /** @internal */
  opDefine(host: SimHost, definition: VmDefinition): HypervisorOutcome<void> {
    const problem = definitionProblem(definition, isValidId);
    if (problem !== undefined) return fail("invalid", problem);
    const conflict = this.defineProblem(host, definition);
    if (conflict !== undefined) return fail("invalid", conflict);
    this.defineVm(host, definition);
    return ok;
  }

  /** @internal */
  opStart(host: SimHost, vmId: string): HypervisorOutcome<void> {
    const vm = host.vms.get(vmId);
    if (vm === undefined) return fail("not-found", `no vm ${vmId}`);
    if (isActive(vm.state)) return fail("invalid", `vm ${vmId} is already active (${vm.state})`);
    this.startVm(host, vm, "start");
    return ok;
  }

  /** @internal */
  opStop(host: SimHost, vmId: string, force: boolean): HypervisorOutcome<void> {
    const vm = host.vms.get(vmId);
    if (vm === undefined) return fail("not-found", `no vm ${vmId}`);
    if (!isActive(vm.state)) return fail("invalid", `vm ${vmId} is not running (${vm.state})`);
    if (force) {
      this.deactivate(host, vm, "shutoff", "destroy");
      return ok;
    }
    // ACPI shutdown: only a guest that executes reacts, and it takes a while.
    if (vm.state === "running" && !vm.hung && !vm.guestHung) {
      const generation = vm.runGeneration;
      this.world.schedule(this.settings.gracefulShutdownMs, () => {
        if (vm.runGeneration === generation && vm.state === "running" && !vm.hung && !vm.guestHung) this.deactivate(host, vm, "shutoff", "stop");
      });
    }
    return ok;
  }

  /** @internal */
  opReset(host: SimHost, vmId: string): HypervisorOutcome<void> {
    const vm = host.vms.get(vmId);
    if (vm === undefined) return fail("not-found", `no vm ${vmId}`);
    if (vm.state !== "running") return fail("invalid", `vm ${vmId} is ${vm.state}, only a running vm can be reset`);
    this.world.log.write("debug", "vm-reset", { host: host.hostId, vm: vmId });
    vm.runGeneration++;
    vm.hung = false;
    vm.guestHung = false;
    if (vm.cpuSinceMs === undefined) this.startCpu(vm);
    // The guest reboots: a new incarnation of its node.
    this.rebootGuest(vm);
    return ok;
  }

  /** @internal */
  opPause(host: SimHost, vmId: string): HypervisorOutcome<void> {
    const vm = host.vms.get(vmId);
    if (vm === undefined) return fail("not-found", `no vm ${vmId}`);
    if (vm.state === "paused") return ok;
    if (vm.state !== "running") return fail("invalid", `vm ${vmId} is ${vm.state}, cannot pause`);
    this.applyPause(host, vm);
    return ok;
  }

  /** @internal */
  opResume(host: SimHost, vmId: string): HypervisorOutcome<void> {
    const vm = host.vms.get(vmId);
    if (vm === undefined) return fail("not-found", `no vm ${vmId}`);
    if (vm.state !== "paused") return fail("invalid", `vm ${vmId} is ${vm.state}, not paused`);
    this.applyResume(host, vm);
    return ok;
  }

  /**
   * @internal A live migration of `vmId` from `host` to `targetHostId`; `finish` is called (on global time)
   * when it succeeded or was aborted, or at once when it cannot begin.
   */
  opMigrate(host: SimHost, vmId: string, targetHostId: string, finish: (outcome: HypervisorOutcome<void>) => void): void {
    const vm = host.vms.get(vmId);
    const target = this.hosts.get(targetHostId);
    if (vm === undefined) return finish(fail("not-found", `no vm ${vmId}`));
    if (target === undefined) return finish(fail("invalid", `unknown migration target ${JSON.stringify(targetHostId).slice(0, 80)}`));
    if (target === host) return finish(fail("invalid", `vm ${vmId} cannot migrate to the host it runs on`));
    if (!this.liveMigrationHosts.has(host.hostId) || !this.liveMigrationHosts.has(targetHostId)) {
      return finish(fail("unsupported", `live migration from ${host.hostId} to ${targetHostId} is not enabled on both hypervisors`));
    }
    if (!isActive(vm.state)) return finish(fail("invalid", `vm ${vmId} is ${vm.state}, only a running vm migrates live`));
    if (vm.migratingTo !== undefined) return finish(fail("invalid", `vm ${vmId} is already migrating to ${vm.migratingTo}`));
    // The hypervisors talk over the network: a target that is down or cut off refuses at once.
    if (this.world.nodeState(targetHostId) === "crashed") return finish(fail("unavailable", `target host ${targetHostId} is down`));
    if (!this.world.fabric.canReach(host.hostId, targetHostId) || !this.world.fabric.canReach(targetHostId, host.hostId)) {
      return finish(fail("unavailable", `${host.hostId} cannot reach ${targetHostId}`));
    }
    // A target that restarts meanwhile dropped the connection: the copy never lands on its next boot.
    const targetIncarnation = this.world.incarnation(targetHostId);
    const generation = vm.runGeneration;
    const copyMs = Math.min(this.settings.migrationBaseMs + (vm.definition.memoryMiB / 1024) * this.settings.migrationMsPerGiB, maxSimMigrationCopyMs);
    vm.migratingTo = targetHostId;
    this.world.log.write("debug", "vm-migrate-begin", { vm: vmId, from: host.hostId, to: targetHostId, copyMs: Math.round(copyMs) });
    const abortReason = (): string | undefined => {
      if (host.vms.get(vmId) !== vm || vm.runGeneration !== generation || !isActive(vm.state)) return "the vm stopped on the source";
      if (this.world.nodeState(host.hostId) === "crashed") return `source host ${host.hostId} is down`;
      if (this.world.nodeState(targetHostId) === "crashed" || this.world.incarnation(targetHostId) !== targetIncarnation) return `target host ${targetHostId} went down`;
      if (!this.world.fabric.canReach(host.hostId, targetHostId) || !this.world.fabric.canReach(targetHostId, host.hostId)) return `${host.hostId} and ${targetHostId} cannot reach each other`;
      const existing = target.vms.get(vmId);
      if (existing !== undefined && isActive(existing.state)) return `vm ${vmId} is already active on ${targetHostId}`;
      if (existing === undefined && target.vms.size >= maxVmsPerSimHost) return `more than ${maxVmsPerSimHost} vms on ${targetHostId}`;
      return undefined;
    };
    let ended = false;
    const migration = {
      sourceHostId: host.hostId,
      targetHostId,
      abort: (reason: string): void => {
        if (ended) return;
        ended = true;
        this.migrations.delete(migration);
        if (vm.migratingTo === targetHostId) vm.migratingTo = undefined;
        this.world.log.write("info", "vm-migrate-aborted", { vm: vmId, from: host.hostId, to: targetHostId, reason });
        finish(fail("failed", `migration of vm ${vmId} to ${targetHostId} aborted: ${reason}`));
      },
    };
    this.migrations.add(migration);
    this.world.schedule(copyMs, () => {
      if (ended) return;
      const copyProblem = abortReason();
      if (copyProblem !== undefined) return migration.abort(copyProblem);
      this.world.schedule(this.settings.migrationSwitchoverMs, () => {
        if (ended) return;
        const switchProblem = abortReason();
        if (switchProblem !== undefined) return migration.abort(switchProblem);
        ended = true;
        this.migrations.delete(migration);
        this.switchOver(host, vm, target);
        finish(ok);
      });
    });
  }

  /** The last step of a live migration: the VM leaves the source (undefined there) and runs on the target. */
  private switchOver(source: SimHost, vm: SimVm, target: SimHost): void {
    const vmId = vm.definition.vmId;
    const state = vm.state;
    this.stopCpu(vm);
    vm.state = "shutoff";
    vm.runGeneration++;
    vm.migratingTo = undefined;
    source.vms.delete(vmId);
    // Inactive on the source first: the record never shows the VM on both hosts.
    this.registry.record({ atMs: this.world.now(), hostId: source.hostId, vmId, active: false, cause: "migrate-out" });
    this.emit(source, { type: "stopped", vmId });
    const moved: SimVm = {
      definition: { ...vm.definition },
      state,
      hung: vm.hung,
      guestHung: vm.guestHung,
      cpuAccumulatedMs: vm.cpuAccumulatedMs,
      cpuSinceMs: undefined,
      cpuUsage: vm.cpuUsage,
      runGeneration: (target.vms.get(vmId)?.runGeneration ?? 0) + 1,
      migratingTo: undefined,
    };
    target.vms.set(vmId, moved);
    if (state === "running" && !moved.hung) this.startCpu(moved);
    this.registry.record({ atMs: this.world.now(), hostId: target.hostId, vmId, active: true, cause: "migrate-in" });
    this.emit(target, { type: "started", vmId });
    this.world.log.write("info", "vm-migrated", { vm: vmId, from: source.hostId, to: target.hostId });
    // The guest OS keeps running through a live migration: same guest node, same state.
    this.syncGuest(moved);
  }

  /** @internal Whether a guest ping is answered now; the face turns `timeout` into a delay. */
  opGuestPing(host: SimHost, vmId: string): HypervisorOutcome<void> {
    const vm = host.vms.get(vmId);
    if (vm === undefined) return fail("not-found", `no vm ${vmId}`);
    if (vm.definition.virtualization === "para") return fail("unsupported", `vm ${vmId} is para-virtualized: no guest agent channel`);
    if (vm.state !== "running") return fail("invalid", `vm ${vmId} is ${vm.state}`);
    if (vm.hung || vm.guestHung) return fail("timeout", `guest of vm ${vmId} did not answer`);
    return ok;
  }

  /** @internal */
  statusOf(host: SimHost, vmId: string): VmStatus | undefined {
    const vm = host.vms.get(vmId);
    if (vm === undefined) return undefined;
    return { vmId, state: vm.state, virtualization: vm.definition.virtualization, cpuTimeMs: this.cpuTimeMs(vm) };
  }

  /** @internal */
  listOf(host: SimHost): VmStatus[] {
    const statuses: VmStatus[] = [];
    for (const vmId of host.vms.keys()) statuses.push(this.statusOf(host, vmId)!);
    return statuses;
  }

  // ------------------------------------------------ internals

  private host(hostId: string): SimHost {
    const host = this.hosts.get(hostId);
    if (host === undefined) throw new RangeError(`unknown hypervisor host ${JSON.stringify(hostId)}`);
    return host;
  }

  private activeVm(hostId: string, vmId: string, what: string): { host: SimHost; vm: SimVm } {
    const host = this.host(hostId);
    const vm = host.vms.get(vmId);
    if (vm === undefined) throw new RangeError(`no vm ${vmId} on ${hostId}`);
    if (!isActive(vm.state)) throw new RangeError(`vm ${vmId} on ${hostId} is ${vm.state}, cannot ${what}`);
    return { host, vm };
  }

  private defineProblem(host: SimHost, definition: VmDefinition): string | undefined {
    const existing = host.vms.get(definition.vmId);
    if (existing === undefined) return host.vms.size >= maxVmsPerSimHost ? `more than ${maxVmsPerSimHost} vms on ${host.hostId}` : undefined;
    if (isActive(existing.state) && existing.definition.virtualization !== definition.virtualization) {
      return `vm ${definition.vmId} is active; its virtualization cannot change`;
    }
    return undefined;
  }

  private defineVm(host: SimHost, definition: VmDefinition): SimVm {
    const existing = host.vms.get(definition.vmId);
    if (existing !== undefined) {
      existing.definition = { ...definition };
      return existing;
    }
    const vm: SimVm = {
      definition: { ...definition },
      state: "shutoff",
      hung: false,
      guestHung: false,
      cpuAccumulatedMs: 0,
      cpuSinceMs: undefined,
      cpuUsage: this.settings.cpuUsage,
      runGeneration: 0,
      migratingTo: undefined,
    };
    host.vms.set(definition.vmId, vm);
    return vm;
  }

  private cpuTimeMs(vm: SimVm): number {
    if (vm.cpuSinceMs === undefined) return vm.cpuAccumulatedMs;
    return vm.cpuAccumulatedMs + (this.world.now() - vm.cpuSinceMs) * vm.cpuUsage;
  }

  private startCpu(vm: SimVm): void {
    if (vm.cpuSinceMs === undefined) vm.cpuSinceMs = this.world.now();
  }

  private stopCpu(vm: SimVm): void {
    vm.cpuAccumulatedMs = this.cpuTimeMs(vm);
    vm.cpuSinceMs = undefined;
  }

  private startVm(host: SimHost, vm: SimVm, cause: VmActivityCause): void {
    vm.state = "running";
    vm.hung = false;
    vm.guestHung = false;
    vm.runGeneration++;
    this.startCpu(vm);
    this.registry.record({ atMs: this.world.now(), hostId: host.hostId, vmId: vm.definition.vmId, active: true, cause });
    this.emit(host, { type: "started", vmId: vm.definition.vmId });
    this.rebootGuest(vm);
  }

  private deactivate(host: SimHost, vm: SimVm, state: "shutoff" | "crashed", cause: VmActivityCause): void {
    this.stopCpu(vm);
    vm.state = state;
    vm.hung = false;
    vm.guestHung = false;
    vm.runGeneration++;
    this.registry.record({ atMs: this.world.now(), hostId: host.hostId, vmId: vm.definition.vmId, active: false, cause });
    this.emit(host, { type: state === "crashed" ? "crashed" : "stopped", vmId: vm.definition.vmId });
    this.syncGuest(vm);
  }

  private applyPause(host: SimHost, vm: SimVm): void {
    this.stopCpu(vm);
    vm.state = "paused";
    this.emit(host, { type: "paused", vmId: vm.definition.vmId });
    this.syncGuest(vm);
  }

  private applyResume(host: SimHost, vm: SimVm): void {
    vm.state = "running";
    if (!vm.hung) this.startCpu(vm);
    this.emit(host, { type: "resumed", vmId: vm.definition.vmId });
    this.syncGuest(vm);
  }

  private emit(host: SimHost, event: HypervisorEvent): void {
    host.face?.deliver(event);
  }

  private onLifecycle(event: NodeLifecycleEvent): void {
    if (event.type !== "crashed") return;
    const host = this.hosts.get(event.nodeId);
    if (host === undefined) return;
    // Power loss: every VM on the host stops with it. The agent is already dead, so nobody hears the events.
    for (const vm of host.vms.values()) {
      if (isActive(vm.state)) this.deactivate(host, vm, "shutoff", "host-crash");
    }
    // Migrations to or from it fail at once (the connection between the hypervisors drops).
    for (const migration of [...this.migrations]) {
      if (migration.sourceHostId === host.hostId || migration.targetHostId === host.hostId) migration.abort(`host ${host.hostId} crashed`);
    }
  }

  // ------------------------------------------------ guest nodes

  private guestState(vm: SimVm): "up" | "paused" | "crashed" {
    if (!isActive(vm.state)) return "crashed";
    return vm.state === "running" && !vm.hung && !vm.guestHung ? "up" : "paused";
  }

  /** A fresh guest incarnation (start, reset), then the state the VM implies. */
  private rebootGuest(vm: SimVm): void {
    const nodeId = this.guestNodeFor(vm);
    if (nodeId === undefined) return;
    if (this.guestNodes.has(nodeId) && this.world.nodeState(nodeId) !== "crashed") this.world.crash(nodeId);
    this.syncGuest(vm);
  }

  private syncGuest(vm: SimVm): void {
    const nodeId = this.guestNodeFor(vm);
    if (nodeId === undefined) return;
    const want = this.guestState(vm);
    if (!this.guestNodes.has(nodeId)) {
      if (want === "crashed") return;
      this.guestNodes.add(nodeId);
      const boot = this.guestBoot!(vm.definition.vmId);
      this.world.addNode(nodeId, boot);
    }
    let current = this.world.nodeState(nodeId);
    if (want === "crashed") {
      if (current !== "crashed") this.world.crash(nodeId);
      return;
    }
    if (current === "crashed") {
      this.world.restart(nodeId);
      current = "up";
    }
    if (want === "paused" && current === "up") this.world.pause(nodeId);
    if (want === "up" && current === "paused") this.world.resume(nodeId);
  }

  private guestNodeFor(vm: SimVm): string | undefined {
    if (this.guestBoot === undefined) return undefined;
    const nodeId = guestNodeId(vm.definition.vmId);
    if (!isValidId(nodeId) || this.hosts.has(nodeId)) {
      this.world.log.write("warn", "guest-node-skipped", { vm: vm.definition.vmId, reason: "vm id too long for a guest node id, or taken by a host" });
      return undefined;
    }
    return nodeId;
  }
}

/** One host node incarnation's Hypervisor port. */
class SimHypervisorFace implements Hypervisor {
  readonly driver = simHypervisorDriver;
  private readonly handlers = new Set<(event: HypervisorEvent) => void>();

  constructor(
    private readonly fleet: SimHypervisors,
    private readonly host: SimHost,
    private readonly log: Log,
  ) {}

  private get current(): boolean {
    return this.host.face === this;
  }

  get supportsLiveMigration(): boolean {
    return this.fleet.supportsLiveMigration(this.host.hostId);
  }

  migrate(vmId: string, targetHostId: string, done: (outcome: HypervisorOutcome<void>) => void): void {
    if (!this.current) return;
    this.host.clock.setTimeout(() => {
      if (!this.current) return;
      this.fleet.opMigrate(this.host, vmId, targetHostId, (outcome) => {
        // The answer reaches the agent on its own clock: held while it is paused, lost with a crash.
        if (!this.current) return;
        this.host.clock.setTimeout(() => {
          if (this.current) done(this.logged("migrate", vmId, outcome));
        }, 0);
      });
    }, this.fleet.settings.commandLatencyMs);
  }

  /** Completes on the node's clock after the command latency; a dead incarnation's calls are dropped. */
  private complete<T>(done: (outcome: HypervisorOutcome<T>) => void, operation: () => HypervisorOutcome<T>, delayMs?: number): void {
    if (!this.current) return;
    this.host.clock.setTimeout(() => {
      if (!this.current) return;
      done(operation());
    }, delayMs ?? this.fleet.settings.commandLatencyMs);
  }

  list(done: (outcome: HypervisorOutcome<readonly VmStatus[]>) => void): void {
    this.complete(done, () => ({ ok: true, value: this.fleet.listOf(this.host) }));
  }

  status(vmId: string, done: (outcome: HypervisorOutcome<VmStatus | undefined>) => void): void {
    this.complete(done, () => ({ ok: true, value: this.fleet.statusOf(this.host, vmId) }));
  }

  define(definition: VmDefinition, done: (outcome: HypervisorOutcome<void>) => void): void {
    this.complete(done, () => this.logged("define", definition.vmId, this.fleet.opDefine(this.host, definition)));
  }

  start(vmId: string, done: (outcome: HypervisorOutcome<void>) => void): void {
    this.complete(done, () => this.logged("start", vmId, this.fleet.opStart(this.host, vmId)));
  }

  stop(vmId: string, force: boolean, done: (outcome: HypervisorOutcome<void>) => void): void {
    this.complete(done, () => this.logged(force ? "destroy" : "shutdown", vmId, this.fleet.opStop(this.host, vmId, force)));
  }

  reset(vmId: string, done: (outcome: HypervisorOutcome<void>) => void): void {
    this.complete(done, () => this.logged("reset", vmId, this.fleet.opReset(this.host, vmId)));
  }

  pause(vmId: string, done: (outcome: HypervisorOutcome<void>) => void): void {
    this.complete(done, () => this.logged("pause", vmId, this.fleet.opPause(this.host, vmId)));
  }

  resume(vmId: string, done: (outcome: HypervisorOutcome<void>) => void): void {
    this.complete(done, () => this.logged("resume", vmId, this.fleet.opResume(this.host, vmId)));
  }

  guestPing(vmId: string, timeoutMs: number, done: (outcome: HypervisorOutcome<void>) => void): void {
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0 || timeoutMs > maxGuestPingTimeoutMs) {
      this.complete(done, () => fail("invalid", `guest ping timeout must be within (0, ${maxGuestPingTimeoutMs}] ms, got ${timeoutMs}`));
      return;
    }
    // Decided when the answer would arrive; a guest that hangs meanwhile does not answer.
    const answer = this.fleet.opGuestPing(this.host, vmId);
    if (!answer.ok && answer.reason === "timeout") {
      this.complete(done, () => answer, timeoutMs);
      return;
    }
    this.complete(done, () => {
      const later = this.fleet.opGuestPing(this.host, vmId);
      return later.ok || later.reason !== "timeout" ? later : fail("timeout", later.error);
    });
  }

  onEvent(handler: (event: HypervisorEvent) => void): { unsubscribe(): void } {
    if (this.handlers.size >= maxSimHypervisorEventHandlers) throw new RangeError(`more than ${maxSimHypervisorEventHandlers} hypervisor event handlers`);
    this.handlers.add(handler);
    return { unsubscribe: () => this.handlers.delete(handler) };
  }

  /** @internal */
  deliver(event: HypervisorEvent): void {
    if (this.handlers.size === 0 || this.host.clock.isDown) return;
    this.host.clock.setTimeout(() => {
      if (!this.current) return;
      for (const handler of [...this.handlers]) handler(event);
    }, this.fleet.settings.eventLatencyMs);
  }

  private logged(operation: string, vmId: string, outcome: HypervisorOutcome<void>): HypervisorOutcome<void> {
    this.log.write("debug", "hypervisor.op", { op: operation, vm: vmId, ok: outcome.ok, ...(outcome.ok ? {} : { reason: outcome.reason }) });
    return outcome;
  }
}

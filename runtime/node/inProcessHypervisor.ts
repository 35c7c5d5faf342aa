/**
 * The `sim` hypervisor driver of a real host process: VMs that exist only in
 * this process's memory, on the real clock. It lets `haring node` and
 * `haring up` run hosts on any machine (no libvirt, no root) with the same
 * Hypervisor port the libvirt driver implements, so the VM actors and the
 * isolation response work as they would on real VMs. (The simulator's own
 * driver, sim/simHypervisor.ts, lives on virtual time inside a SimWorld.)
 *
 * A running VM's CPU time advances at `cpuUsage` CPUs; every callback and
 * event is delivered on a later turn of the event loop, never inside the call.
 * VMs listed in the config are defined (and started, unless `running` is
 * false) when the process starts; a restarted process starts from its config
 * again, as real VMs would not survive a host reset either.
 */
import {
  definitionProblem,
  type Hypervisor,
  type HypervisorEvent,
  type HypervisorOutcome,
  type VmDefinition,
  type VmPowerState,
  type VmStatus,
} from "../../actors/ports/hypervisor.ts";
import type { Clock } from "../../actors/ports/clock.ts";
import { isValidId } from "../../actors/subjects.ts";

export const inProcessHypervisorDriver = "sim";
export const maxInProcessVms = 1_000;
export const maxInProcessEventHandlers = 1_000;
const defaultCpuUsage = 0.25;

interface InProcessVm {
  readonly definition: VmDefinition;
  state: VmPowerState;
  cpuAccumulatedMs: number;
  cpuSinceMs: number | undefined;
}

const ok: HypervisorOutcome<void> = { ok: true, value: undefined };

export class InProcessHypervisor implements Hypervisor {
  readonly driver = inProcessHypervisorDriver;
  readonly supportsLiveMigration = false;
  private readonly vms = new Map<string, InProcessVm>();
  private readonly handlers = new Set<(event: HypervisorEvent) => void>();

  constructor(private readonly clock: Clock) {}

  /** Defines a VM at once (and starts it unless `running` is false); throws a RangeError for a bad definition. */
  place(definition: VmDefinition, running = true): void {
    const problem = definitionProblem(definition, isValidId) ?? this.defineProblem(definition);
    if (problem !== undefined) throw new RangeError(problem);
    this.vms.set(definition.vmId, { definition, state: "shutoff", cpuAccumulatedMs: 0, cpuSinceMs: undefined });
    if (running) this.setState(definition.vmId, "running");
  }

  /** Power states of every VM, for status files and tests. */
  states(): ReadonlyMap<string, VmPowerState> {
    return new Map([...this.vms].map(([vmId, vm]) => [vmId, vm.state]));
  }

  list(done: (outcome: HypervisorOutcome<readonly VmStatus[]>) => void): void {
    const statuses = [...this.vms.keys()].map((vmId) => this.statusOf(vmId));
    this.later(() => done({ ok: true, value: statuses }));
  }

  status(vmId: string, done: (outcome: HypervisorOutcome<VmStatus | undefined>) => void): void {
    const status = this.vms.has(vmId) ? this.statusOf(vmId) : undefined;
    this.later(() => done({ ok: true, value: status }));
  }

  define(definition: VmDefinition, done: (outcome: HypervisorOutcome<void>) => void): void {
    const problem = definitionProblem(definition, isValidId) ?? this.defineProblem(definition);
    if (problem === undefined) this.vms.set(definition.vmId, { definition, state: "shutoff", cpuAccumulatedMs: 0, cpuSinceMs: undefined });
    this.later(() => done(problem === undefined ? ok : { ok: false, reason: "invalid", error: problem }));
  }

  start(vmId: string, done: (outcome: HypervisorOutcome<void>) => void): void {
    this.change(vmId, ["shutoff", "crashed"], "running", done);
  }

  stop(vmId: string, _force: boolean, done: (outcome: HypervisorOutcome<void>) => void): void {
    this.change(vmId, ["running", "paused"], "shutoff", done);
  }

  reset(vmId: string, done: (outcome: HypervisorOutcome<void>) => void): void {
    this.change(vmId, ["running"], "running", done);
  }

  pause(vmId: string, done: (outcome: HypervisorOutcome<void>) => void): void {
    this.change(vmId, ["running"], "paused", done);
  }

  resume(vmId: string, done: (outcome: HypervisorOutcome<void>) => void): void {
    this.change(vmId, ["paused"], "running", done);
  }

  guestPing(_vmId: string, _timeoutMs: number, done: (outcome: HypervisorOutcome<void>) => void): void {
    this.later(() => done({ ok: false, reason: "unsupported", error: "the sim driver has no guest-agent channel" }));
  }

  onEvent(handler: (event: HypervisorEvent) => void): { unsubscribe(): void } {
    if (this.handlers.size >= maxInProcessEventHandlers) throw new RangeError(`more than ${maxInProcessEventHandlers} event handlers`);
    const wrapped = (event: HypervisorEvent) => handler(event);
    this.handlers.add(wrapped);
    return { unsubscribe: () => this.handlers.delete(wrapped) };
  }

  private defineProblem(definition: VmDefinition): string | undefined {
    const existing = this.vms.get(definition.vmId);
    if (existing !== undefined && existing.state !== "shutoff" && existing.state !== "crashed") return `vm ${definition.vmId} is ${existing.state}: cannot redefine it`;
    if (existing === undefined && this.vms.size >= maxInProcessVms) return `more than ${maxInProcessVms} vms on one host`;
    return undefined;
  }

  private change(vmId: string, from: readonly VmPowerState[], to: VmPowerState, done: (outcome: HypervisorOutcome<void>) => void): void {
    const vm = this.vms.get(vmId);
    let outcome: HypervisorOutcome<void> = ok;
    if (vm === undefined) outcome = { ok: false, reason: "not-found", error: `no vm ${vmId}` };
    else if (!from.includes(vm.state)) outcome = { ok: false, reason: "invalid", error: `vm ${vmId} is ${vm.state}` };
    else this.setState(vmId, to);
    this.later(() => done(outcome));
  }

  private setState(vmId: string, state: VmPowerState): void {
    const vm = this.vms.get(vmId)!;
    const nowMs = this.clock.now();
    if (vm.cpuSinceMs !== undefined) vm.cpuAccumulatedMs += (nowMs - vm.cpuSinceMs) * defaultCpuUsage;
    const previous = vm.state;
    vm.state = state;
    vm.cpuSinceMs = state === "running" ? nowMs : undefined;
    const type = state === "running" ? (previous === "paused" ? "resumed" : "started") : state === "paused" ? "paused" : state === "crashed" ? "crashed" : "stopped";
    const event: HypervisorEvent = { type, vmId };
    this.later(() => {
      for (const handler of [...this.handlers]) handler(event);
    });
  }

  private statusOf(vmId: string): VmStatus {
    const vm = this.vms.get(vmId)!;
    const running = vm.cpuSinceMs === undefined ? 0 : (this.clock.now() - vm.cpuSinceMs) * defaultCpuUsage;
    return { vmId, state: vm.state, virtualization: vm.definition.virtualization, cpuTimeMs: Math.floor(vm.cpuAccumulatedMs + running) };
  }

  private later(callback: () => void): void {
    this.clock.setTimeout(callback, 0);
  }
}

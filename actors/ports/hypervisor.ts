/**
 * A hypervisor as a port: the `sim` driver (sim/simHypervisor.ts) and the
 * `libvirt` driver over a long-lived virsh session (runtime/libvirt/)
 * implement it. Callback-based like every port: `done` is called exactly once,
 * never inside the call that was given it.
 */
export type VirtualizationType = "full" | "para";

/**
 * What the hypervisor says about a VM. A hung VM still reads "running": only
 * its CPU time stops advancing, which is why the VM monitor watches that too.
 */
export type VmPowerState = "running" | "paused" | "shutoff" | "crashed";

export interface VmStatus {
  readonly vmId: string;
  readonly state: VmPowerState;
  readonly virtualization: VirtualizationType;
  /** Cumulative guest CPU time in ms; a running VM whose CPU time stops advancing may be hung. */
  readonly cpuTimeMs: number;
}

export interface VmDefinition {
  readonly vmId: string;
  readonly virtualization: VirtualizationType;
  readonly vcpus: number;
  readonly memoryMiB: number;
}

export const maxVmVcpus = 1_024;
export const maxVmMemoryMiB = 64 * 1024 * 1024;

export type HypervisorEvent =
  | { readonly type: "started"; readonly vmId: string }
  | { readonly type: "stopped"; readonly vmId: string }
  | { readonly type: "crashed"; readonly vmId: string }
  | { readonly type: "paused"; readonly vmId: string }
  | { readonly type: "resumed"; readonly vmId: string };

/**
 * Why an operation failed, so callers can act without parsing text:
 * `not-found` (no such VM), `invalid` (bad argument, or the VM's state forbids
 * it), `unsupported` (the driver or this VM has no such thing, e.g. guest ping
 * on a para-virtualized VM), `timeout`, `unavailable` (the hypervisor cannot be
 * reached right now), `failed` (anything else the hypervisor reported).
 */
export type HypervisorFailureReason = "not-found" | "invalid" | "unsupported" | "timeout" | "unavailable" | "failed";

export type HypervisorFailure = { readonly ok: false; readonly reason: HypervisorFailureReason; readonly error: string };

export type HypervisorOutcome<T> = { readonly ok: true; readonly value: T } | HypervisorFailure;

export interface Hypervisor {
  readonly driver: string;
  readonly supportsLiveMigration: boolean;
  list(done: (outcome: HypervisorOutcome<readonly VmStatus[]>) => void): void;
  /** `undefined` when no VM of that id is defined here. */
  status(vmId: string, done: (outcome: HypervisorOutcome<VmStatus | undefined>) => void): void;
  define(definition: VmDefinition, done: (outcome: HypervisorOutcome<void>) => void): void;
  start(vmId: string, done: (outcome: HypervisorOutcome<void>) => void): void;
  /** Graceful when `force` is false (ACPI shutdown), power off otherwise. */
  stop(vmId: string, force: boolean, done: (outcome: HypervisorOutcome<void>) => void): void;
  /** A hard reset of a running VM (the recovery for a hung guest). */
  reset(vmId: string, done: (outcome: HypervisorOutcome<void>) => void): void;
  /** Freezes a running VM in memory (virsh suspend). */
  pause(vmId: string, done: (outcome: HypervisorOutcome<void>) => void): void;
  resume(vmId: string, done: (outcome: HypervisorOutcome<void>) => void): void;
  /** Guest-agent channel ping (qemu-guest-agent `guest-ping`); `unsupported` where the driver or VM has none. */
  guestPing(vmId: string, timeoutMs: number, done: (outcome: HypervisorOutcome<void>) => void): void;
  /**
   * Live migration of a running VM to another host (`targetHostId`, a cluster host id the driver maps to a
   * destination), keeping it running on this host until the switchover. Present only where
   * `supportsLiveMigration` may be true. `ok` means the VM now runs on the target and no longer here; any
   * failure means the driver did not move it, but callers check `status` before believing either (a
   * timeout may leave either outcome).
   */
  migrate?(vmId: string, targetHostId: string, done: (outcome: HypervisorOutcome<void>) => void): void;
  onEvent(handler: (event: HypervisorEvent) => void): { unsubscribe(): void };
}

/** Checks a definition the same way in every driver; returns the problem, or undefined. */
export function definitionProblem(definition: VmDefinition, isValidVmId: (vmId: string) => boolean): string | undefined {
  if (!isValidVmId(definition.vmId)) return `invalid vm id ${JSON.stringify(definition.vmId).slice(0, 80)}: use 1-64 of [A-Za-z0-9_-]`;
  if (definition.virtualization !== "full" && definition.virtualization !== "para") {
    return `virtualization must be "full" or "para", got ${JSON.stringify(definition.virtualization).slice(0, 40)}`;
  }
  if (!Number.isSafeInteger(definition.vcpus) || definition.vcpus < 1 || definition.vcpus > maxVmVcpus) {
    return `vcpus must be an integer in [1, ${maxVmVcpus}], got ${String(definition.vcpus)}`;
  }
  if (!Number.isSafeInteger(definition.memoryMiB) || definition.memoryMiB < 1 || definition.memoryMiB > maxVmMemoryMiB) {
    return `memoryMiB must be an integer in [1, ${maxVmMemoryMiB}], got ${String(definition.memoryMiB)}`;
  }
  return undefined;
}

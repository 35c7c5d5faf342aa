/**
 * A hypervisor as a port: the `sim` driver and the `libvirt` driver (virsh)
 * implement it. Callback-based like every port.
 */
export type VirtualizationType = "full" | "para";

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

export type HypervisorEvent =
  | { readonly type: "started"; readonly vmId: string }
  | { readonly type: "stopped"; readonly vmId: string }
  | { readonly type: "crashed"; readonly vmId: string }
  | { readonly type: "paused"; readonly vmId: string }
  | { readonly type: "resumed"; readonly vmId: string };

export type HypervisorOutcome<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string };

export interface Hypervisor {
  readonly driver: string;
  readonly supportsLiveMigration: boolean;
  list(done: (outcome: HypervisorOutcome<readonly VmStatus[]>) => void): void;
  status(vmId: string, done: (outcome: HypervisorOutcome<VmStatus | undefined>) => void): void;
  define(definition: VmDefinition, done: (outcome: HypervisorOutcome<void>) => void): void;
  start(vmId: string, done: (outcome: HypervisorOutcome<void>) => void): void;
  /** Graceful when `force` is false (ACPI shutdown), power off otherwise. */
  stop(vmId: string, force: boolean, done: (outcome: HypervisorOutcome<void>) => void): void;
  reset(vmId: string, done: (outcome: HypervisorOutcome<void>) => void): void;
  /** Guest-agent channel ping (qemu-guest-agent `guest-ping`); fails where the driver has none. */
  guestPing(vmId: string, timeoutMs: number, done: (outcome: HypervisorOutcome<void>) => void): void;
  onEvent(handler: (event: HypervisorEvent) => void): { unsubscribe(): void };
}

import type { RejectionCounter } from "../codec/rejectionCounter.ts";
import type { NodePorts } from "../ports/nodePorts.ts";
import { startGuestWatchdog, type GuestWatchdog } from "../guest/guestWatchdogActor.ts";
import type { GuestHealthReport, GuestWatchdogConfig } from "../../machines/guest/guestWatchdog.ts";
import type { VmHealthReport } from "../../machines/vm/vmMonitor.ts";
import type { VmDesiredState, VmHealth, VmMonitorConfig } from "../../machines/vm/vmHealth.ts";
import type { VmEventRouter } from "./vmEventRouter.ts";
import type { VmHostPoller } from "./vmHostPoller.ts";
import { startVmMonitor, type VmMonitor } from "./vmMonitorActor.ts";

/**
 * Both monitoring levels for one VM on its host: the VM monitor (hypervisor
 * side) and the guest watchdog (guest agent heartbeats), wired so that the
 * watchdog expects beats only while the VM monitor sees the VM running.
 */
export interface VmWatchOptions {
  readonly vmId: string;
  readonly desired: VmDesiredState;
  readonly router?: VmEventRouter;
  /** The host's batched poll; without it the VM monitor polls on its own timer. */
  readonly poller?: VmHostPoller;
  readonly rejections: RejectionCounter;
  readonly vmConfig?: Partial<VmMonitorConfig>;
  readonly guestConfig?: Partial<GuestWatchdogConfig>;
  /** False for VMs without a guest agent: only the hypervisor side is watched. */
  readonly watchGuest?: boolean;
  readonly onVmReport?: (report: VmHealthReport) => void;
  readonly onGuestReport?: (report: GuestHealthReport) => void;
}

export interface VmWatch {
  readonly vm: VmMonitor;
  readonly guest: GuestWatchdog | undefined;
  setDesired(desired: VmDesiredState): void;
  dispose(): void;
}

/** A guest is expected to beat while its VM executes (a hung VM still counts: the guest watchdog sees that too). */
export function guestExpectedFor(health: VmHealth): boolean {
  return health === "running" || health === "hung";
}

export function startVmWatch(ports: NodePorts, options: VmWatchOptions): VmWatch {
  const guest =
    options.watchGuest === false
      ? undefined
      : startGuestWatchdog(ports, {
          vmId: options.vmId,
          rejections: options.rejections,
          ...(options.guestConfig ? { config: options.guestConfig } : {}),
          ...(options.onGuestReport ? { onReport: options.onGuestReport } : {}),
        });
  const vm = startVmMonitor(ports, {
    vmId: options.vmId,
    desired: options.desired,
    ...(options.router ? { router: options.router } : {}),
    ...(options.poller ? { poller: options.poller } : {}),
    ...(options.vmConfig ? { config: options.vmConfig } : {}),
    onReport: (report) => {
      const first = report.previousHealth === "unknown";
      if (guest !== undefined && (first || guestExpectedFor(report.health) !== guestExpectedFor(report.previousHealth))) {
        guest.setVmRunning(guestExpectedFor(report.health));
      }
      options.onVmReport?.(report);
    },
  });
  return {
    vm,
    guest,
    setDesired: (desired) => vm.setDesired(desired),
    dispose: () => {
      vm.dispose();
      guest?.dispose();
    },
  };
}

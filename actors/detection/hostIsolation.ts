/**
 * What a host does when its lease runs out (ARCHITECTURE §3, partition
 * consistency): it applies its isolation response at once — power off, or shut
 * down, its VMs — and a hardware watchdog resets it if its agent stops petting.
 *
 * The VM side belongs to the VM actors; the host agent only needs these two
 * small interfaces. `hypervisorIsolation` is a responder over the Hypervisor
 * port for hosts that have one; the simulator and tests may pass a recorder.
 */
import type { IsolationResponse } from "../../machines/detection/detectionConfig.ts";
import type { IsolationReason } from "../../machines/heartbeat/heartbeatSender.ts";
import type { Hypervisor, VmStatus } from "../ports/hypervisor.ts";
import type { Log } from "../ports/telemetry.ts";

export interface IsolationRequest {
  readonly response: IsolationResponse;
  readonly reason: IsolationReason;
  /** The incarnation whose lease ran out (or that a fresh start leaves behind). */
  readonly incarnation: number;
}

export interface IsolationResponder {
  /** Stops every VM on this host; `done` once they are off (or the attempt ended), never inside the call. */
  isolate(request: IsolationRequest, done: () => void): void;
}

/** A hardware watchdog: resets the machine `timeoutMs` after the last pet. `/dev/watchdog` in the runtime; sim/detection/simWatchdog.ts in the simulator. */
export interface Watchdog {
  readonly timeoutMs: number;
  pet(): void;
}

/** VMs stopped by isolation at most at once; the rest wait for a slot. */
export const maxConcurrentIsolationStops = 64;

/**
 * Isolation through the Hypervisor port: every VM that is running or paused is
 * stopped (forced for `power-off`, ACPI for `shutdown`). A slow graceful
 * shutdown is cut short by the watchdog: the agent pets only while it holds a
 * lease, so the hardware resets the host if the VMs are not off in time.
 */
export function hypervisorIsolation(hypervisor: Hypervisor, log: Log): IsolationResponder {
  return {
    isolate(request, done) {
      hypervisor.list((listed) => {
        if (!listed.ok) {
          log.write("error", "isolation.list-failed", { reason: listed.reason, error: listed.error, note: "the watchdog resets the host if VMs keep running" });
          done();
          return;
        }
        const active = listed.value.filter((vm: VmStatus) => vm.state === "running" || vm.state === "paused");
        let next = 0;
        let outstanding = 0;
        const startMore = (): void => {
          while (outstanding < maxConcurrentIsolationStops && next < active.length) {
            const vm = active[next++]!;
            outstanding++;
            hypervisor.stop(vm.vmId, request.response === "power-off", (stopped) => {
              outstanding--;
              if (!stopped.ok && stopped.reason !== "not-found" && stopped.reason !== "invalid") {
                log.write("error", "isolation.stop-failed", { vmId: vm.vmId, reason: stopped.reason, error: stopped.error });
              }
              if (outstanding === 0 && next >= active.length) done();
              else startMore();
            });
          }
        };
        // A host that only moves on from an incarnation that never won a lease has nothing to isolate: no warning every few seconds while it is cut off.
        const level = request.reason === "unleased" && active.length === 0 ? "info" : "warn";
        log.write(level, "host.isolating", { reason: request.reason, incarnation: request.incarnation, response: request.response, vms: active.length });
        if (active.length === 0) done();
        else startMore();
      });
    },
  };
}

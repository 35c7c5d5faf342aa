import { createActorHost, type ActorHost } from "../actorHost.ts";
import type { RejectionCounter } from "../codec/rejectionCounter.ts";
import { createEffectBinding } from "../effectBinding.ts";
import type { NodePorts } from "../ports/nodePorts.ts";
import { clusterSubjects, isValidId } from "../subjects.ts";
import {
  defaultGuestWatchdogConfig,
  guestWatchdogMachine,
  type GuestHealthReport,
  type GuestWatchdogConfig,
  type PingGuestParams,
} from "../../machines/guest/guestWatchdog.ts";
import { guestMessages } from "./guestMessages.ts";

export const guestHealthReportsMetric = "haring_guest_health_reports_total";
export const guestHeartbeatsReceivedMetric = "haring_guest_heartbeats_received_total";
export const guestPingsMetric = "haring_guest_pings_total";
/** Beats on this VM's subject that name another VM (misconfigured or hostile agents); ignored. */
export const guestHeartbeatsMisaddressedMetric = "haring_guest_heartbeats_misaddressed_total";
export const guestReportListenerErrorsMetric = "haring_guest_report_listener_errors_total";

interface GuestWatchdogEffects {
  pingGuest(params: PingGuestParams): void;
  reportGuestHealth(report: GuestHealthReport): void;
}

const guestWatchdogEffects = createEffectBinding<GuestWatchdogEffects>("guest watchdog");

const boundGuestWatchdogMachine = guestWatchdogMachine.provide({
  actions: {
    pingGuest: ({ self }, params) => guestWatchdogEffects.of(self).pingGuest(params),
    reportGuestHealth: ({ self }, params) => guestWatchdogEffects.of(self).reportGuestHealth(params),
  },
});

export type GuestWatchdogHost = ActorHost<typeof boundGuestWatchdogMachine>;

export interface GuestWatchdogOptions {
  readonly vmId: string;
  readonly config?: Partial<GuestWatchdogConfig>;
  readonly rejections: RejectionCounter;
  /** Every health change. Errors thrown here are logged and counted, not fatal. */
  readonly onReport?: (report: GuestHealthReport) => void;
}

export interface GuestWatchdog {
  readonly host: GuestWatchdogHost;
  /** The VM stopped or started (from the VM monitor): a stopped guest is not expected to beat. */
  setVmRunning(running: boolean): void;
  dispose(): void;
}

/**
 * Runs the guest watchdog for one VM on its host's ports: listens on
 * `guest.<vmId>`; pings through the hypervisor port when the node has one.
 */
export function startGuestWatchdog(ports: NodePorts, options: GuestWatchdogOptions): GuestWatchdog {
  if (!isValidId(options.vmId)) throw new RangeError(`invalid vm id ${JSON.stringify(options.vmId)}: use 1-64 of [A-Za-z0-9_-]`);
  const vmId = options.vmId;
  const config: GuestWatchdogConfig = { ...defaultGuestWatchdogConfig, ...options.config };

  const effects: GuestWatchdogEffects = {
    pingGuest: ({ sequence, timeoutMs }) => {
      const hypervisor = ports.hypervisor;
      if (hypervisor === undefined) {
        host.send({ type: "guest.ping-answered", sequence, ok: false, unsupported: true, error: "no hypervisor on this node" });
        return;
      }
      hypervisor.guestPing(vmId, timeoutMs, (outcome) => {
        ports.metrics.increment(guestPingsMetric, { outcome: outcome.ok ? "ok" : outcome.reason });
        host.send(
          outcome.ok
            ? { type: "guest.ping-answered", sequence, ok: true, unsupported: false, error: "" }
            : { type: "guest.ping-answered", sequence, ok: false, unsupported: outcome.reason === "unsupported", error: outcome.error },
        );
      });
    },
    reportGuestHealth: (report) => {
      ports.metrics.increment(guestHealthReportsMetric, { health: report.health });
      const healthy = report.health === "alive";
      ports.log.write(healthy ? "info" : "warn", "guest.health", {
        vm: report.vmId,
        health: report.health,
        previous: report.previousHealth,
        failing: report.failingChecks.join(","),
        detail: report.detail,
      });
      if (options.onReport === undefined) return;
      try {
        options.onReport(report);
      } catch (error) {
        ports.metrics.increment(guestReportListenerErrorsMetric);
        ports.log.write("error", "guest.report-listener-failed", { vm: vmId, error: error instanceof Error ? error.message : String(error) });
      }
    },
  };

  const host: GuestWatchdogHost = createActorHost(boundGuestWatchdogMachine, ports, {
    name: `guest-watchdog/${vmId}`,
    kind: "guest-watchdog",
    input: { vmId, config },
    rejections: options.rejections,
    onActorCreated: (actor) => guestWatchdogEffects.bind(actor, effects),
  });
  host.start();
  host.listen(clusterSubjects(ports.clusterId).guest(vmId), guestMessages, {
    allowedTypes: ["guest.beat"],
    toEvent: (message) => {
      ports.metrics.increment(guestHeartbeatsReceivedMetric);
      const { vmId: beatVmId, bootId, sequence, intervalMs, checks } = message.body;
      if (beatVmId !== vmId) ports.metrics.increment(guestHeartbeatsMisaddressedMetric);
      return { type: "guest.heartbeat", vmId: beatVmId, bootId, sequence, intervalMs, checks };
    },
  });
  return {
    host,
    setVmRunning: (running) => {
      host.send({ type: "guest.vm-power", running });
    },
    dispose: () => host.dispose(),
  };
}

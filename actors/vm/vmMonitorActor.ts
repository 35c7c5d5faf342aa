import { createActorHost, type ActorHost } from "../actorHost.ts";
import { createEffectBinding } from "../effectBinding.ts";
import type { Hypervisor, HypervisorOutcome, VmStatus } from "../ports/hypervisor.ts";
import type { NodePorts } from "../ports/nodePorts.ts";
import { isValidId } from "../subjects.ts";
import { vmMonitorMachine, type PollVmParams, type VmHealthReport } from "../../machines/vm/vmMonitor.ts";
import { defaultVmMonitorConfig, type VmDesiredState, type VmMonitorConfig, type VmObservation } from "../../machines/vm/vmHealth.ts";
import type { VmEventRouter } from "./vmEventRouter.ts";
import { observationOfStatus, type PolledVm, type VmHostPoller } from "./vmHostPoller.ts";

export const vmHealthReportsMetric = "haring_vm_health_reports_total";
export const vmPollFailuresMetric = "haring_vm_poll_failures_total";
export const vmReportListenerErrorsMetric = "haring_vm_report_listener_errors_total";

interface VmMonitorEffects {
  pollVm(params: PollVmParams): void;
  reportVmHealth(report: VmHealthReport): void;
}

const vmMonitorEffects = createEffectBinding<VmMonitorEffects>("vm monitor");

const boundVmMonitorMachine = vmMonitorMachine.provide({
  actions: {
    pollVm: ({ self }, params) => vmMonitorEffects.of(self).pollVm(params),
    reportVmHealth: ({ self }, params) => vmMonitorEffects.of(self).reportVmHealth(params),
  },
});

export type VmMonitorHost = ActorHost<typeof boundVmMonitorMachine>;

export interface VmMonitorOptions {
  readonly vmId: string;
  readonly desired: VmDesiredState;
  readonly config?: Partial<VmMonitorConfig>;
  /** The node's shared router (vmEventRouter.ts); without one the monitor subscribes to the hypervisor itself. */
  readonly router?: VmEventRouter;
  /**
   * The host's batched poll (vmHostPoller.ts): the monitor then has no poll
   * timer of its own and polls its VM alone only at start and on events.
   * Its interval replaces `config.vmPollIntervalMs`.
   */
  readonly poller?: VmHostPoller;
  /** Every health change, e.g. to forward to the view. Errors thrown here are logged and counted, not fatal. */
  readonly onReport?: (report: VmHealthReport) => void;
}

export interface VmMonitor {
  readonly host: VmMonitorHost;
  /** The desired state changed (a start or stop was ordered): a shut-off VM is judged against it. */
  setDesired(desired: VmDesiredState): void;
  dispose(): void;
}

/** Turns whatever the driver answered into an observation; a status that makes no sense counts as a failed poll. */
function observationOf(vmId: string, outcome: HypervisorOutcome<VmStatus | undefined>): VmObservation {
  if (!outcome.ok) return { kind: "failed", error: `${outcome.reason}: ${outcome.error}` };
  return observationOfStatus(vmId, outcome.value);
}

/** Runs the VM monitor machine for one VM on its host's ports (which must include a hypervisor). */
export function startVmMonitor(ports: NodePorts, options: VmMonitorOptions): VmMonitor {
  const hypervisor: Hypervisor | undefined = ports.hypervisor;
  if (hypervisor === undefined) throw new Error(`node ${ports.nodeId} has no hypervisor port: a vm monitor needs one`);
  if (!isValidId(options.vmId)) throw new RangeError(`invalid vm id ${JSON.stringify(options.vmId)}: use 1-64 of [A-Za-z0-9_-]`);
  const vmId = options.vmId;
  const config: VmMonitorConfig = { ...defaultVmMonitorConfig, ...options.config };

  // samples arrive on the host's clock, never before `host` below exists
  const polled: PolledVm | undefined = options.poller?.watch(vmId, (sample) => {
    host.send({ type: "vm.sampled", atMs: sample.atMs, observation: sample.observation });
  });
  const effects: VmMonitorEffects = {
    pollVm: ({ sequence }) => {
      hypervisor.status(vmId, (outcome) => {
        polled?.forget();
        if (!outcome.ok) ports.metrics.increment(vmPollFailuresMetric, { reason: outcome.reason });
        host.send({ type: "vm.observed", sequence, atMs: ports.clock.now(), observation: observationOf(vmId, outcome) });
      });
    },
    reportVmHealth: (report) => {
      ports.metrics.increment(vmHealthReportsMetric, { health: report.health });
      const healthy = report.health === "running" || report.health === "stopped";
      ports.log.write(healthy ? "info" : "warn", "vm.health", {
        vm: report.vmId,
        health: report.health,
        previous: report.previousHealth,
        desired: report.desired,
        state: report.powerState,
        virtualization: report.virtualization,
        detail: report.detail,
      });
      if (options.onReport === undefined) return;
      try {
        options.onReport(report);
      } catch (error) {
        ports.metrics.increment(vmReportListenerErrorsMetric);
        ports.log.write("error", "vm.report-listener-failed", { vm: vmId, error: error instanceof Error ? error.message : String(error) });
      }
    },
  };

  const host: VmMonitorHost = createActorHost(boundVmMonitorMachine, ports, {
    name: `vm-monitor/${vmId}`,
    kind: "vm-monitor",
    input: { vmId, config, desired: options.desired, polledByHost: options.poller !== undefined },
    onActorCreated: (actor) => vmMonitorEffects.bind(actor, effects),
  });
  const onEvent = () => {
    host.send({ type: "vm.changed" });
  };
  const subscription =
    options.router !== undefined
      ? options.router.route(vmId, onEvent)
      : hypervisor.onEvent((event) => {
          if (event.vmId === vmId) onEvent();
        });
  host.start();
  return {
    host,
    setDesired: (desired) => {
      host.send({ type: "vm.desired", desired });
    },
    dispose: () => {
      subscription.unsubscribe();
      polled?.unsubscribe();
      host.dispose();
    },
  };
}

/**
 * The host side of the manager's commands: the applier a command multicast
 * member (actors/groupcomm/commandMember.ts) calls once per command id. It
 * carries out `vm.start`, `vm.stop`, `vm.reset` on the Hypervisor port and
 * answers with a clear result, after checking the command against what this
 * host knows for itself:
 *
 * - nothing runs while the host agent holds no lease (isolated, joining, or
 *   fenced: its old incarnation's VMs are being or were powered off);
 * - a start (or reset) happens only while the view this host learned places
 *   the VM here, at that placement epoch, with this host up at the
 *   incarnation it runs (machines/manager/mayStartVm.ts): a rejoined host
 *   never starts a VM that moved on meanwhile;
 * - a stop is refused while the view still places the VM here (a stale stop
 *   from an earlier leader must not stop a VM placed back here);
 * - a view older than the command's placement epoch is waited for (the
 *   learner catches up within a commit broadcast), at most `viewCatchUpWaitMs`;
 * - `vm.migrate` (on the source host) runs only while the view places the VM
 *   on the named target at that epoch, marked as migrating from this host
 *   (`migrateRefusal`), with a lease, on a driver that migrates live. The
 *   answer is what the hypervisor shows afterwards, not what the driver said:
 *   applied when the VM no longer runs here (migrated, or it was not running
 *   here at all: either way the target may take it), failed while it still
 *   does. A driver that gives no answer within `migrationTimeoutMs` is judged
 *   the same way;
 * - malformed payloads are refused and counted.
 *
 * Commands on one VM run one after the other; the number waiting is bounded.
 */
import type { TimerId } from "../ports/clock.ts";
import type { Hypervisor, HypervisorOutcome, VmStatus } from "../ports/hypervisor.ts";
import type { Subscription } from "../ports/network.ts";
import type { NodePorts } from "../ports/nodePorts.ts";
import { migrateRefusal, startRefusal } from "../../machines/manager/mayStartVm.ts";
import type { View } from "../../machines/view/viewTypes.ts";
import type { HostIncarnation } from "./hostIncarnation.ts";
import { decodeHostCommand, encodeHostCommandResult, type DecodedHostCommand, type HostCommandPayload } from "./hostCommandMessages.ts";

/** Structurally the command multicast member's applier (actors/groupcomm/commandMember.ts). */
export interface ReceivedHostCommand {
  readonly commandId: string;
  readonly kind: string;
  readonly payload: Uint8Array;
  readonly senderId: string;
}
export type HostApplyResult = { readonly ok: true; readonly result: Uint8Array } | { readonly ok: false; readonly error: string };
export type HostCommandApplier = (command: ReceivedHostCommand, done: (result: HostApplyResult) => void) => void;

/** The host agent's lease as the executor needs it (actors/heartbeat/heartbeatSenderActor.ts context). */
export interface HostLeaseState {
  readonly phase: "legacy" | "joining" | "leased" | "isolating";
  readonly incarnation: number;
  /** Host clock; 0 while there is no lease. */
  readonly leaseUntilMs: number;
}

export interface ViewSource {
  view(): View;
  onApplied(listener: (applied: readonly unknown[], view: View, appliedSlots: number) => void): Subscription;
}

export interface HostCommandExecutorConfig {
  /** A command naming a placement epoch newer than the learned view waits this long for the view to catch up. */
  readonly viewCatchUpWaitMs: number;
  /** A start reaching a host that has joined but holds no lease yet waits this long for its first lease. */
  readonly leaseWaitMs: number;
  /** A live migration the driver has not finished after this long is judged by where the VM runs then. */
  readonly migrationTimeoutMs: number;
  /** A graceful stop that has not powered the VM off after this long is forced. */
  readonly gracefulStopWaitMs: number;
  readonly stopPollIntervalMs: number;
  /** Commands waiting behind a running one, per VM; more are refused. */
  readonly maxQueuedCommandsPerVm: number;
  /** VMs with commands in progress at once; more are refused. */
  readonly maxVmsInProgress: number;
}

export const defaultHostCommandExecutorConfig: HostCommandExecutorConfig = {
  viewCatchUpWaitMs: 2_000,
  leaseWaitMs: 1_000,
  migrationTimeoutMs: 25_000,
  gracefulStopWaitMs: 5_000,
  stopPollIntervalMs: 100,
  maxQueuedCommandsPerVm: 16,
  maxVmsInProgress: 4_096,
};

export const hostCommandsMetric = "haring_host_commands_total";
export const hostCommandsRejectedMetric = "haring_host_commands_rejected_total";

export interface HostCommandExecutorOptions {
  readonly hypervisor: Hypervisor;
  readonly views: ViewSource;
  /** The host agent's lease now; undefined while there is no agent (everything is refused). */
  readonly lease: () => HostLeaseState | undefined;
  /** Matches the agent's incarnation with the view's number for this host (hostIncarnation.ts). */
  readonly incarnation: HostIncarnation;
  /** Told after a VM started here (so its watch begins at once). */
  readonly onStarted?: (vmId: string) => void;
  readonly config?: Partial<HostCommandExecutorConfig>;
}

export interface HostCommandExecutor {
  readonly apply: HostCommandApplier;
  /** Commands in progress or waiting. */
  readonly busy: number;
  stop(): void;
}

type Finish = (result: HostApplyResult) => void;

export function createHostCommandExecutor(ports: NodePorts, options: HostCommandExecutorOptions): HostCommandExecutor {
  const config: HostCommandExecutorConfig = { ...defaultHostCommandExecutorConfig, ...options.config };
  const hostId = ports.nodeId;
  const { hypervisor, views } = options;
  const queues = new Map<string, Array<() => void>>();
  const timers = new Set<TimerId>();
  let stopped = false;
  let malformedLogged = false;

  const later = (delayMs: number, callback: () => void): void => {
    const timer = ports.clock.setTimeout(() => {
      timers.delete(timer);
      if (!stopped) callback();
    }, delayMs);
    timers.add(timer);
  };

  const leaseProblem = (): string | null => {
    const lease = options.lease();
    if (lease === undefined) return `host ${hostId} has no host agent running`;
    if (lease.phase !== "leased" || ports.clock.now() >= lease.leaseUntilMs) return `host ${hostId} holds no lease (${lease.phase}): it is isolated or not yet joined`;
    return null;
  };

  /** The view is behind this host: it names an older incarnation than the agent runs (the rejoin is on its way). */
  const behindAgent = (view: View): boolean => {
    const lease = options.lease();
    const host = view.hosts.get(hostId);
    return lease !== undefined && host !== undefined && host.incarnation < lease.incarnation && !options.incarnation.matches(host.incarnation, lease.incarnation);
  };

  /** Calls `check` now, and again as the view catches up (to `epoch`, and to this host's incarnation), until it passes or the wait runs out. */
  const withView = (epoch: number, check: (view: View) => string | null, then: (view: View) => void, refuse: (reason: string) => void): void => {
    const first = check(views.view());
    if (first === null) return then(views.view());
    if (views.view().epoch >= epoch && !behindAgent(views.view())) return refuse(first);
    let settled = false;
    const settle = (outcome: () => void): void => {
      if (settled) return;
      settled = true;
      subscription.unsubscribe();
      outcome();
    };
    const subscription = views.onApplied((_applied, view) => {
      if (view.epoch < epoch || behindAgent(view)) return;
      const problem = check(view);
      settle(() => (problem === null ? then(view) : refuse(problem)));
    });
    later(config.viewCatchUpWaitMs, () => {
      const view = views.view();
      const problem = check(view);
      settle(() => (problem === null ? then(view) : refuse(`${problem} (this host's view is at epoch ${view.epoch} after waiting ${config.viewCatchUpWaitMs} ms)`)));
    });
  };

  /**
   * Why the view does not describe the incarnation this host runs now, or the command was made for
   * another incarnation of this host; null when both match.
   */
  const incarnationProblem = (view: View, commandIncarnation: number): string | null => {
    const lease = options.lease();
    const host = view.hosts.get(hostId);
    if (lease === undefined || host === undefined) return null;
    if (!options.incarnation.matches(host.incarnation, lease.incarnation)) return `host ${hostId} runs incarnation ${lease.incarnation}, this host's view names incarnation ${host.incarnation}`;
    if (host.incarnation !== commandIncarnation) return `the command was for incarnation ${commandIncarnation} of host ${hostId}, the view now names incarnation ${host.incarnation}`;
    return null;
  };

  /** Runs `then` once the host holds a lease; a host still joining is given `leaseWaitMs` to get its first one. */
  const withLease = (then: () => void, refuse: (reason: string) => void, untilMs = ports.clock.now() + config.leaseWaitMs): void => {
    const problem = leaseProblem();
    if (problem === null) return then();
    if (options.lease()?.phase !== "joining" || ports.clock.now() >= untilMs) return refuse(problem);
    later(config.stopPollIntervalMs, () => withLease(then, refuse, untilMs));
  };

  const describe = (outcome: HypervisorOutcome<unknown>): string => (outcome.ok ? "ok" : `${outcome.reason}: ${outcome.error}`);

  const startVm = (payload: HostCommandPayload<"vm.start">, finish: Finish): void => {
    const { vmId, placementEpoch } = payload;
    const check = (view: View): string | null => leaseProblem() ?? startRefusal(view, hostId, vmId, placementEpoch) ?? incarnationProblem(view, payload.hostIncarnation);
    withView(
      placementEpoch,
      check,
      () => {
        // The incarnation the checks passed under: a start that outlives it (its lease ran out, the host isolated itself and went on as the next one) is not this command's to keep.
        const checkedIncarnation = options.lease()?.incarnation;
        const fenced = (): string | null => {
          const lease = leaseProblem();
          if (lease !== null) return lease;
          const now = options.lease()?.incarnation;
          return now === checkedIncarnation ? null : `host ${hostId} isolated incarnation ${checkedIncarnation} meanwhile and runs incarnation ${now}`;
        };
        hypervisor.status(vmId, (status) => {
          if (!status.ok) return finish({ ok: false, error: `status of vm ${vmId}: ${describe(status)}` });
          const current: VmStatus | undefined = status.value;
          if (current?.state === "running" || current?.state === "paused") return finish({ ok: true, result: encodeHostCommandResult(`vm ${vmId} already ${current.state}`) });
          const boot = (): void => {
            // Looked at again at the last moment: isolation lists the VMs once, so a start it did not see must not begin after it.
            const before = fenced();
            if (before !== null) return finish({ ok: false, error: `start refused: ${before}` });
            hypervisor.start(vmId, (started) => {
              if (!started.ok) return finish({ ok: false, error: `start of vm ${vmId}: ${describe(started)}` });
              // The lease may have run out while the hypervisor worked: isolation may have listed the VMs before this one ran.
              const lost = fenced();
              if (lost !== null) {
                hypervisor.stop(vmId, true, () => finish({ ok: false, error: `${lost}; vm ${vmId} powered off again` }));
                return;
              }
              options.onStarted?.(vmId);
              finish({ ok: true, result: encodeHostCommandResult(`vm ${vmId} started at placement epoch ${placementEpoch}`) });
            });
          };
          if (current !== undefined) return boot();
          hypervisor.define({ vmId, virtualization: payload.virtualization, vcpus: payload.vcpus, memoryMiB: payload.memoryMiB }, (defined) => {
            if (!defined.ok) return finish({ ok: false, error: `define of vm ${vmId}: ${describe(defined)}` });
            boot();
          });
        });
      },
      (reason) => finish({ ok: false, error: `start refused: ${reason}` }),
    );
  };

  const waitUntilOff = (vmId: string, untilMs: number, then: (off: boolean) => void): void => {
    hypervisor.status(vmId, (status) => {
      const off = status.ok && (status.value === undefined || (status.value.state !== "running" && status.value.state !== "paused"));
      if (off || ports.clock.now() >= untilMs) return then(off);
      later(config.stopPollIntervalMs, () => waitUntilOff(vmId, untilMs, then));
    });
  };

  const stopVm = (payload: HostCommandPayload<"vm.stop">, finish: Finish): void => {
    const { vmId, placementEpoch } = payload;
    const check = (view: View): string | null => {
      const lease = leaseProblem();
      if (lease !== null) return lease;
      const vm = view.vms.get(vmId);
      if (vm?.placement?.hostId === hostId && vm.desiredState === "running") return `vm ${vmId} is placed on this host at epoch ${vm.placement.epoch}`;
      return null;
    };
    withView(
      placementEpoch,
      check,
      () => {
        hypervisor.status(vmId, (status) => {
          if (!status.ok) return finish({ ok: false, error: `status of vm ${vmId}: ${describe(status)}` });
          if (status.value === undefined || (status.value.state !== "running" && status.value.state !== "paused")) {
            return finish({ ok: true, result: encodeHostCommandResult(`vm ${vmId} already off`) });
          }
          const force = (): void =>
            hypervisor.stop(vmId, true, (forced) => {
              if (!forced.ok && forced.reason !== "invalid") return finish({ ok: false, error: `power-off of vm ${vmId}: ${describe(forced)}` });
              waitUntilOff(vmId, ports.clock.now() + config.gracefulStopWaitMs, (off) =>
                finish(off ? { ok: true, result: encodeHostCommandResult(`vm ${vmId} powered off`) } : { ok: false, error: `vm ${vmId} still runs after a forced power-off` }),
              );
            });
          hypervisor.stop(vmId, false, (requested) => {
            if (!requested.ok) return force();
            waitUntilOff(vmId, ports.clock.now() + config.gracefulStopWaitMs, (off) => (off ? finish({ ok: true, result: encodeHostCommandResult(`vm ${vmId} shut down`) }) : force()));
          });
        });
      },
      (reason) => finish({ ok: false, error: `stop refused: ${reason}` }),
    );
  };

  const resetVm = (payload: HostCommandPayload<"vm.reset">, finish: Finish): void => {
    const { vmId, placementEpoch } = payload;
    const check = (view: View): string | null => leaseProblem() ?? startRefusal(view, hostId, vmId, placementEpoch) ?? incarnationProblem(view, payload.hostIncarnation);
    withView(
      placementEpoch,
      check,
      () =>
        hypervisor.reset(vmId, (reset) =>
          finish(reset.ok ? { ok: true, result: encodeHostCommandResult(`vm ${vmId} reset`) } : { ok: false, error: `reset of vm ${vmId}: ${describe(reset)}` }),
        ),
      (reason) => finish({ ok: false, error: `reset refused: ${reason}` }),
    );
  };

  const isActive = (status: VmStatus | undefined): boolean => status !== undefined && (status.state === "running" || status.state === "paused");

  const migrateVm = (payload: HostCommandPayload<"vm.migrate">, finish: Finish): void => {
    const { vmId, placementEpoch, targetHostId } = payload;
    const migrate = hypervisor.migrate?.bind(hypervisor);
    if (!hypervisor.supportsLiveMigration || migrate === undefined) {
      ports.clock.setTimeout(() => finish({ ok: false, error: `migrate refused: the ${hypervisor.driver} hypervisor of host ${hostId} does not migrate live` }), 0);
      return;
    }
    const check = (view: View): string | null => leaseProblem() ?? migrateRefusal(view, hostId, vmId, placementEpoch, targetHostId) ?? incarnationProblem(view, payload.hostIncarnation);
    /** The outcome from where the VM runs now: gone from here is success, still here is failure. */
    const judge = (driverSaid: string): void =>
      hypervisor.status(vmId, (after) => {
        if (!after.ok) return finish({ ok: false, error: `migration of vm ${vmId} to ${targetHostId}: ${driverSaid}; its status here afterwards is unknown (${describe(after)})` });
        if (!isActive(after.value)) return finish({ ok: true, result: encodeHostCommandResult(`vm ${vmId} migrated to ${targetHostId} (${driverSaid})`) });
        finish({ ok: false, error: `migration of vm ${vmId} to ${targetHostId}: ${driverSaid === "ok" ? "the driver reported success" : driverSaid}, and the vm still runs here` });
      });
    withView(
      placementEpoch,
      check,
      () =>
        hypervisor.status(vmId, (status) => {
          if (!status.ok) return finish({ ok: false, error: `status of vm ${vmId}: ${describe(status)}` });
          if (!isActive(status.value)) return finish({ ok: true, result: encodeHostCommandResult(`vm ${vmId} does not run on this host: nothing to migrate, ${targetHostId} may take it`) });
          let settled = false;
          const settle = (driverSaid: string): void => {
            if (settled || stopped) return;
            settled = true;
            judge(driverSaid);
          };
          later(config.migrationTimeoutMs, () => settle(`no answer from the driver in ${config.migrationTimeoutMs} ms`));
          migrate(vmId, targetHostId, (moved) => settle(describe(moved)));
        }),
      (reason) => finish({ ok: false, error: `migrate refused: ${reason}` }),
    );
  };

  const run = (command: DecodedHostCommand, finish: Finish): void => {
    switch (command.kind) {
      case "vm.start":
        return withLease(() => startVm(command.payload, finish), (reason) => finish({ ok: false, error: `start refused: ${reason}` }));
      case "vm.stop":
        return stopVm(command.payload, finish);
      case "vm.reset":
        return withLease(() => resetVm(command.payload, finish), (reason) => finish({ ok: false, error: `reset refused: ${reason}` }));
      case "vm.migrate":
        return withLease(() => migrateVm(command.payload, finish), (reason) => finish({ ok: false, error: `migrate refused: ${reason}` }));
    }
  };

  const apply: HostCommandApplier = (received, done) => {
    const decoded = decodeHostCommand(received.kind, received.payload);
    if (!decoded.ok) {
      ports.metrics.increment(hostCommandsRejectedMetric, { reason: "malformed" });
      if (!malformedLogged) {
        malformedLogged = true;
        ports.log.write("warn", "host-command.malformed", { commandId: received.commandId.slice(0, 64), sender: received.senderId.slice(0, 64), error: decoded.error, note: `further ones are only counted in ${hostCommandsRejectedMetric}` });
      }
      ports.clock.setTimeout(() => done({ ok: false, error: `malformed command: ${decoded.error}` }), 0);
      return;
    }
    const command = decoded.command;
    const vmId = command.payload.vmId;
    let queue = queues.get(vmId);
    if ((queue === undefined && queues.size >= config.maxVmsInProgress) || (queue !== undefined && queue.length > config.maxQueuedCommandsPerVm)) {
      ports.metrics.increment(hostCommandsRejectedMetric, { reason: "busy" });
      ports.clock.setTimeout(() => done({ ok: false, error: `host ${hostId} is busy: too many commands waiting for vm ${vmId}` }), 0);
      return;
    }
    const begin = (): void => {
      if (stopped) return;
      run(command, (result) => {
        ports.metrics.increment(hostCommandsMetric, { kind: command.kind, outcome: result.ok ? "applied" : "failed" });
        ports.log.write(result.ok ? "info" : "warn", result.ok ? "host-command.applied" : "host-command.refused", {
          commandId: received.commandId,
          kind: command.kind,
          vm: vmId,
          placementEpoch: command.payload.placementEpoch,
          ...(result.ok ? {} : { error: result.error }),
        });
        // The next command of this VM starts on a later tick, never inside this callback.
        const waiting = queues.get(vmId);
        waiting?.shift();
        if (waiting !== undefined && waiting.length === 0) queues.delete(vmId);
        else if (waiting !== undefined) ports.clock.setTimeout(waiting[0]!, 0);
        done(result);
      });
    };
    if (queue === undefined) {
      queue = [];
      queues.set(vmId, queue);
    }
    queue.push(begin);
    if (queue.length === 1) ports.clock.setTimeout(begin, 0);
  };

  return {
    apply,
    get busy() {
      let count = 0;
      for (const queue of queues.values()) count += queue.length;
      return count;
    },
    stop() {
      stopped = true;
      for (const timer of timers) ports.clock.clearTimeout(timer);
      timers.clear();
      queues.clear();
    },
  };
}

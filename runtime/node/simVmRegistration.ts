/**
 * The VMs a host's `sim` config lists are brought into the view, so that the
 * manager starts them (and restarts them elsewhere when the host fails): the
 * runtime's counterpart of the scenario paxos component's
 * `registrationCommands` (`vm.add`, then `vm.place` on the configured host).
 *
 * A VM is added **stopped**, placed on this host (placement epoch 0 → 1)
 * once the view holds the host up, and only then set to `running` when the
 * config says so. Added as running and unplaced, the active manager would
 * give it an initial placement of its own first (possibly on another host);
 * the manager's start then comes as for any placed VM it finds not running
 * (the VM supervisor reports it missing). This host never starts a VM
 * itself.
 *
 * Only VMs the view did not know when this process first looked are brought
 * in: a VM the view already holds belongs to the cluster (it may run
 * elsewhere by now, or an operator stopped it), so a restarted host does not
 * take it back. A process stopped halfway leaves its VM as far as it got
 * (added stopped, or placed but stopped): `vm.set-desired` finishes it.
 *
 * Proposals go through the host's view learner, one in flight per VM, and a
 * proposal without an outcome is sent again after `simVmRetryMs` under a new
 * id (the view answers a repeated id with its first outcome).
 */
import type { TimerId } from "../../actors/ports/clock.ts";
import type { NodePorts } from "../../actors/ports/nodePorts.ts";
import type { ProposalOutcome } from "../../machines/paxos/proposalClient.ts";
import type { ViewCommand } from "../../machines/view/viewCommands.ts";
import type { View } from "../../machines/view/viewTypes.ts";
import type { VmDefinition } from "../../actors/ports/hypervisor.ts";

/** A step with no outcome (or a refusal) is tried again after this long. */
export const simVmRetryMs = 2_000;
/** Attempts per step before the VM is left to an operator (logged). */
export const maxSimVmAttempts = 30;
export const simVmPriority = "medium";

export interface SimVm {
  readonly definition: VmDefinition;
  readonly running: boolean;
}

export interface SimVmProposer {
  view(): View;
  appliedSlots(): number;
  propose(command: ViewCommand, done?: (outcome: ProposalOutcome) => void): { readonly ok: true } | { readonly ok: false; readonly error: string };
}

export interface SimVmRegistration {
  /** Looks at the view again (call on every applied view; a timer calls it too). */
  check(): void;
  /** VMs still on their way into the view. */
  readonly pending: number;
  stop(): void;
}

type Phase = "add" | "place" | "run" | "done";

interface Progress {
  readonly vm: SimVm;
  phase: Phase;
  attempts: number;
  inFlightSinceMs: number | undefined;
}

export function startSimVmRegistration(ports: NodePorts, learner: SimVmProposer, vms: readonly SimVm[]): SimVmRegistration {
  const hostId = ports.nodeId;
  const nonce = Math.round(ports.clock.now()).toString(36);
  const progress = new Map<string, Progress>();
  let looked = false;
  let stopped = false;
  let timer: TimerId | undefined;
  let sequence = 0;

  const propose = (entry: Progress, command: ViewCommand): void => {
    if (entry.inFlightSinceMs !== undefined && ports.clock.now() - entry.inFlightSinceMs < simVmRetryMs) return;
    if (entry.attempts >= maxSimVmAttempts) {
      if (entry.attempts++ === maxSimVmAttempts) ports.log.write("error", "host.sim-vm-abandoned", { vm: entry.vm.definition.vmId, step: command.type, attempts: maxSimVmAttempts });
      return;
    }
    entry.attempts++;
    entry.inFlightSinceMs = ports.clock.now();
    const proposed = learner.propose(command, (outcome) => {
      if (stopped) return;
      ports.log.write(outcome.kind === "committed" ? "info" : "warn", "host.sim-vm", {
        vm: entry.vm.definition.vmId,
        step: command.type,
        outcome: outcome.kind,
        ...("reason" in outcome ? { reason: outcome.reason.slice(0, 200) } : {}),
      });
      // Committed or not, the next look at the view decides; a refusal waits out the retry interval.
      if (outcome.kind === "committed") entry.inFlightSinceMs = undefined;
    });
    if (!proposed.ok) ports.log.write("warn", "host.sim-vm-refused", { vm: entry.vm.definition.vmId, step: command.type, error: proposed.error });
  };

  // At most 4 + 3 + 24 + 64 + 11 + a few characters: within the view's 128 for any ids.
  const commandId = (step: string, vmId: string): string => `sim-${step}-${hostId.slice(0, 24)}-${vmId}-${nonce}-${(++sequence).toString(36)}`;

  const advance = (entry: Progress, view: View): void => {
    const { definition } = entry.vm;
    const vmId = definition.vmId;
    const inView = view.vms.get(vmId);
    const moveTo = (phase: Phase): void => {
      entry.phase = phase;
      entry.attempts = 0;
      entry.inFlightSinceMs = undefined;
    };
    if (entry.phase === "add") {
      if (inView === undefined) {
        propose(entry, {
          id: commandId("add", vmId),
          type: "vm.add",
          vmId,
          resources: { cpu: definition.vcpus, memoryMiB: definition.memoryMiB },
          priority: simVmPriority,
          rules: { affinity: [], antiAffinity: [] },
          desiredState: "stopped",
        });
        return;
      }
      moveTo("place");
    }
    if (inView === undefined) return moveTo("done");
    if (entry.phase === "place") {
      if (inView.placement == null) {
        if (view.hosts.get(hostId)?.state === "up") propose(entry, { id: commandId("place", vmId), type: "vm.place", vmId, hostId, expectedPlacementEpoch: 0 });
        return;
      }
      if (inView.placement.hostId !== hostId) {
        ports.log.write("info", "host.sim-vm-placed-elsewhere", { vm: vmId, host: inView.placement.hostId });
        return moveTo("done");
      }
      moveTo("run");
    }
    if (entry.phase === "run") {
      if (!entry.vm.running || inView.desiredState === "running") return moveTo("done");
      propose(entry, { id: commandId("run", vmId), type: "vm.set-desired", vmId, desiredState: "running" });
    }
  };

  const check = (): void => {
    if (stopped || learner.appliedSlots() === 0) return;
    const view = learner.view();
    if (!view.hosts.has(hostId)) return;
    if (!looked) {
      looked = true;
      for (const vm of vms) {
        const known = view.vms.has(vm.definition.vmId);
        progress.set(vm.definition.vmId, { vm, phase: known ? "done" : "add", attempts: 0, inFlightSinceMs: undefined });
        if (known) ports.log.write("info", "host.sim-vm-known", { vm: vm.definition.vmId, note: "the view holds it already: left to the manager" });
      }
    }
    for (const entry of progress.values()) if (entry.phase !== "done") advance(entry, view);
  };

  const tick = (): void => {
    timer = undefined;
    if (stopped) return;
    check();
    if (!looked || [...progress.values()].some((entry) => entry.phase !== "done")) timer = ports.clock.setTimeout(tick, simVmRetryMs / 4);
  };
  if (vms.length > 0) tick();

  return {
    check,
    get pending() {
      return looked ? [...progress.values()].filter((entry) => entry.phase !== "done").length : vms.length;
    },
    stop() {
      stopped = true;
      if (timer !== undefined) ports.clock.clearTimeout(timer);
    },
  };
}

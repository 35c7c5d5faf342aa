/**
 * Everything a host node runs for the manager, wired together: the command
 * executor as a command multicast member (its ledger makes each command
 * apply at most once), and the VM supervisor that watches the VMs placed
 * here and reports their health. The view comes from the host's learner, the
 * lease from its host agent.
 */
import type { RejectionCounter } from "../codec/rejectionCounter.ts";
import type { NodePorts } from "../ports/nodePorts.ts";
import { startCommandMember, type CommandMember } from "../groupcomm/commandMember.ts";
import type { GuestWatchdogConfig } from "../../machines/guest/guestWatchdog.ts";
import type { VmMonitorConfig } from "../../machines/vm/vmHealth.ts";
import { createHostCommandExecutor, type HostCommandExecutor, type HostCommandExecutorConfig, type HostLeaseState, type ViewSource } from "./hostCommandExecutor.ts";
import { trackHostIncarnation } from "./hostIncarnation.ts";
import { startHostVmSupervisor, type HostVmSupervisor, type VmReportSink, type VmWatcher } from "./hostVmSupervisor.ts";

export interface HostCommandNodeOptions {
  readonly views: ViewSource;
  readonly lease: () => HostLeaseState | undefined;
  readonly rejections: RejectionCounter;
  /** 1 on a single NATS server (and the simulator's default), 3 on a cluster. */
  readonly streamReplicas?: 1 | 3;
  readonly executor?: Partial<HostCommandExecutorConfig>;
  readonly watchGuest?: (vmId: string) => boolean;
  readonly vmConfig?: Partial<VmMonitorConfig>;
  readonly guestConfig?: Partial<GuestWatchdogConfig>;
  /** Replaces the default VM watcher (a VM actor per VM). */
  readonly watcher?: (sink: VmReportSink) => VmWatcher;
  /** Told after every command this node applied (for invariant checks). */
  readonly onApplied?: (commandId: string, kind: string) => void;
}

export interface HostCommandNode {
  readonly executor: HostCommandExecutor;
  readonly member: CommandMember;
  readonly supervisor: HostVmSupervisor;
  stop(): void;
}

export function startHostCommandNode(ports: NodePorts, options: HostCommandNodeOptions): HostCommandNode {
  const hypervisor = ports.hypervisor;
  if (hypervisor === undefined) throw new RangeError(`host ${ports.nodeId} has no hypervisor port: the command executor needs one`);
  const incarnation = trackHostIncarnation(ports, options.lease);
  const supervisor = startHostVmSupervisor(ports, {
    hypervisor,
    views: options.views,
    lease: options.lease,
    incarnation,
    rejections: options.rejections,
    ...(options.watchGuest ? { watchGuest: options.watchGuest } : {}),
    ...(options.vmConfig ? { vmConfig: options.vmConfig } : {}),
    ...(options.guestConfig ? { guestConfig: options.guestConfig } : {}),
    ...(options.watcher ? { watcher: options.watcher } : {}),
  });
  const executor = createHostCommandExecutor(ports, {
    hypervisor,
    views: options.views,
    lease: options.lease,
    incarnation,
    onStarted: (vmId) => supervisor.started(vmId),
    ...(options.executor ? { config: options.executor } : {}),
  });
  const member = startCommandMember(
    ports,
    (command, done) => {
      options.onApplied?.(command.commandId, command.kind);
      executor.apply(command, done);
    },
    { rejections: options.rejections, streamReplicas: options.streamReplicas ?? 1 },
  );
  return {
    executor,
    member,
    supervisor,
    stop() {
      member.stop();
      executor.stop();
      supervisor.stop();
      incarnation.stop();
    },
  };
}

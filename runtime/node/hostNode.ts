/**
 * A host process (`haring node` with `"role": "host"`):
 *
 * - the host agent (actors/heartbeat/heartbeatSenderActor.ts): heartbeats to
 *   the monitors, leases, incarnations kept in `<dataDir>/host-incarnation`,
 *   the isolation response (power off or shut down every VM through the
 *   hypervisor) when its lease runs out, and on every start;
 * - the hardware watchdog (runtime/watchdogDevice.ts) when configured, petted
 *   by the agent only while it is healthy;
 * - a VM actor for every VM on the hypervisor, for the status file, the log
 *   and `event.vm-health`: the VM supervisor's for the VMs the view places
 *   here, hostVmWatches.ts's for the others (each VM is watched once); all of
 *   them share one hypervisor event subscription and one batched poll per
 *   interval (`list`, libvirt's `virsh domstats`), and a VM's actor asks for
 *   its VM alone only at start and on an event for it;
 * - the view learner, which also registers the host (`host.register`) when
 *   the view does not know it yet;
 * - the host command node (actors/hostCommands/hostCommandNode.ts): the
 *   command executor as a command multicast member (the manager's `vm.start`,
 *   `vm.stop`, `vm.reset`, each applied at most once, checked against the
 *   lease and the learned view) and the VM supervisor, which reports the
 *   health of the VMs the view places here to the manager;
 * - with the `sim` driver, the registration of the config's VMs in the view
 *   (simVmRegistration.ts): added, placed here, set running; the manager
 *   starts them. A host never starts a VM on its own.
 *
 * SIGTERM/SIGINT stops it cleanly, and a clean stop **fences the host**: the
 * agent stops heartbeating (so its lease will run out and the leader will
 * declare it failed), every VM is stopped with the isolation response, and
 * only then is the watchdog disarmed (the magic close). A host that is stopped
 * keeps no VM running that the cluster could restart elsewhere. If the VMs
 * cannot be stopped within `shutdownIsolationTimeoutMs`, the watchdog stays
 * armed and resets the machine.
 */
import { createRejectionCounter } from "../../actors/codec/rejectionCounter.ts";
import { hypervisorIsolation, type IsolationResponder } from "../../actors/detection/hostIsolation.ts";
import { startHeartbeatSender, type HeartbeatSenderHost } from "../../actors/heartbeat/heartbeatSenderActor.ts";
import type { TimerId } from "../../actors/ports/clock.ts";
import type { Hypervisor, VmStatus } from "../../actors/ports/hypervisor.ts";
import type { NodePorts } from "../../actors/ports/nodePorts.ts";
import type { Subscription } from "../../actors/ports/network.ts";
import { startLearnerActor, type LearnerActor } from "../../actors/paxos/learnerActor.ts";
import type { HostLeaseState } from "../../actors/hostCommands/hostCommandExecutor.ts";
import { startHostCommandNode, type HostCommandNode } from "../../actors/hostCommands/hostCommandNode.ts";
import type { VmHealth } from "../../machines/vm/vmHealth.ts";
import { createPaxosConfig } from "../../machines/paxos/config.ts";
import { viewControllerSetDifference } from "../../machines/paxos/acceptorSet.ts";
import { promptClock } from "../controller/promptClock.ts";
import { LibvirtHypervisor } from "../libvirt/libvirtHypervisor.ts";
import { WatchdogDevice } from "../watchdogDevice.ts";
import { connectLockedNode } from "./dataDirLock.ts";
import type { HostNodeConfig } from "./hostConfig.ts";
import { createHostVmPolling, polledVmActorWatcher, startHostVmWatches, type HostVmPolling, type HostVmWatches } from "./hostVmWatches.ts";
import { startSimVmRegistration, type SimVmRegistration } from "./simVmRegistration.ts";
import { InProcessHypervisor } from "./inProcessHypervisor.ts";
import { startNodeStatusFile } from "./nodeStatusFile.ts";
import { nodeExitCodes, nodeLockFileName, type RunNodeOptions, type RunningNode } from "./runningNode.ts";

/** A clean stop waits this long for the VMs to be off before giving up (and leaving the watchdog armed). */
export const shutdownIsolationTimeoutMs = 30_000;
/** While the view does not know this host, `host.register` is proposed again this often. */
export const registerRetryMs = 2_000;
/** How often the agent's health is checked for a fatal stop (and registration, if still due). */
export const hostHealthCheckMs = 500;

export interface HostStatus {
  readonly role: "host";
  readonly nodeId: string;
  readonly pid: number;
  readonly atMs: number;
  readonly agent: string;
  readonly phase: string;
  readonly incarnation: number;
  /** Left of the lease on this host's clock; 0 without one. */
  readonly leaseLeftMs: number;
  readonly monitor: string;
  readonly acksReceived: number;
  readonly acksMissed: number;
  readonly switches: number;
  readonly isolations: number;
  readonly viewSlots: number;
  readonly viewState: string;
  readonly viewIncarnation: number | null;
  /** Health per VM on the hypervisor, from its VM actor. */
  readonly vms: Readonly<Record<string, string>>;
  /** The `sim` driver's power state of every VM it holds (null for libvirt): what runs here, as the hypervisor sees it. */
  readonly powerStates: Readonly<Record<string, string>> | null;
  /** VMs the view this host learned places here. */
  readonly placedHere: readonly string[];
  /** The command multicast member carrying the manager's commands ("consuming" when it takes them). */
  readonly commandMember: string;
  readonly watchdog: { readonly device: string; readonly armed: boolean; readonly bytesWritten: number } | null;
  readonly cpuMs: number;
}

export interface RunningHost extends RunningNode {
  status(): HostStatus;
}

export interface RunHostNodeOptions extends RunNodeOptions {
  /** A hypervisor built by the caller instead of from `config.hypervisor` (embedding, tests); the host owns it from then on. */
  readonly hypervisor?: Hypervisor;
}

function createHypervisor(config: HostNodeConfig, ports: NodePorts): Hypervisor {
  const settings = config.hypervisor;
  if (settings.driver === "libvirt") {
    return new LibvirtHypervisor({
      uri: settings.uri,
      ...(settings.virshBinary !== undefined ? { virshBinary: settings.virshBinary } : {}),
      ...(settings.commandTimeoutMs !== undefined ? { commandTimeoutMs: settings.commandTimeoutMs } : {}),
      ...(settings.eventPollIntervalMs !== undefined ? { eventPollIntervalMs: settings.eventPollIntervalMs } : {}),
      ...(settings.migrationUri !== undefined ? { migrationUri: settings.migrationUri } : {}),
      ...(settings.migrationTimeoutMs !== undefined ? { migrationTimeoutMs: settings.migrationTimeoutMs } : {}),
      log: ports.log,
      metrics: ports.metrics,
    });
  }
  // The config's VMs are defined by the manager's first start (simVmRegistration.ts): until then the supervisor reports them missing.
  return new InProcessHypervisor(ports.clock);
}

/** Stops every running or paused VM, then calls `done(allOff)`; never inside the call. */
function stopAllVms(hypervisor: Hypervisor, force: boolean, ports: NodePorts, done: (allOff: boolean) => void): void {
  hypervisor.list((listed) => {
    if (!listed.ok) {
      ports.log.write("error", "host.stop-vms-failed", { reason: listed.reason, error: listed.error });
      done(false);
      return;
    }
    const active = listed.value.filter((vm: VmStatus) => vm.state === "running" || vm.state === "paused");
    ports.log.write("info", "host.stopping-vms", { vms: active.length, force });
    if (active.length === 0) {
      done(true);
      return;
    }
    let outstanding = active.length;
    let allOff = true;
    for (const vm of active) {
      hypervisor.stop(vm.vmId, force, (stopped) => {
        if (!stopped.ok && stopped.reason !== "not-found") {
          allOff = false;
          ports.log.write("error", "host.stop-vm-failed", { vm: vm.vmId, reason: stopped.reason, error: stopped.error });
        }
        if (--outstanding === 0) done(allOff);
      });
    }
  });
}

export async function runHostNode(config: HostNodeConfig, options: RunHostNodeOptions = {}): Promise<RunningHost> {
  const { runtime, releaseLock } = await connectLockedNode(config, { fileName: nodeLockFileName, holderKind: "host" }, options.logLine);
  const basePorts: NodePorts = { ...runtime.ports, clock: promptClock };
  let hypervisor: Hypervisor;
  let watchdog: WatchdogDevice | undefined;
  try {
    hypervisor = options.hypervisor ?? createHypervisor(config, basePorts);
    if (config.watchdog !== undefined) {
      watchdog = new WatchdogDevice({ ...config.watchdog, now: () => promptClock.now(), log: basePorts.log, metrics: basePorts.metrics });
      const problem = watchdog.startupProblem();
      if (problem !== undefined) throw new Error(problem);
    }
  } catch (error) {
    await runtime.close().catch(() => undefined);
    releaseLock();
    throw error;
  }
  const ports: NodePorts = { ...basePorts, hypervisor };
  const rejections = createRejectionCounter(ports);

  let isolations = 0;
  const isolationResponder = hypervisorIsolation(hypervisor, ports.log);
  const isolation: IsolationResponder = {
    isolate: (request, done) => {
      if (request.reason !== "boot") isolations++;
      isolationResponder.isolate(request, done);
    },
  };
  const sender: HeartbeatSenderHost = startHeartbeatSender(ports, {
    monitorIds: config.monitorIds,
    config: config.detection.host,
    ackTimeoutMs: config.detection.host.ackTimeoutMs,
    rejections,
    lease: {
      maxAcceptedLeaseMs: config.detection.host.maxAcceptedLeaseMs,
      isolationResponse: config.isolationResponse,
      isolation,
      ...(watchdog !== undefined ? { watchdog } : {}),
    },
  });

  const settings = config.hypervisor;
  const learner: LearnerActor = startLearnerActor(ports, { config: createPaxosConfig(config.controllerIds), rejections });
  // VMs placed here are watched by the VM supervisor (reports to the manager); the rest by vmWatches (status only).
  const supervised = new Set<string>();
  const vmPolling: HostVmPolling = createHostVmPolling(ports, hypervisor);
  const vmWatches: HostVmWatches = startHostVmWatches(ports, {
    supervised: (vmId) => supervised.has(vmId),
    polling: vmPolling,
    rejections,
    rescanIntervalMs: config.vmRescanIntervalMs,
    watchGuests: config.guestAgents,
    // A VM the view places elsewhere (or nowhere) is not meant to run here, whatever it wants elsewhere.
    desiredInView: (vmId) => {
      const vm = learner.view().vms.get(vmId);
      return vm === undefined ? undefined : vm.placement?.hostId === config.nodeId ? vm.desiredState : "stopped";
    },
    desiredLocally: (vmId) => {
      if (settings.driver !== "sim") return undefined;
      const vm = settings.vms.find((entry) => entry.definition.vmId === vmId);
      return vm === undefined ? undefined : vm.running ? "running" : "stopped";
    },
  });

  const lease = (): HostLeaseState | undefined => {
    const context = sender.getSnapshot()?.context;
    return context === undefined ? undefined : { phase: context.phase, incarnation: context.incarnation, leaseUntilMs: context.leaseUntilMs };
  };
  const hostCommands: HostCommandNode = startHostCommandNode(ports, {
    views: learner,
    lease,
    rejections,
    streamReplicas: config.streamReplicas,
    watcher: (sink) => {
      const actors = polledVmActorWatcher(ports, vmPolling, { rejections, watchGuest: () => config.guestAgents }, {
        vm: (vmId, health) => {
          sink.vm(vmId, health);
          vmWatches.report(vmId, health as VmHealth);
        },
        guest: (vmId, health) => {
          sink.guest(vmId, health);
          ports.log.write("info", "guest.health", { vm: vmId, health });
        },
      });
      return {
        watch(vmId) {
          supervised.add(vmId);
          actors.watch(vmId);
          vmWatches.rescanSoon();
        },
        unwatch(vmId) {
          supervised.delete(vmId);
          actors.unwatch(vmId);
          vmWatches.rescanSoon();
        },
        stop() {
          actors.stop();
          supervised.clear();
        },
      };
    },
  });
  // A VM started here is watched for the status file at once, not at the next rescan.
  const startedHere: Subscription = hypervisor.onEvent((event) => {
    if (event.type === "started") vmWatches.rescanSoon();
  });
  const simVms: SimVmRegistration | undefined = settings.driver === "sim" ? startSimVmRegistration(ports, learner, settings.vms) : undefined;

  let registerTimer: TimerId | undefined;
  let lastRegisterAtMs = Number.NEGATIVE_INFINITY;
  // One registration id per process start: the view remembers command ids, so a host removed by the operator and started
  // again would otherwise propose an id the view already applied, and never be registered again.
  const registrationId = `register-${config.nodeId}-${Date.now().toString(36)}`;
  /** This process's registration was committed, then the host was removed from the view: it registers again only when restarted. */
  let removedFromView = false;
  const registerIfUnknown = (): void => {
    registerTimer = undefined;
    if (!config.register || removedFromView || learner.appliedSlots() === 0 || learner.view().hosts.has(config.nodeId)) return;
    const nowMs = ports.clock.now();
    if (nowMs - lastRegisterAtMs < registerRetryMs) {
      registerTimer = ports.clock.setTimeout(registerIfUnknown, registerRetryMs - (nowMs - lastRegisterAtMs));
      return;
    }
    lastRegisterAtMs = nowMs;
    const proposed = learner.propose({ id: registrationId, type: "host.register", hostId: config.nodeId, capacity: config.capacity }, (outcome) => {
      ports.log.write(outcome.kind === "committed" ? "info" : "warn", "host.register", { outcome: outcome.kind, ...("reason" in outcome ? { reason: outcome.reason } : {}) });
      if (outcome.kind !== "committed" || learner.view().hosts.has(config.nodeId) || removedFromView) return;
      // Committed, yet not in the view: the view answered with this id's earlier outcome; the host was removed since.
      removedFromView = true;
      ports.log.write("error", "host.removed-from-view", { note: "the operator removed this host from the cluster; it takes no VMs and is not registered again until this process restarts" });
    });
    if (!proposed.ok) ports.log.write("warn", "host.register-refused", { error: proposed.error });
    registerTimer = ports.clock.setTimeout(registerIfUnknown, registerRetryMs);
  };
  // A host fetches the view only from the controllers its config lists: one the cluster has and its config lacks is
  // never asked. Said once per list the view names, where the operator looks.
  let controllerSetWarnedFor = "";
  const checkControllerSet = (): void => {
    const named = learner.view().controllerIds;
    const difference = viewControllerSetDifference(named, config.controllerIds);
    if (difference === null || named.join(",") === controllerSetWarnedFor) return;
    controllerSetWarnedFor = named.join(",");
    ports.log.write("warn", "host.controller-set-mismatch", { error: difference, note: "correct controllerIds in this host's config: it fetches the view only from the controllers listed there" });
  };
  const applied = learner.onApplied(() => {
    vmWatches.refreshDesired();
    simVms?.check();
    if (registerTimer === undefined) registerIfUnknown();
    checkControllerSet();
  });

  const statusNow = (): HostStatus => {
    const context = sender.getSnapshot()?.context;
    const view = learner.view();
    const viewHost = view.hosts.get(config.nodeId);
    const cpu = process.cpuUsage();
    const nowMs = ports.clock.now();
    return {
      role: "host",
      nodeId: config.nodeId,
      pid: process.pid,
      atMs: Math.round(nowMs),
      agent: sender.status,
      phase: context?.phase ?? "unknown",
      incarnation: context?.incarnation ?? 0,
      leaseLeftMs: context !== undefined && context.leaseUntilMs > nowMs ? Math.round(context.leaseUntilMs - nowMs) : 0,
      monitor: context?.monitorOrder[context.targetIndex] ?? "",
      acksReceived: context?.acksReceived ?? 0,
      acksMissed: context?.acksMissed ?? 0,
      switches: context?.switches ?? 0,
      isolations,
      viewSlots: learner.appliedSlots(),
      viewState: viewHost?.state ?? "unknown",
      viewIncarnation: viewHost?.incarnation ?? null,
      vms: Object.fromEntries(vmWatches.health()),
      powerStates: hypervisor instanceof InProcessHypervisor ? Object.fromEntries(hypervisor.states()) : null,
      placedHere: [...view.vms.values()].filter((vm) => vm.placement?.hostId === config.nodeId).map((vm) => vm.vmId),
      commandMember: hostCommands.member.status,
      watchdog: watchdog === undefined || config.watchdog === undefined ? null : { device: config.watchdog.device, armed: watchdog.isOpen, bytesWritten: watchdog.writtenBytes },
      cpuMs: Math.round((cpu.user + cpu.system) / 1_000),
    };
  };
  let finalStatus: HostStatus | undefined;
  const statusFile = startNodeStatusFile(config.dataDir, config.statusIntervalMs, () => finalStatus ?? statusNow(), runtime.metrics, ports.log);
  const healthTimer = setInterval(() => {
    // Also when nothing is committed for a while (a view learned from a snapshot fires no onApplied).
    if (registerTimer === undefined) registerIfUnknown();
    checkControllerSet();
    if (sender.status === "failed") {
      ports.log.write("error", "host.agent-failed", { note: "the watchdog stays armed" });
      void shutDown("fatal");
    }
  }, hostHealthCheckMs);
  ports.log.write("info", "host.started", {
    pid: process.pid,
    dataDir: config.dataDir,
    monitors: config.monitorIds.join(","),
    hypervisor: hypervisor.driver,
    isolationResponse: config.isolationResponse,
    watchdog: config.watchdog?.device ?? "none",
  });
  if (watchdog === undefined) ports.log.write("warn", "host.no-watchdog", { note: "a hung agent is not bounded by a hardware reset; configure watchdog for production" });

  let settle: (code: number) => void = () => {};
  const finished = new Promise<number>((resolve) => (settle = resolve));
  let stopping: Promise<number> | undefined;

  function shutDown(how: "clean" | "fatal"): Promise<number> {
    stopping ??= (async () => {
      clearInterval(healthTimer);
      await statusFile.stop();
      // Read before stopping: a disposed agent and learner no longer have a state.
      const lastStatus = statusNow();
      applied.unsubscribe();
      startedHere.unsubscribe();
      simVms?.stop();
      // No more commands from the manager: nothing starts while the VMs are being stopped.
      hostCommands.stop();
      if (registerTimer !== undefined) ports.clock.clearTimeout(registerTimer);
      // No more heartbeats, so no more leases or pets.
      sender.dispose();
      vmWatches.stop();
      vmPolling.dispose();
      learner.stop();
      let exitCode: number = nodeExitCodes.fatal;
      if (how === "clean") {
        const allOff = await new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(false), shutdownIsolationTimeoutMs);
          stopAllVms(hypervisor, config.isolationResponse === "power-off", ports, (off) => {
            clearTimeout(timer);
            resolve(off);
          });
        });
        watchdog?.close(allOff ? "clean" : "abandon");
        exitCode = allOff ? nodeExitCodes.ok : nodeExitCodes.fatal;
      } else {
        watchdog?.close("abandon");
      }
      finalStatus = { ...lastStatus, agent: "stopped", leaseLeftMs: 0, atMs: Math.round(ports.clock.now()), vms: {}, powerStates: hypervisor instanceof InProcessHypervisor ? Object.fromEntries(hypervisor.states()) : null, watchdog: lastStatus.watchdog === null ? null : { ...lastStatus.watchdog, armed: watchdog?.isOpen ?? false, bytesWritten: watchdog?.writtenBytes ?? 0 } };
      statusFile.flush();
      if (hypervisor instanceof LibvirtHypervisor) await hypervisor.close().catch(() => undefined);
      await runtime.close().catch(() => undefined);
      releaseLock();
      ports.log.write(exitCode === 0 ? "info" : "error", "host.stopped", { exitCode });
      settle(exitCode);
      return exitCode;
    })();
    return stopping;
  }

  return { finished, stop: () => shutDown("clean"), status: () => finalStatus ?? statusNow() };
}

/**
 * The HA manager as a scenario component: the manager actor on every Paxos
 * controller (active on the leader; actors/manager), and on every host the
 * command executor as a command multicast member with the VM supervisor
 * reporting VM and guest health (actors/hostCommands). It uses the other
 * components' pieces: the controllers and host learners (paxos), the
 * simulated hypervisors and their VM actors (hypervisor), the host agents'
 * leases and the failure detector's declarations (detection), and the
 * simulated JetStream (nats).
 *
 * Commands: `maintenance <host> on|off`, `vm-add <vm> …` (through admission
 * control on the leader's manager), `vm-remove <vm>` (desired stopped, then
 * removed once committed; the host shuts it down).
 *
 * Settings (cluster.json `components.manager`): `failuresToTolerate` is every
 * manager's F; the leading one puts it into the view (`cluster.configure`)
 * once the imports are placed, and from then on the view refuses what would
 * break admission control, whoever proposes it (docs/recovery.md).
 *
 * Invariants:
 * - `manager.vms-running`: while the cluster is whole (every up controller
 *   and host can reach every other, a leader leads), every VM the view wants
 *   running runs on exactly one host, unless the manager holds it pending
 *   (nothing fits), within `recoveryBound` of the cluster becoming whole or
 *   the VM stopping;
 * - `manager.commands-once`: a host command applied on a host at most once,
 *   and one the manager heard applied was applied.
 */
import type { HostLeaseState } from "../../actors/hostCommands/hostCommandExecutor.ts";
import { startHostCommandNode, type HostCommandNode } from "../../actors/hostCommands/hostCommandNode.ts";
import type { VmReportSink } from "../../actors/hostCommands/hostVmSupervisor.ts";
import { startManagerOnController, type ManagerOnController } from "../../actors/manager/managerOnController.ts";
import { createRejectionCounter } from "../../actors/codec/rejectionCounter.ts";
import type { Hypervisor } from "../../actors/ports/hypervisor.ts";
import type { NodePorts } from "../../actors/ports/nodePorts.ts";
import { defaultManagerConfig, type ManagerConfig } from "../../machines/manager/managerConfig.ts";
import type { ViewCommand } from "../../machines/view/viewCommands.ts";
import { maxRecordedRecoveriesPerKind } from "../../machines/view/viewTypes.ts";
import { scenarioCapabilities } from "./capabilities.ts";
import type { ScenarioComponent } from "./clusterAssembly.ts";
import type { DetectionComponentApi } from "./detectionComponent.ts";
import type { HypervisorComponentApi } from "./hypervisorComponent.ts";
import type { PaxosComponentApi } from "./paxosComponent.ts";
import { formatDurationMs } from "./scenarioValues.ts";

export const managerComponentName = "manager";
export const managerCheckMs = 100;
/** How often declared failures are passed from the detector's record to the leader's manager. */
export const declarationForwardMs = 25;
export const defaultRecoveryBoundMs = 20_000;
/**
 * cluster.json VMs with a host are imports: the paxos component places them in the view and the
 * hypervisor component starts them there, so the manager holds off their initial placement. From
 * `importCheckAfterMs` on, an import the view still has not placed (its placement was refused: over
 * capacity, or against a rule) is powered off where it runs and handed to the manager.
 */
export const importCheckAfterMs = 15_000;
export const importCheckEveryMs = 1_000;
const importHoldMs = 24 * 3_600_000;
const maxTrackedCommands = 100_000;
/** Manager log lines from nodes that belong in the scenario log (warn lines are kept anyway). */
const keptManagerNotes: ReadonlySet<string> = new Set([
  "manager.activated",
  "manager.placed",
  "manager.started",
  "manager.restart-in-place",
  "manager.not-running",
  "manager.reset",
  "manager.host-drained",
  "manager.placement-refused",
]);

export interface ManagerComponentSettings {
  readonly manager: ManagerConfig;
  readonly recoveryBoundMs: number;
}

export const managerComponent: ScenarioComponent<ManagerComponentSettings> = {
  name: managerComponentName,
  provides: [scenarioCapabilities.manager],
  uses: [scenarioCapabilities.paxos, scenarioCapabilities.hypervisor, scenarioCapabilities.detection, scenarioCapabilities.nats],

  readSettings(reader) {
    const hostFailuresToTolerate = reader.integer("failuresToTolerate", { min: 0, max: 100, fallback: defaultManagerConfig.hostFailuresToTolerate });
    const maxRestartsPerWindow = reader.integer("maxRestartsPerWindow", { min: 0, max: maxRecordedRecoveriesPerKind, fallback: defaultManagerConfig.maxRestartsPerWindow });
    const restartWindowMs = reader.duration("restartWindow", { min: 1, max: 86_400_000, fallback: defaultManagerConfig.restartWindowMs });
    const guestHangGraceMs = reader.duration("guestHangGrace", { min: 0, max: 3_600_000, fallback: defaultManagerConfig.guestHangGraceMs });
    const hostCommandTimeoutMs = reader.duration("commandTimeout", { min: 1, max: 3_600_000, fallback: defaultManagerConfig.hostCommandTimeoutMs });
    const recoveryBoundMs = reader.duration("recoveryBound", { min: 100, max: 3_600_000, fallback: defaultRecoveryBoundMs });
    reader.finish();
    return {
      manager: { ...defaultManagerConfig, hostFailuresToTolerate, maxRestartsPerWindow, restartWindowMs, guestHangGraceMs, hostCommandTimeoutMs },
      recoveryBoundMs,
    };
  },

  checkCluster(cluster) {
    const problems: string[] = [];
    if (cluster.controllerIds.length === 0) problems.push("the manager runs on controllers (add \"controllers\")");
    if (cluster.hosts.length === 0) problems.push("the manager needs hosts");
    return problems;
  },

  start(context, settings) {
    const { world, cluster, log } = context;
    const paxos = context.api<PaxosComponentApi>(scenarioCapabilities.paxos)!;
    const hypervisor = context.api<HypervisorComponentApi>(scenarioCapabilities.hypervisor)!;
    const detection = context.api<DetectionComponentApi>(scenarioCapabilities.detection)!;
    const virtOf = new Map(cluster.vms.map((vm) => [vm.vmId, vm.virt]));
    const managers = new Map<string, ManagerOnController>();
    const hostNodes = new Map<string, HostCommandNode>();
    const sinks = new Map<string, VmReportSink>();
    /** commandId → times applied on its host (the member's ledger promises at most once). */
    const applications = new Map<string, number>();
    /** commandId → host, for commands the manager heard applied. */
    const acknowledged = new Map<string, string>();
    let sent = 0;
    let operatorCommands = 0;

    hypervisor.onVmReport((hostId, report) => sinks.get(hostId)?.vm(report.vmId, report.health));
    hypervisor.onGuestReport((hostId, report) => sinks.get(hostId)?.guest(report.vmId, report.health));

    const leaderManager = (): ManagerOnController | undefined => {
      const leader = paxos.leaderId();
      return leader === undefined ? undefined : managers.get(leader);
    };

    // ---- the detector's declarations reach the manager on the same (leading) controller
    let forwarded = 0;
    const forwardDeclarations = (): void => {
      const proposals = detection.truth.proposals;
      for (; forwarded < proposals.length; forwarded++) {
        const proposal = proposals[forwarded]!.proposal;
        if (proposal.type === "host-failed") leaderManager()?.detectorProposal(proposal);
      }
      world.schedule(declarationForwardMs, forwardDeclarations);
    };
    world.schedule(declarationForwardMs, forwardDeclarations);

    /** An operator's command: through the leader's manager (admission control), or straight to Paxos while none leads. */
    const operator = (what: string, command: ViewCommand, then?: () => void): void => {
      operatorCommands++;
      const report = (outcome: string, error?: string) => {
        log.write(error === undefined ? "info" : "warn", "manager.operator", { command: what, id: command.id, outcome, ...(error === undefined ? {} : { error }) });
        if (outcome === "committed") then?.();
      };
      const manager = leaderManager();
      if (manager !== undefined) {
        manager.manager.propose(command, (result) => (result.ok ? report(result.outcome.kind, result.outcome.kind === "rejected" ? result.outcome.reason : undefined) : report("refused", result.error)));
        return;
      }
      const submitted = paxos.propose(command, (outcome) => report(outcome.kind, outcome.kind === "rejected" ? outcome.reason : undefined));
      if (!submitted.ok) report("refused", submitted.error);
    };

    // ---- imports (cluster.json VMs with a host): held from the manager until the view places them or refuses
    const imports = new Map(cluster.vms.filter((vm) => vm.hostId !== undefined).map((vm) => [vm.vmId, vm.hostId!]));
    const hostHypervisors = new Map<string, Hypervisor>();
    const release = (vmId: string): void => {
      imports.delete(vmId);
      for (const [controllerId, manager] of managers) if (world.nodeState(controllerId) !== "crashed") manager.manager.holdInitialPlacement([vmId], 0);
    };
    /** vmId → its host's world incarnation when the import's power-off was sent. */
    const stoppingImports = new Map<string, number>();
    const resolveImports = (): void => {
      const view = paxos.view();
      for (const [vmId, hostId] of [...imports]) {
        const vm = view?.vms.get(vmId);
        if (vm === undefined) continue;
        const stoppingOn = stoppingImports.get(vmId);
        if (stoppingOn !== undefined) {
          if (world.nodeState(hostId) !== "crashed" && world.incarnation(hostId) === stoppingOn) continue;
          // Its host crashed before the power-off answered, so the answer never comes (fuzz seed 560271: the first check
          // and "crash h4" fell on the same millisecond, and the VM was held from the manager for good). The crash took
          // the VM down; judge the import again below.
          stoppingImports.delete(vmId);
        }
        if (vm.placement !== null) {
          imports.delete(vmId);
          continue;
        }
        if (world.nodeState(hostId) === "crashed") {
          // Its host crashed: the import cannot run there (a crash takes its VMs down), and waiting for the host could take forever.
          log.write("warn", "manager.import-refused", { vm: vmId, host: hostId, note: "the view never placed it there and its host is down; left to the manager" });
          release(vmId);
          continue;
        }
        // The import had its chance once its host held a lease (the hypervisor component started it then), or rebooted.
        const leased = detection.hostAgent(hostId)?.getSnapshot()?.context.phase === "leased";
        const hypervisorPort = world.nodeState(hostId) === "up" ? hostHypervisors.get(hostId) : undefined;
        if (hypervisorPort === undefined || !(leased || world.incarnation(hostId) > 1)) continue;
        const incarnation = world.incarnation(hostId);
        stoppingImports.set(vmId, incarnation);
        hypervisorPort.stop(vmId, true, (stopped) => {
          if (stoppingImports.get(vmId) !== incarnation) return;
          log.write("warn", "manager.import-refused", { vm: vmId, host: hostId, note: "the view never placed it there; powered off and left to the manager", ...(stopped.ok ? {} : { stop: stopped.error }) });
          stoppingImports.delete(vmId);
          release(vmId);
        });
      }
      if (imports.size > 0) world.schedule(importCheckEveryMs, resolveImports);
    };
    if (imports.size > 0) world.schedule(importCheckAfterMs, resolveImports);

    const wantedRunning = new Map<string, number>();
    let wholeSinceMs: number | undefined;
    const clusterIsWhole = (): boolean => {
      if (world.fabric.isServerDown || paxos.leaderId() === undefined) return false;
      const nodes = [...cluster.controllerIds, ...cluster.hosts.map((host) => host.hostId)].filter((nodeId) => world.nodeState(nodeId) === "up");
      return world.fabric.allConnected(nodes);
    };

    return {
      api: { managers, hostNodes },
      bootController(ports: NodePorts) {
        const controller = paxos.controller(ports.nodeId);
        if (controller === undefined) throw new Error(`controller ${ports.nodeId} has no Paxos controller actor`);
        const onController = startManagerOnController(ports, {
          controller,
          rejections: createRejectionCounter(ports),
          config: settings.manager,
          vmDefinition: (vmId) => ({ virtualization: virtOf.get(vmId) ?? "full" }),
          onHostCommandOutcome: (commandId, hostId, status) => {
            sent++;
            if (status === "applied" && acknowledged.size < maxTrackedCommands) acknowledged.set(commandId, hostId);
          },
        });
        // cluster.json VMs with a host start there (paxos and hypervisor components): the manager must not place them first
        const held = [...imports.keys()];
        if (held.length > 0) onController.manager.holdInitialPlacement(held, importHoldMs);
        managers.set(ports.nodeId, onController);
        return { stop: () => onController.stop() };
      },
      bootHost(ports: NodePorts) {
        const hostId = ports.nodeId;
        if (ports.hypervisor !== undefined) hostHypervisors.set(hostId, ports.hypervisor);
        const learner = paxos.learner(hostId);
        if (learner === undefined) throw new Error(`host ${hostId} has no view learner`);
        const lease = (): HostLeaseState | undefined => {
          const context = detection.hostAgent(hostId)?.getSnapshot()?.context;
          return context === undefined ? undefined : { phase: context.phase, incarnation: context.incarnation, leaseUntilMs: context.leaseUntilMs };
        };
        const node = startHostCommandNode(ports, {
          views: learner,
          lease,
          rejections: createRejectionCounter(ports),
          watcher: (sink) => {
            sinks.set(hostId, sink);
            return {
              // A fresh VM actor, as a runtime host's supervisor starts (runtime/node/hostVmWatches.ts): its first
              // judgement is the VM's first report. The hypervisor component's actor for the VM (an import's) reports
              // changes only, so a VM it already saw off when placed here was never reported, and a manager with no
              // start on its way never learned the VM was off (whole-system fuzz seeds 929 and 1031).
              watch: (vmId) => void hypervisor.watchVm(hostId, vmId, "running"),
              unwatch: (vmId) => hypervisor.vmWatch(hostId, vmId)?.setDesired("stopped"),
              stop: () => {
                if (sinks.get(hostId) === sink) sinks.delete(hostId);
              },
            };
          },
          onApplied: (commandId) => {
            if (applications.size < maxTrackedCommands || applications.has(commandId)) applications.set(commandId, (applications.get(commandId) ?? 0) + 1);
          },
        });
        hostNodes.set(hostId, node);
        return { stop: () => node.stop() };
      },
      commands: {
        maintenance: (command) =>
          operator(`maintenance ${command.hostId} ${command.on ? "on" : "off"}`, {
            id: `maintenance-${command.hostId}-${command.on ? "on" : "off"}-${world.now().toFixed(0)}`,
            type: command.on ? "host.maintenance-enter" : "host.maintenance-exit",
            hostId: command.hostId,
          }),
        "vm-add": (command) => {
          const vm = command.vm;
          virtOf.set(vm.vmId, vm.virt);
          operator(
            `vm-add ${vm.vmId}`,
            { id: `add-${vm.vmId}-${world.now().toFixed(0)}`, type: "vm.add", vmId: vm.vmId, resources: { ...vm.resources }, priority: vm.priority, rules: { affinity: [], antiAffinity: [] }, desiredState: "running" },
            vm.hostId === undefined
              ? undefined
              : () => operator(`vm-add ${vm.vmId} host=${vm.hostId}`, { id: `place-${vm.vmId}-${world.now().toFixed(0)}`, type: "vm.place", vmId: vm.vmId, hostId: vm.hostId!, expectedPlacementEpoch: 0 }),
          );
        },
        "vm-remove": (command) =>
          operator(`vm-remove ${command.vmId} (stop)`, { id: `stop-${command.vmId}-${world.now().toFixed(0)}`, type: "vm.set-desired", vmId: command.vmId, desiredState: "stopped" }, () =>
            operator(`vm-remove ${command.vmId}`, { id: `remove-${command.vmId}-${world.now().toFixed(0)}`, type: "vm.remove", vmId: command.vmId }),
          ),
      },
      invariants: [
        {
          name: "manager.vms-running",
          everyMs: managerCheckMs,
          check(nowMs, violation) {
            if (!clusterIsWhole()) {
              wholeSinceMs = undefined;
              wantedRunning.clear();
              return;
            }
            wholeSinceMs ??= nowMs;
            const view = paxos.view();
            const pending = new Set(leaderManager()?.manager.snapshot()?.pending.map((entry) => entry.vmId) ?? []);
            if (view === undefined) return;
            const registry = hypervisor.hypervisors.registry;
            const wholeSince = wholeSinceMs;
            view.vms.forEach((vm) => {
              if (vm.desiredState !== "running" || pending.has(vm.vmId) || registry.activeHosts(vm.vmId).length === 1) {
                if (wantedRunning.size > 0) wantedRunning.delete(vm.vmId);
                return;
              }
              const since = wantedRunning.get(vm.vmId) ?? nowMs;
              wantedRunning.set(vm.vmId, since);
              if (nowMs - Math.max(since, wholeSince) > settings.recoveryBoundMs) {
                violation(vm.vmId, `not running ${formatDurationMs(settings.recoveryBoundMs)} after the cluster was whole, and not pending`);
              }
            });
          },
        },
        {
          name: "manager.commands-once",
          everyMs: managerCheckMs,
          check(_nowMs, violation) {
            for (const [commandId, count] of applications) if (count > 1) violation(commandId, `applied ${count} times`);
            for (const [commandId, hostId] of acknowledged) if (!applications.has(commandId)) violation(commandId, `acknowledged as applied on ${hostId}, never applied there`);
          },
        },
      ],
      keepLogLine: (line) => keptManagerNotes.has(line.event),
      finish() {
        const view = paxos.view();
        const wanted = view === undefined ? 0 : [...view.vms.values()].filter((vm) => vm.desiredState === "running").length;
        const running = view === undefined ? 0 : [...view.vms.values()].filter((vm) => vm.desiredState === "running" && hypervisor.hypervisors.registry.activeHosts(vm.vmId).length === 1).length;
        log.write("info", "manager.summary", {
          wanted,
          running,
          pending: leaderManager()?.manager.snapshot()?.pending.length ?? 0,
          hostCommands: sent,
          operatorCommands,
        });
      },
    };
  },
};

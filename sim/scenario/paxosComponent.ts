/**
 * Multi-Paxos over the cluster view as a scenario component: the real
 * controller actor (actors/paxos) on every controller node, a view learner on
 * every host. At the start the hosts and VMs of cluster.json are registered in
 * the view (proposed again, bounded, until the view holds them, whichever
 * controller crashes meanwhile); each VM with a host is placed there once its
 * host is up in the view (without the detection component nobody reports hosts up,
 * so this component brings them up itself).
 *
 * Invariants (sim/paxos/paxosInvariants.ts, fed by the actors' observers):
 * - `paxos.agreement`: one value per slot, every learner applies the same
 *   sequence, leases exclusive, no command taking effect twice;
 * - `paxos.epochs`: a learner's view epoch never goes back while it runs, and
 *   learners agree on the epoch at each slot;
 * - `paxos.commits`: whenever a majority of controllers is up and connected
 *   (at the start, after a heal, after a controller crash or restart), a
 *   proposal commits within `commitBound`.
 */
import { createRejectionCounter } from "../../actors/codec/rejectionCounter.ts";
import { startControllerActor, type ControllerActor } from "../../actors/paxos/controllerActor.ts";
import { startLearnerActor, type LearnerActor, type LearnerSharing } from "../../actors/paxos/learnerActor.ts";
import type { OutcomeCallback, ProposeResult } from "../../actors/paxos/proposalClientActor.ts";
import type { NodePorts } from "../../actors/ports/nodePorts.ts";
import { createPaxosConfig, defaultPaxosTimings, majorityOf, type PaxosConfig } from "../../machines/paxos/config.ts";
import { holdsLease } from "../../machines/paxos/proposer.ts";
import type { ProposalOutcome } from "../../machines/paxos/proposalClient.ts";
import { sharedApplyMachine } from "../../machines/paxos/sharedApply.ts";
import type { ViewCommand } from "../../machines/view/viewCommands.ts";
import { viewStateMachine } from "../../machines/view/viewStateMachine.ts";
import { maxRuleTargets, type View } from "../../machines/view/viewTypes.ts";
import { PaxosInvariants } from "../paxos/paxosInvariants.ts";
import { scenarioCapabilities } from "./capabilities.ts";
import type { ScenarioComponent } from "./clusterAssembly.ts";
import type { ClusterSpec } from "./scenarioTypes.ts";
import { formatDurationMs } from "./scenarioValues.ts";

export const paxosComponentName = "paxos";
export const defaultCommitBoundMs = 3_000;
/** How often the component looks for VMs to place and for the controllers' connectivity to change. */
export const paxosWatchIntervalMs = 100;
/** Proposals per setup command at most (registrations, initial placements); a VM whose host never comes up stays unplaced. */
export const maxSetupAttempts = 20;
/** A setup proposal without an outcome this long (its proposer crashed, say) is proposed again. */
export const setupRetryAfterMs = 2_000;
/**
 * Setup proposals (registrations, VM adds and placements) in flight at once, at
 * most: far below the proposer's `maxOutstandingProposals`, so a big cluster's
 * setup never crowds out the detector's own proposals (hosts coming up).
 */
export const maxSetupProposalsInFlight = 256;
/**
 * A setup with more steps than `maxSetupProposalsInFlight` is fed this often instead of every
 * `paxosWatchIntervalMs`: at 256 proposals per 100 ms, 1,000 hosts × 20 VMs (42,000 commands) were
 * still registering when the manager component's import check (15 s) handed unplaced VMs to the
 * manager. Smaller setups (every scenario) are fed as before.
 */
export const bigSetupFeedIntervalMs = 10;
/**
 * A big setup's proposals in flight per controller's proposal client, at most; the setup uses every
 * running controller's client (the followers' forward to the leader). The leader starts a slot for
 * each proposal that finds its pipeline window empty and batches the rest (up to
 * `maxCommandsPerBatch`) into the slots after: the more proposals arrive together, the fuller the
 * slots, and every slot is one commit broadcast applied by every host. 640 of a client's 1,024
 * outstanding proposals leaves the leader's detector and manager room for their own.
 */
export const maxBigSetupProposalsPerClient = 640;
/** How often `paxos.commits` looks at the controllers' connectivity: a change is noticed this late at most. */
export const commitCheckMs = 20;
export const probeCommittedEvent = "paxos.probe-committed";

export interface PaxosComponentSettings {
  /** After the controllers' connectivity changes and a majority can talk, a proposal must commit within this. */
  readonly commitBoundMs: number;
  /** `learnerIdleTicks` (default "off"): "on" makes host learners tick every interval even when not behind, as before 2026-11-25 (see LearnerActorOptions.idleTicks). */
  readonly learnerIdleTicks: boolean;
  /** `partialBatchSlots`: PaxosConfig.maxInFlightSlotsForPartialBatches (the pure default unless set; controller processes use 2). */
  readonly maxInFlightSlotsForPartialBatches: number;
}

export interface PaxosComponentApi {
  readonly config: PaxosConfig;
  readonly controllerIds: readonly string[];
  /** The controller actor of a controller's current incarnation (a paused node's too); undefined while it is crashed. */
  controller(nodeId: string): ControllerActor | undefined;
  /** The view learner of a host's current incarnation (a paused node's too); undefined while it is crashed. */
  learner(hostId: string): LearnerActor | undefined;
  /** The up controller holding the leader lease now, if any. */
  leaderId(): string | undefined;
  /** The view of the up controller that applied the most slots (the leader's on a tie); undefined when none is up. */
  view(): View | undefined;
  /** Proposes through the leader's proposal client (else the first up controller's); the outcome is checked by the invariants. */
  propose(command: ViewCommand, done?: OutcomeCallback): ProposeResult;
  /** Hosts are brought up in the view by someone else (the failure detector), not by this component. */
  hostsComeUpThroughDetection(): void;
  /** Checked invariants of the run (violations so far). */
  readonly invariants: PaxosInvariants;
}

interface SetupStep {
  readonly command: ViewCommand;
  readonly ready: (view: View) => boolean;
  readonly done: (view: View) => boolean;
  attempts: number;
  inFlightSinceMs: number | undefined;
  /** The controller whose proposal client carries the attempt in flight. */
  via: string | undefined;
  finished: boolean;
}

/** Who carries the next setup proposals of one feed. */
interface SetupProposers {
  hasRoom(): boolean;
  /** Proposes through the next proposer, counting it in flight (also when the proposal is refused at once). */
  propose(setup: SetupStep, command: ViewCommand, done: OutcomeCallback): ProposeResult;
}

function vmRules(cluster: ClusterSpec, vmId: string): { affinity: string[]; antiAffinity: string[] } {
  const affinity: string[] = [];
  const antiAffinity: string[] = [];
  for (const rule of cluster.rules) {
    if (!rule.vmIds.includes(vmId)) continue;
    const into = rule.type === "affinity" ? affinity : antiAffinity;
    for (const other of rule.vmIds) if (other !== vmId && !into.includes(other) && into.length < maxRuleTargets) into.push(other);
  }
  return { affinity, antiAffinity };
}

/** The view commands that register the cluster of the scenario (hosts, then VMs with their rules). */
export function registrationCommands(cluster: ClusterSpec): ViewCommand[] {
  const commands: ViewCommand[] = [];
  for (const host of cluster.hosts) commands.push({ id: `register-${host.hostId}`, type: "host.register", hostId: host.hostId, capacity: { ...host.capacity } });
  for (const vm of cluster.vms) {
    commands.push({ id: `add-${vm.vmId}`, type: "vm.add", vmId: vm.vmId, resources: { ...vm.resources }, priority: vm.priority, rules: vmRules(cluster, vm.vmId), desiredState: "running" });
  }
  return commands;
}

export const paxosComponent: ScenarioComponent<PaxosComponentSettings> = {
  name: paxosComponentName,
  provides: [scenarioCapabilities.paxos],

  readSettings(reader) {
    const commitBoundMs = reader.duration("commitBound", { min: 100, max: 600_000, fallback: defaultCommitBoundMs });
    const learnerIdleTicks = reader.oneOf("learnerIdleTicks", ["on", "off"], "off") === "on";
    const maxInFlightSlotsForPartialBatches = reader.integer("partialBatchSlots", {
      min: 1,
      max: defaultPaxosTimings.maxInFlightSlots,
      fallback: defaultPaxosTimings.maxInFlightSlotsForPartialBatches,
    });
    reader.finish();
    return { commitBoundMs, learnerIdleTicks, maxInFlightSlotsForPartialBatches };
  },

  checkCluster(cluster) {
    return cluster.controllerIds.length === 0 ? ["the paxos component needs controllers (add \"controllers\")"] : [];
  },

  start({ world, cluster, log }, settings) {
    const controllerIds = cluster.controllerIds;
    const config = createPaxosConfig(controllerIds, { maxInFlightSlotsForPartialBatches: settings.maxInFlightSlotsForPartialBatches });
    const invariants = new PaxosInvariants(world.seed, controllerIds, () => world.now());
    const controllers = new Map<string, ControllerActor>();
    const learners = new Map<string, LearnerActor>();
    let hostsUpThroughDetection = false;
    const upController = (nodeId: string) => (world.nodeState(nodeId) === "up" ? controllers.get(nodeId) : undefined);

    const leaderId = (): string | undefined => {
      for (const nodeId of controllerIds) {
        const controller = upController(nodeId);
        if (controller !== undefined && controller.status === "running" && controller.holdsLease()) return nodeId;
      }
      return undefined;
    };
    const bestController = (): ControllerActor | undefined => {
      const leader = leaderId();
      let best = leader === undefined ? undefined : upController(leader);
      for (const nodeId of controllerIds) {
        const controller = upController(nodeId);
        if (controller === undefined || controller.status !== "running") continue;
        if (best === undefined || controller.appliedSlots() > best.appliedSlots()) best = controller;
      }
      return best;
    };
    const proposeThrough = (controller: ControllerActor, command: ViewCommand, done?: OutcomeCallback): ProposeResult =>
      controller.propose(command, (outcome) => {
        invariants.clientOutcome(outcome);
        done?.(outcome);
      });
    const propose = (command: ViewCommand, done?: OutcomeCallback): ProposeResult => {
      const leader = leaderId();
      const controller = (leader === undefined ? undefined : upController(leader)) ?? controllerIds.map(upController).find((actor) => actor?.status === "running");
      if (controller === undefined) return { ok: false, error: "no controller is up" };
      return proposeThrough(controller, command, done);
    };

    const api: PaxosComponentApi = {
      config,
      controllerIds,
      controller: (nodeId) => (world.nodeState(nodeId) === "crashed" ? undefined : controllers.get(nodeId)),
      learner: (hostId) => (world.nodeState(hostId) === "crashed" ? undefined : learners.get(hostId)),
      leaderId,
      view: () => bestController()?.view(),
      propose,
      hostsComeUpThroughDetection: () => {
        hostsUpThroughDetection = true;
      },
      invariants,
    };

    // ---- the cluster of cluster.json set up in the view: proposed again (bounded) until the view holds it, whoever crashes meanwhile
    const steps: SetupStep[] = [];
    const step = (command: ViewCommand, ready: (view: View) => boolean, done: (view: View) => boolean) =>
      steps.push({ command, ready, done, attempts: 0, inFlightSinceMs: undefined, via: undefined, finished: false });
    for (const command of registrationCommands(cluster)) {
      if (command.type === "host.register") step(command, () => true, (view) => view.hosts.has(command.hostId));
      else if (command.type === "vm.add") step(command, () => true, (view) => view.vms.has(command.vmId));
    }
    for (const host of cluster.hosts) {
      const hostId = host.hostId;
      step(
        { id: `up-${hostId}`, type: "host.up", hostId, incarnation: 0 },
        (view) => !hostsUpThroughDetection && view.hosts.get(hostId)?.state === "joining",
        (view) => hostsUpThroughDetection || (view.hosts.get(hostId) !== undefined && view.hosts.get(hostId)!.state !== "joining"),
      );
    }
    for (const vm of cluster.vms) {
      const hostId = vm.hostId;
      if (hostId === undefined) continue;
      step(
        { id: `place-${vm.vmId}`, type: "vm.place", vmId: vm.vmId, hostId, expectedPlacementEpoch: 0 },
        (view) => view.vms.has(vm.vmId) && view.hosts.get(hostId)?.state === "up",
        (view) => view.vms.get(vm.vmId)?.placement != null,
      );
    }
    // Steps before this index are all finished (they finish mostly in order): scans start here.
    let firstOpenStep = 0;
    const openSteps = (): SetupStep[] => {
      while (firstOpenStep < steps.length && steps[firstOpenStep]!.finished) firstOpenStep++;
      return steps.slice(firstOpenStep);
    };
    const bigSetup = steps.length > maxSetupProposalsInFlight;
    const feedIntervalMs = bigSetup ? bigSetupFeedIntervalMs : paxosWatchIntervalMs;
    const inFlightNow = (setup: SetupStep): boolean => !setup.finished && setup.inFlightSinceMs !== undefined && world.now() - setup.inFlightSinceMs < setupRetryAfterMs;
    /** A small setup (every scenario) goes through the leader's client, 256 in flight at most. */
    const leaderProposer = (open: readonly SetupStep[]): SetupProposers => {
      let inFlight = open.filter(inFlightNow).length;
      return {
        hasRoom: () => inFlight < maxSetupProposalsInFlight,
        propose: (_setup, command, done) => {
          inFlight++;
          return propose(command, done);
        },
      };
    };
    /** A big setup spreads over every running controller's client, the least busy first (see maxBigSetupProposalsPerClient). */
    const everyControllerProposer = (open: readonly SetupStep[]): SetupProposers => {
      const inFlight = new Map<string, number>();
      for (const nodeId of controllerIds) if (upController(nodeId)?.status === "running") inFlight.set(nodeId, 0);
      for (const setup of open) if (inFlightNow(setup) && setup.via !== undefined && inFlight.has(setup.via)) inFlight.set(setup.via, inFlight.get(setup.via)! + 1);
      const leastBusy = (): string | undefined => {
        let best: string | undefined;
        for (const [nodeId, count] of inFlight) if (count < maxBigSetupProposalsPerClient && (best === undefined || count < inFlight.get(best)!)) best = nodeId;
        return best;
      };
      return {
        hasRoom: () => leastBusy() !== undefined,
        propose: (setup, command, done) => {
          const nodeId = leastBusy()!;
          inFlight.set(nodeId, inFlight.get(nodeId)! + 1);
          setup.via = nodeId;
          return proposeThrough(controllers.get(nodeId)!, command, done);
        },
      };
    };
    const setUpCluster = (): void => {
      const view = api.view();
      if (view !== undefined) {
        const open = openSteps();
        const proposers = bigSetup ? everyControllerProposer(open) : leaderProposer(open);
        for (const setup of open) {
          if (!proposers.hasRoom()) break;
          if (setup.finished) continue;
          if (setup.done(view)) {
            setup.finished = true;
            continue;
          }
          if (inFlightNow(setup)) continue;
          if (!setup.ready(view) || setup.attempts >= maxSetupAttempts) continue;
          setup.attempts++;
          const attempt = setup.attempts;
          // a retried command gets a new id: the view remembers the first one's outcome
          const command = attempt === 1 ? setup.command : { ...setup.command, id: `${setup.command.id}-${attempt}` };
          setup.inFlightSinceMs = world.now();
          const submitted = proposers.propose(setup, command, () => {
            if (setup.attempts === attempt) setup.inFlightSinceMs = undefined;
          });
          if (!submitted.ok) setup.inFlightSinceMs = undefined;
        }
      }
      if (openSteps().some((setup) => !setup.finished && setup.attempts < maxSetupAttempts)) world.schedule(feedIntervalMs, setUpCluster);
    };
    if (steps.length > 0) world.schedule(0, setUpCluster);

    // ---- liveness: a proposal commits within the bound whenever a majority can talk
    const majority = majorityOf(controllerIds.length);
    const connectedMajority = (): string[] | undefined => {
      if (world.fabric.isServerDown) return undefined;
      const up = controllerIds.filter((nodeId) => world.nodeState(nodeId) === "up" && controllers.get(nodeId)?.status === "running");
      for (const nodeId of up) {
        const group = up.filter((other) => other === nodeId || (world.fabric.canReach(nodeId, other) && world.fabric.canReach(other, nodeId)));
        if (group.length >= majority) return group;
      }
      return undefined;
    };
    let probeCount = 0;
    let probe: { id: string; signature: string; sinceMs: number; committedAtMs: number | undefined } | undefined;
    let lastSignature = "";
    const startProbe = (group: readonly string[], signature: string, sinceMs: number): void => {
      const id = `probe-${++probeCount}`;
      const current = { id, signature, sinceMs, committedAtMs: undefined as number | undefined };
      probe = current;
      const proposer = controllers.get(group[0]!)!;
      proposeThrough(proposer, { id, type: "controllers.set", controllerIds: [...controllerIds] }, (outcome: ProposalOutcome) => {
        if (probe !== current) return;
        if (outcome.kind === "committed") {
          current.committedAtMs = world.now();
          log.write("info", probeCommittedEvent, { afterMs: Math.round(world.now() - current.sinceMs), via: proposer.nodeId });
        } else if (outcome.kind === "no-outcome" && world.nodeState(proposer.nodeId) === "up") {
          // the client gave up (no leader for a while): ask again, the bound still counts from the change
          startProbe(group, signature, sinceMs);
        }
      });
    };
    const signatureOf = (group: readonly string[]) => group.map((nodeId) => `${nodeId}#${world.incarnation(nodeId)}`).join(",");

    // One decoded commit and one applied view per slot for all hosts, not one per host (1,000 copies of a 20,000-VM view did not fit in memory).
    const learnerSharing: LearnerSharing = { machine: sharedApplyMachine(viewStateMachine), decodedCommits: new WeakMap() };

    const classify = (message: string) => (message.includes("epoch") ? "paxos.epochs" : "paxos.agreement");

    return {
      api,
      bootController(ports: NodePorts) {
        const nodeId = ports.nodeId;
        const incarnation = world.incarnation(nodeId);
        const clock = world.nodeClock(nodeId);
        const controller = startControllerActor(ports, {
          config,
          // The first boot creates the cluster; a restarted node recovers from its disk.
          bootstrap: incarnation === 1,
          rejections: createRejectionCounter(ports),
          kvMirror: false,
          observer: {
            synced: (syncedBy, records) => invariants.synced(syncedBy, records),
            stepped: (report) => {
              invariants.learnerStepped(nodeId, incarnation, report.beforeSlot, report.state.learner, report.applied);
              const proposer = report.state.proposer;
              const leaseEndsAtGlobalMs = holdsLease(proposer, report.nowMs) ? world.now() + (proposer.leader!.leaseUntilMs - report.nowMs) / (1 + clock.driftPpm / 1e6) : -1;
              invariants.lease(nodeId, leaseEndsAtGlobalMs);
            },
          },
          onFatal: (error) => invariants.fail(`controller ${nodeId} stopped: ${error}`),
        });
        controllers.set(nodeId, controller);
        return {
          stop: () => {
            invariants.crashed(nodeId);
            controller.stop();
          },
        };
      },
      bootHost(ports: NodePorts) {
        const nodeId = ports.nodeId;
        const incarnation = world.incarnation(nodeId);
        const learner = startLearnerActor(ports, {
          config,
          rejections: createRejectionCounter(ports),
          sharing: learnerSharing,
          idleTicks: settings.learnerIdleTicks,
          observer: { stepped: (report) => invariants.learnerStepped(nodeId, incarnation, report.beforeSlot, report.state, report.applied) },
        });
        learners.set(nodeId, learner);
        return { stop: () => learner.stop() };
      },
      invariants: [
        ...["paxos.agreement", "paxos.epochs"].map((name) => ({
          name,
          everyMs: paxosWatchIntervalMs,
          check(_nowMs: number, violation: (subject: string, detail: string) => void) {
            invariants.violations.forEach((message, index) => {
              if (classify(message) === name) violation(`violation-${index + 1}`, message);
            });
          },
        })),
        {
          name: "paxos.commits",
          everyMs: commitCheckMs,
          check(nowMs, violation) {
            const group = connectedMajority();
            const signature = group === undefined ? "" : signatureOf(group);
            if (signature !== lastSignature) {
              lastSignature = signature;
              probe = undefined;
              if (group !== undefined) startProbe(group, signature, nowMs);
            }
            if (probe !== undefined && probe.committedAtMs === undefined && nowMs - probe.sinceMs > settings.commitBoundMs) {
              violation("view", `no proposal committed within ${formatDurationMs(settings.commitBoundMs)} although ${probe.signature} can talk`);
            }
          },
        },
      ],
      keepLogLine: (line) => line.event === "paxos.leadership" && line.text.includes(" role=leader "),
      finish() {
        const view = api.view();
        let hostsUp = 0;
        let vmsPlaced = 0;
        for (const host of view?.hosts.values() ?? []) if (host.state === "up") hostsUp++;
        for (const vm of view?.vms.values() ?? []) if (vm.placement !== null) vmsPlaced++;
        log.write("info", "paxos.summary", {
          slots: invariants.slotsChosen,
          epoch: view?.epoch ?? -1,
          hostsUp,
          vmsPlaced,
          leader: leaderId() ?? "none",
          probes: probeCount,
        });
      },
    };
  },
};

/**
 * The HA manager on a controller node: the recovery planner
 * (machines/manager/managerMachine.ts) run as an actor, fed with
 *
 * - `leadership` — whether this controller is the Paxos leader and until when
 *   its lease runs, read from the controller's core every `tickIntervalMs`
 *   (the planner is active only while both hold);
 * - `view` — every committed view this controller applied (coalesced: the
 *   latest one per clock tick);
 * - `host-failure-declared` — from the failure detector on this controller
 *   (`hostFailureDeclared`, wired to the detector's `onProposal`);
 * - `vm-report`, `guest-report`, `host-capabilities` — hosts' reports on
 *   `mgr.report` (actors/hostCommands/hostReports.ts), decoded and validated,
 *   a report whose sender is not the host it names refused and counted;
 * - `host-command-result` — each member outcome of a command multicast;
 * - `proposal-result` — refusals from the proposal client;
 * - `tick` — every `tickIntervalMs`.
 *
 * Its named actions go out as: `proposeViewCommand` → the controller's
 * proposal client; `sendHostCommand` → command multicast to the target host
 * (kind `vm.start` …, msgpackr payload, hostCommandMessages.ts);
 * `note` → a log line `manager.<note>` and `haring_manager_notes_total`.
 *
 * `propose` is the operator's way in (vm add, maintenance …): on the active
 * manager only, through admission control (admissionGate.ts).
 */
import { createActorHost, type ActorHost } from "../actorHost.ts";
import type { RejectionCounter } from "../codec/rejectionCounter.ts";
import { createEffectBinding } from "../effectBinding.ts";
import type { TimerId } from "../ports/clock.ts";
import type { Subscription } from "../ports/network.ts";
import type { NodePorts } from "../ports/nodePorts.ts";
import type { LogLevel } from "../ports/telemetry.ts";
import type { ControllerActor, ProposalOutcome } from "../paxos/controllerActor.ts";
import { decodeHostCommandResult, encodeHostCommand, type VmDefinitionHint } from "../hostCommands/hostCommandMessages.ts";
import { hostReportMessages, hostReportSubject } from "../hostCommands/hostReports.ts";
import type { ProposeHostFailed } from "../../machines/detection/hostProposals.ts";
import { defaultManagerConfig, managerConfigProblems, type ManagerConfig } from "../../machines/manager/managerConfig.ts";
import { managerMachine, type ManagerEvent, type ManagerNoteParams } from "../../machines/manager/managerMachine.ts";
import { maxHeldInitialPlacements, plannerSnapshot, type HostCommand, type ManagerInput } from "../../machines/manager/recoveryPlanner.ts";
import type { ViewCommand } from "../../machines/view/viewCommands.ts";
import type { View } from "../../machines/view/viewTypes.ts";
import { createAdmissionGate, type AdmissionGate } from "./admissionGate.ts";

/** Structurally the command multicaster of actors/groupcomm/commandMulticast.ts. */
export type HostCommandOutcome =
  | { readonly memberId: string; readonly status: "applied"; readonly result: Uint8Array }
  | { readonly memberId: string; readonly status: "failed"; readonly error: string }
  | { readonly memberId: string; readonly status: "timed-out" };

export interface HostCommandSender {
  send(
    members: readonly string[],
    command: { readonly commandId: string; readonly kind: string; readonly payload: Uint8Array },
    options: { readonly timeoutMs: number },
    done: (outcomes: readonly HostCommandOutcome[]) => void,
  ): void;
}

export const defaultManagerTickIntervalMs = 100;
/** A host command with no outcome yet is sent again (same id) this often, until the command timeout. */
export const hostCommandResendMs = 2_000;
export const managerHostCommandResendsMetric = "haring_manager_host_command_resends_total";
export const managerNotesMetric = "haring_manager_notes_total";
export const managerHostCommandsMetric = "haring_manager_host_commands_total";
export const managerReportsRefusedMetric = "haring_manager_reports_refused_total";
/** Events waiting for the planner; reports from thousands of hosts after a rack failure fit. */
export const defaultManagerMailboxDepth = 16_384;

export interface ManagerActorOptions {
  readonly controller: ControllerActor;
  readonly commands: HostCommandSender;
  readonly rejections: RejectionCounter;
  readonly config?: Partial<ManagerConfig>;
  readonly tickIntervalMs?: number;
  /** What the view does not hold about a VM but a host needs to define it (default: full virtualization). */
  readonly vmDefinition?: (vmId: string) => VmDefinitionHint;
  /** Every note, after it is logged (for tests and the scenario component). */
  readonly onNote?: (note: ManagerNoteParams) => void;
  /** Every member outcome of a host command (for invariant checks). */
  readonly onHostCommandOutcome?: (commandId: string, hostId: string, status: HostCommandOutcome["status"]) => void;
}

export type OperatorOutcome = { readonly ok: true; readonly outcome: ProposalOutcome } | { readonly ok: false; readonly error: string };

export interface ManagerActor {
  readonly host: ActorHost<typeof boundManagerMachine>;
  /** From this controller's failure detector: the host's lease and VMs are surely gone by `leaseExpiresByMs`. */
  hostFailureDeclared(proposal: Omit<ProposeHostFailed, "type">): void;
  /** These VMs are placed by someone else at first (an import of running VMs): no initial placement from the manager for `forMs` (0 releases them). */
  holdInitialPlacement(vmIds: readonly string[], forMs: number): void;
  /** Whether the planner acts now (this controller leads with a lease). */
  isActive(): boolean;
  /** An operator's command (vm.add, vm.remove, maintenance …), admitted first; `done` once, never inside this call. */
  propose(command: ViewCommand, done: (outcome: OperatorOutcome) => void): void;
  snapshot(): ReturnType<typeof plannerSnapshot> | undefined;
  stop(): void;
}

interface ManagerEffects {
  proposeViewCommand(command: ViewCommand): void;
  sendHostCommand(command: HostCommand): void;
  note(params: ManagerNoteParams): void;
}

const managerEffects = createEffectBinding<ManagerEffects>("manager");

const boundManagerMachine = managerMachine.provide({
  actions: {
    proposeViewCommand: ({ self }, params) => managerEffects.of(self).proposeViewCommand(params.command),
    sendHostCommand: ({ self }, params) => managerEffects.of(self).sendHostCommand(params.command),
    note: ({ self }, params) => managerEffects.of(self).note(params),
  },
});

/** 32-bit FNV-1a in base 36: a short stand-in for a long node id inside a command id. */
function fnv1a(text: string): string {
  let hash = 0x811c9dc5;
  for (let index = 0; index < text.length; index++) {
    hash ^= text.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash.toString(36);
}

const warnNotes: ReadonlySet<string> = new Set(["placement-refused", "pending", "start-failed", "crash-loop-relocate", "reset-limit", "evacuation-stuck", "configuration-differs"]);

export function startManagerActor(ports: NodePorts, options: ManagerActorOptions): ManagerActor {
  const config: ManagerConfig = { ...defaultManagerConfig, ...options.config };
  const problems = managerConfigProblems(config);
  if (problems.length > 0) throw new RangeError(`manager config: ${problems.join("; ")}`);
  const { controller } = options;
  const tickIntervalMs = options.tickIntervalMs ?? defaultManagerTickIntervalMs;
  // Command ids must never repeat (members answer a known id from their ledger without applying it), across
  // restarts of this controller too: the leader's ballot round is never reused (the proposer persists it),
  // and commands are sent only while leading.
  const nodeTag = ports.nodeId.length <= 24 ? ports.nodeId : fnv1a(ports.nodeId);
  let commandSequence = 0;
  let stopped = false;
  let tickTimer: TimerId | undefined;
  let viewTimer: TimerId | undefined;
  let leading = false;
  let leaseEnd = 0;
  let lastView: View | undefined;
  /** vmId → until when its initial placement is held, replayed into a planner restarted after an error. */
  const holds = new Map<string, number>();
  // The view's F is the one its transition function applies; the configured one until the view has one.
  const gate: AdmissionGate = createAdmissionGate((view) => view.hostFailuresToTolerate ?? config.hostFailuresToTolerate);

  const send = (event: ManagerEvent): void => {
    if (!stopped) host.send(event);
  };
  const now = (): number => ports.clock.now();

  const effects: ManagerEffects = {
    proposeViewCommand(command) {
      const submitted = controller.propose(command, (outcome) => {
        if (outcome.kind !== "committed") send({ type: "proposal-result", nowMs: now(), commandId: outcome.commandId, committed: false, reason: outcome.kind === "rejected" ? outcome.reason : `no outcome: ${outcome.reason}` });
      });
      if (!submitted.ok) send({ type: "proposal-result", nowMs: now(), commandId: command.id, committed: false, reason: submitted.error });
    },
    sendHostCommand(command) {
      const view = controller.view();
      const vm = view.vms.get(command.vmId);
      const commandId = `m${controller.leadership().ballot.round.toString(36)}-${nodeTag}-${(++commandSequence).toString(36)}`;
      // The command is for the host incarnation this view knows: delayed past a failure and rejoin, it is refused.
      const hostIncarnation = view.hosts.get(command.hostId)?.incarnation ?? 0;
      const encoded = encodeHostCommand(commandId, command, hostIncarnation, vm?.resources ?? { cpu: 1, memoryMiB: 1 }, options.vmDefinition?.(command.vmId) ?? { virtualization: "full" });
      ports.metrics.increment(managerHostCommandsMetric, { action: command.action });
      ports.log.write("info", "manager.host-command", {
        commandId,
        action: command.action,
        host: command.hostId,
        vm: command.vmId,
        placementEpoch: command.placementEpoch,
        ...(command.action === "migrate" ? { target: command.targetHostId } : {}),
      });
      const deadlineMs = now() + config.hostCommandTimeoutMs;
      // Results travel on core NATS and can be lost: the same command (same id) is sent again every
      // hostCommandResendMs until an outcome comes or the command timeout runs out. A member applies an id
      // at most once and answers a repeat with the result it stored.
      const attempt = (): void => {
        const timeoutMs = Math.max(1, Math.min(hostCommandResendMs, deadlineMs - now()));
        options.commands.send([command.hostId], encoded, { timeoutMs }, (outcomes) => {
          const outcome = outcomes.find((candidate) => candidate.memberId === command.hostId);
          if (outcome === undefined || stopped) return;
          if (outcome.status === "timed-out" && now() < deadlineMs) {
            ports.metrics.increment(managerHostCommandResendsMetric);
            attempt();
            return;
          }
          options.onHostCommandOutcome?.(commandId, command.hostId, outcome.status);
          const error = outcome.status === "failed" ? outcome.error : outcome.status === "timed-out" ? "no result in time" : undefined;
          if (outcome.status === "applied") {
            const detail = decodeHostCommandResult(outcome.result);
            ports.log.write("info", "manager.host-command-applied", { commandId, host: command.hostId, vm: command.vmId, detail });
          } else ports.log.write("warn", "manager.host-command-failed", { commandId, host: command.hostId, vm: command.vmId, error: error ?? "" });
          send({
            type: "host-command-result",
            nowMs: now(),
            hostId: command.hostId,
            vmId: command.vmId,
            action: command.action,
            placementEpoch: command.placementEpoch,
            ok: outcome.status === "applied",
            ...(error === undefined ? {} : { error }),
          });
        });
      };
      attempt();
    },
    note(params) {
      ports.metrics.increment(managerNotesMetric, { note: params.note });
      // A failed migration, and a pending set that is not empty, are worth a warning; their all-clear is not.
      const level: LogLevel =
        (warnNotes.has(params.note) && !(params.note === "pending" && params.fields.count === 0)) || (params.note === "migration-finished" && params.fields.ok === false) ? "warn" : "info";
      ports.log.write(level, `manager.${params.note}`, params.fields);
      options.onNote?.(params);
    },
  };

  const host = createActorHost(boundManagerMachine, ports, {
    name: `manager/${ports.nodeId}`,
    kind: "manager",
    input: { config },
    rejections: options.rejections,
    limits: { maxMailboxDepth: defaultManagerMailboxDepth },
    onActorCreated: (actor) => managerEffects.bind(actor, effects),
  });
  host.start();
  host.onSnapshot((snapshot) => {
    // A planner restarted after an error starts inactive and without a view: give it both again.
    if (snapshot.context.steps !== 0) return;
    for (const [vmId, untilMs] of holds) send({ type: "hold-initial-placement", nowMs: now(), vmIds: [vmId], untilMs });
    if (lastView !== undefined) send({ type: "view", nowMs: now(), view: lastView });
    if (leading) send({ type: "leadership", nowMs: now(), isLeader: true, leaseValidUntilMs: leaseEnd });
  });

  host.listen(hostReportSubject(ports.clusterId), hostReportMessages, {
    toEvent: (message) => {
      const body = message.body;
      if (message.from !== body.hostId) {
        ports.metrics.increment(managerReportsRefusedMetric, { reason: "sender-mismatch" });
        return { type: "haring.resume" };
      }
      switch (message.t) {
        case "host.vm-report": {
          const report = message.body as { hostId: string; incarnation: number; vmId: string; health: Extract<ManagerInput, { type: "vm-report" }>["health"] };
          return { type: "vm-report", nowMs: now(), hostId: report.hostId, incarnation: report.incarnation, vmId: report.vmId, health: report.health };
        }
        case "host.guest-report": {
          const report = message.body as { hostId: string; incarnation: number; vmId: string; health: Extract<ManagerInput, { type: "guest-report" }>["health"] };
          return { type: "guest-report", nowMs: now(), hostId: report.hostId, incarnation: report.incarnation, vmId: report.vmId, health: report.health };
        }
        default: {
          const capabilities = message.body as { hostId: string; supportsLiveMigration: boolean };
          return { type: "host-capabilities", nowMs: now(), hostId: capabilities.hostId, supportsLiveMigration: capabilities.supportsLiveMigration };
        }
      }
    },
  });

  const followLeadership = (): void => {
    const core = controller.core();
    const leader = core?.proposer.role === "leader" ? core.proposer.leader : null;
    const nowMs = now();
    const end = controller.status === "running" && leader !== null && leader.leaseUntilMs > nowMs ? leader.leaseUntilMs : 0;
    if (end === leaseEnd && (end > 0) === leading) return;
    leaseEnd = end;
    leading = end > 0;
    send({ type: "leadership", nowMs, isLeader: leading, leaseValidUntilMs: end });
  };

  const tick = (): void => {
    tickTimer = undefined;
    if (stopped) return;
    followLeadership();
    send({ type: "tick", nowMs: now() });
    tickTimer = ports.clock.setTimeout(tick, tickIntervalMs);
  };

  const offerView = (view: View): void => {
    lastView = view;
    if (viewTimer !== undefined) return;
    // The latest view per tick: a burst of commits costs the planner one scan.
    viewTimer = ports.clock.setTimeout(() => {
      viewTimer = undefined;
      if (stopped || lastView === undefined) return;
      followLeadership();
      send({ type: "view", nowMs: now(), view: lastView });
    }, 0);
  };

  const applied: Subscription = controller.onApplied((_applied, view) => offerView(view));
  const leadership: Subscription = controller.onLeadership(() => followLeadership());
  offerView(controller.view());
  tickTimer = ports.clock.setTimeout(tick, 0);

  return {
    host,
    hostFailureDeclared(proposal) {
      // The view records the failure against its own number for the host (a first life is 0 there), as viewCommandsFor does.
      const viewHost = controller.view().hosts.get(proposal.hostId);
      const incarnation = viewHost !== undefined && viewHost.incarnation <= proposal.incarnation ? viewHost.incarnation : proposal.incarnation;
      send({ type: "host-failure-declared", nowMs: now(), hostId: proposal.hostId, incarnation, leaseExpiresByMs: proposal.leaseExpiresByMs });
    },
    holdInitialPlacement(vmIds, forMs) {
      const untilMs = now() + forMs;
      for (const vmId of vmIds) {
        holds.delete(vmId);
        if (forMs > 0 && holds.size < maxHeldInitialPlacements) holds.set(vmId, untilMs);
      }
      send({ type: "hold-initial-placement", nowMs: now(), vmIds: [...vmIds], untilMs });
    },
    isActive() {
      return host.getSnapshot()?.context.planner.active ?? false;
    },
    propose(command, done) {
      const answer = (outcome: OperatorOutcome): void => void ports.clock.setTimeout(() => done(outcome), 0);
      if (stopped) return answer({ ok: false, error: "the manager is stopped" });
      if (!controller.holdsLease()) {
        const leaderId = controller.leadership().leaderId;
        return answer({ ok: false, error: `controller ${ports.nodeId} is not the leader${leaderId === "" ? "" : `; ask ${leaderId}`}` });
      }
      const decision = gate.check(controller.view(), command, now());
      if (!decision.admitted) {
        ports.metrics.increment(managerNotesMetric, { note: "admission-refused" });
        ports.log.write("warn", "manager.admission-refused", { commandId: command.id, error: decision.error });
        return answer({ ok: false, error: decision.error });
      }
      const submitted = controller.propose(command, (outcome) => {
        gate.resolved(command.id);
        done({ ok: true, outcome });
      });
      if (!submitted.ok) {
        gate.resolved(command.id);
        answer({ ok: false, error: submitted.error });
      }
    },
    snapshot() {
      const context = host.getSnapshot()?.context;
      return context === undefined ? undefined : plannerSnapshot(context.planner);
    },
    stop() {
      if (stopped) return;
      stopped = true;
      if (tickTimer !== undefined) ports.clock.clearTimeout(tickTimer);
      if (viewTimer !== undefined) ports.clock.clearTimeout(viewTimer);
      applied.unsubscribe();
      leadership.unsubscribe();
      host.dispose();
    },
  };
}

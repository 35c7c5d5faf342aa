/**
 * Binds the leader-side failure detector to a controller's ports. It listens
 * on `mon.report` on every controller but answers only while the controller
 * says it is the Paxos leader with a lease (`setLeadership`), so a request
 * gets exactly one answer, from the leader. Proposals go to `onProposal`: the
 * Paxos wiring maps them to view commands (machines/detection/hostProposals.ts,
 * `viewCommandsFor`); until then tests record them.
 */
import { createActorHost, type ActorHost } from "../actorHost.ts";
import type { RejectionCounter } from "../codec/rejectionCounter.ts";
import { createEffectBinding } from "../effectBinding.ts";
import type { NodePorts } from "../ports/nodePorts.ts";
import type { TimerId } from "../ports/clock.ts";
import { clusterSubjects } from "../subjects.ts";
import type { FailureDetectorConfig } from "../../machines/detection/detectionConfig.ts";
import { failureDetectorMachine, type DetectorNoteParams, type ReplyAuthorityParams } from "../../machines/detection/failureDetectorMachine.ts";
import type { HostProposal, ProposeHostFailed, ProposeHostUp } from "../../machines/detection/hostProposals.ts";
import type { HostState } from "../../machines/view/viewTypes.ts";
import { heartbeatMessages } from "../heartbeat/heartbeatMessages.ts";

export interface FailureDetectorOptions {
  readonly config: FailureDetectorConfig;
  /** How often the detector looks for silent hosts and due declarations. */
  readonly tickIntervalMs: number;
  readonly rejections: RejectionCounter;
  readonly onProposal: (proposal: HostProposal) => void;
}

export interface FailureDetectorHandle {
  readonly host: ActorHost<typeof boundDetectorMachine>;
  /** From the Paxos controller, on every change and every lease renewal: `isLeader` with the lease's end on this node's clock. */
  setLeadership(isLeader: boolean, leaseValidUntilMs: number): void;
  /** From the committed view: hosts it expects (so one that died unheard is still found) and hosts it holds failed. */
  noteViewHost(hostId: string, state: HostState, incarnation: number): void;
  /** From the committed view: the host was removed (`host.remove`); the detector forgets it. */
  noteViewHostRemoved(hostId: string): void;
  stop(): void;
}

export const hostProposalsMetric = "haring_detector_proposals_total";
export const suspicionsMetric = "haring_detector_suspicions_total";

interface DetectorEffects {
  replyAuthority(params: ReplyAuthorityParams): void;
  proposeHostFailed(params: Omit<ProposeHostFailed, "type">): void;
  proposeHostUp(params: Omit<ProposeHostUp, "type">): void;
  note(params: DetectorNoteParams): void;
}

const detectorEffects = createEffectBinding<DetectorEffects>("failure detector");

const boundDetectorMachine = failureDetectorMachine.provide({
  actions: {
    replyAuthority: ({ self }, params) => detectorEffects.of(self).replyAuthority(params),
    proposeHostFailed: ({ self }, params) => detectorEffects.of(self).proposeHostFailed(params),
    proposeHostUp: ({ self }, params) => detectorEffects.of(self).proposeHostUp(params),
    note: ({ self }, params) => detectorEffects.of(self).note(params),
  },
});

const noteLevels: Readonly<Record<string, "info" | "warn">> = { "host.declared": "warn", "host.redeclared": "warn", "host.superseded": "warn", "host.untracked": "warn" };

export function startFailureDetector(ports: NodePorts, options: FailureDetectorOptions): FailureDetectorHandle {
  const selfId = ports.nodeId;
  const subjects = clusterSubjects(ports.clusterId);
  const termNonces = ports.random.fork("detector-term");
  let correlation = 0;
  let tickTimer: TimerId | undefined;
  let stopped = false;
  // Replayed into a machine restarted after an error, which starts inactive (and then waits out a full term start).
  let lastLeadership: { isLeader: boolean; leaseValidUntilMs: number } = { isLeader: false, leaseValidUntilMs: 0 };

  const effects: DetectorEffects = {
    replyAuthority: ({ replyTo, grant }) => {
      if (replyTo === "") return;
      ports.network.publish(replyTo, heartbeatMessages.encode("mon.authority", selfId, `authority-${++correlation}`, grant));
    },
    proposeHostFailed: (params) => {
      ports.metrics.increment(hostProposalsMetric, { type: "host-failed" });
      options.onProposal({ type: "host-failed", ...params });
    },
    proposeHostUp: (params) => {
      ports.metrics.increment(hostProposalsMetric, { type: "host-up" });
      options.onProposal({ type: "host-up", ...params });
    },
    note: ({ note, fields }) => {
      if (note === "host.suspected" || note === "host.superseded") ports.metrics.increment(suspicionsMetric);
      ports.log.write(noteLevels[note] ?? "info", `detector.${note}`, fields);
    },
  };

  const host = createActorHost(boundDetectorMachine, ports, {
    name: `detector/${selfId}`,
    kind: "failure-detector",
    input: { selfId, config: options.config },
    rejections: options.rejections,
    onActorCreated: (actor) => detectorEffects.bind(actor, effects),
  });
  host.start();

  const sendLeadership = (): void => {
    const nonce = `${termNonces.int(0x7fff_ffff).toString(36)}${termNonces.int(0x7fff_ffff).toString(36)}`;
    host.send({ type: "leadership.changed", nowMs: ports.clock.now(), ...lastLeadership, termNonce: nonce });
  };
  host.onSnapshot((snapshot) => {
    // A restarted machine has no term: give it the controller's word again.
    if (snapshot.context.steps === 0 && lastLeadership.isLeader) sendLeadership();
  });

  host.listen(subjects.monitorReport, heartbeatMessages, {
    allowedTypes: ["mon.digest"],
    toEvent: (message, netMessage) => ({ type: "digest.received", nowMs: ports.clock.now(), replyTo: netMessage.reply ?? "", digest: message.body }),
  });

  const tick = (): void => {
    tickTimer = undefined;
    if (stopped) return;
    host.send({ type: "tick", nowMs: ports.clock.now() });
    tickTimer = ports.clock.setTimeout(tick, options.tickIntervalMs);
  };
  tickTimer = ports.clock.setTimeout(tick, options.tickIntervalMs);

  return {
    host,
    setLeadership(isLeader, leaseValidUntilMs) {
      lastLeadership = { isLeader, leaseValidUntilMs };
      sendLeadership();
    },
    noteViewHost(hostId, state, incarnation) {
      host.send({ type: "view.host", nowMs: ports.clock.now(), hostId, state, incarnation });
    },
    noteViewHostRemoved(hostId) {
      host.send({ type: "view.host-removed", nowMs: ports.clock.now(), hostId });
    },
    stop() {
      stopped = true;
      if (tickTimer !== undefined) ports.clock.clearTimeout(tickTimer);
      tickTimer = undefined;
      host.dispose();
    },
  };
}

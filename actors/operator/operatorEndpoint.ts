/**
 * The operator's way into a running cluster: a request/reply endpoint on
 * every controller that runs a manager (wired in
 * actors/manager/managerOnController.ts).
 *
 * It listens on `haring.<cluster>.op` in the queue group
 * `operatorQueueGroup` (one controller takes each request: a client that
 * knows no leader asks there) and on `haring.<cluster>.op.<controller>`
 * (this one, for a client sent here). The controller that leads with the
 * lease turns the request into its view command and hands it to the
 * manager's `propose` (admission control, then Paxos), and answers with the
 * outcome; any other answers `not-leader` naming the leader it knows, so the
 * client can ask there. Hostile requests (bad bytes, unknown op, bad ids,
 * oversized, no reply subject) are counted like any refused message and,
 * where there is a reply subject, answered `invalid` with the reason.
 */
import type { RejectionCounter } from "../codec/rejectionCounter.ts";
import type { Subscription } from "../ports/network.ts";
import type { NodePorts } from "../ports/nodePorts.ts";
import { clusterSubjects } from "../subjects.ts";
import type { ProposalOutcome } from "../../machines/paxos/proposalClient.ts";
import type { ViewCommand } from "../../machines/view/viewCommands.ts";
import { viewCommandFor } from "./operatorCommand.ts";
import { decodeOperatorRequest, encodeOperatorReply, encodingOf, maxOperatorReasonChars, type OperatorReply, type WireEncoding } from "./operatorMessages.ts";

export const operatorQueueGroup = "operator";
/** Requests proposed and not yet answered, at most; more are refused until some are answered. */
export const maxOperatorRequestsInFlight = 64;
export const operatorRequestsMetric = "haring_operator_requests_total";

/** Structurally ManagerActor's `propose` (actors/manager/managerActor.ts). */
export interface OperatorProposer {
  propose(command: ViewCommand, done: (outcome: { readonly ok: true; readonly outcome: ProposalOutcome } | { readonly ok: false; readonly error: string }) => void): void;
}

/** Structurally the controller actor's leadership view. */
export interface OperatorLeadership {
  holdsLease(): boolean;
  leadership(): { readonly leaderId: string };
}

export interface OperatorEndpointOptions {
  readonly controller: OperatorLeadership;
  readonly manager: OperatorProposer;
  readonly rejections: RejectionCounter;
  readonly maxInFlight?: number;
}

export interface OperatorEndpoint {
  readonly inFlight: number;
  stop(): void;
}

function bounded(reason: string): string {
  return reason.length > maxOperatorReasonChars ? `${reason.slice(0, maxOperatorReasonChars - 1)}…` : reason;
}

function replyFor(requestId: string, outcome: ProposalOutcome): OperatorReply {
  switch (outcome.kind) {
    case "committed":
      return { kind: "committed", requestId, commandId: outcome.commandId, slot: outcome.slot };
    case "rejected":
      return { kind: "rejected", requestId, commandId: outcome.commandId, slot: outcome.slot, reason: bounded(outcome.reason) };
    case "no-outcome":
      return { kind: "no-outcome", requestId, commandId: outcome.commandId, reason: bounded(outcome.reason) };
  }
}

export function startOperatorEndpoint(ports: NodePorts, options: OperatorEndpointOptions): OperatorEndpoint {
  const subjects = clusterSubjects(ports.clusterId);
  const maxInFlight = options.maxInFlight ?? maxOperatorRequestsInFlight;
  let inFlight = 0;
  let stopped = false;

  const notLeader = (requestId: string): OperatorReply => {
    const leaderId = options.controller.leadership().leaderId;
    // A leader still waiting for its lease names itself: the client should wait, not come back here at once.
    return { kind: "not-leader", requestId, leaderId: leaderId === ports.nodeId ? "" : leaderId };
  };

  const handle = (subject: string, data: Uint8Array, replyTo: string | undefined): void => {
    if (replyTo === undefined) {
      options.rejections.count(subject, { reason: "malformed", detail: "an operator request without a reply subject" });
      return;
    }
    const encoding: WireEncoding = encodingOf(data);
    const answer = (op: string, cid: string, reply: OperatorReply): void => {
      ports.metrics.increment(operatorRequestsMetric, { op, answer: reply.kind });
      if (stopped) return;
      ports.network.publish(replyTo, encodeOperatorReply(ports.nodeId, cid, reply, encoding));
    };
    const decoded = decodeOperatorRequest(data);
    if (!decoded.ok) {
      options.rejections.count(subject, decoded);
      answer("invalid", "", { kind: "invalid", requestId: "", reason: `${decoded.reason}: ${decoded.detail}` });
      return;
    }
    const { body: request, from, cid } = decoded.message;
    const { requestId, op } = request;
    if (!options.controller.holdsLease()) return answer(op, cid, notLeader(requestId));
    if (inFlight >= maxInFlight) return answer(op, cid, { kind: "refused", requestId, reason: `${maxInFlight} operator requests are in progress on ${ports.nodeId}; retry later` });
    const command = viewCommandFor(from, request);
    inFlight++;
    options.manager.propose(command, (result) => {
      inFlight--;
      const reply: OperatorReply = result.ok ? replyFor(requestId, result.outcome) : options.controller.holdsLease() ? { kind: "refused", requestId, reason: bounded(result.error) } : notLeader(requestId);
      ports.log.write(reply.kind === "committed" ? "info" : "warn", "operator.request", {
        op,
        from,
        requestId,
        commandId: command.id,
        answer: reply.kind,
        ...(reply.kind === "committed" || reply.kind === "rejected" ? { slot: reply.slot } : {}),
        ...("reason" in reply ? { reason: reply.reason } : {}),
      });
      answer(op, cid, reply);
    });
  };

  const subscriptions: Subscription[] = [
    ports.network.subscribe(subjects.operator, (message) => handle(message.subject, message.data, message.reply), { queue: operatorQueueGroup }),
    ports.network.subscribe(subjects.operatorAt(ports.nodeId), (message) => handle(message.subject, message.data, message.reply)),
  ];

  return {
    get inFlight() {
      return inFlight;
    },
    stop() {
      if (stopped) return;
      stopped = true;
      for (const subscription of subscriptions) subscription.unsubscribe();
    },
  };
}

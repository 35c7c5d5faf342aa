/**
 * Asks the operator endpoint (operatorEndpoint.ts) until the leading
 * controller answers: first any controller (the queue group), then the leader
 * a `not-leader` answer names; no responders, a timeout, an unreadable reply
 * or no known leader wait `operatorRetryDelayMs` and ask any controller
 * again. Every attempt carries the same request id, so a request that was
 * applied but whose answer was lost is not applied twice (the view answers a
 * repeat with its first outcome). Bounded by attempts and by a total time.
 */
import type { Clock } from "../ports/clock.ts";
import type { Network } from "../ports/network.ts";
import { clusterSubjects } from "../subjects.ts";
import { decodeOperatorReply, encodeOperatorRequest, type OperatorReply, type OperatorRequest } from "./operatorMessages.ts";

/** One attempt's wait for an answer: longer than the controller's proposal client takes to give up (about 5 s). */
export const operatorAttemptTimeoutMs = 8_000;
export const operatorRetryDelayMs = 300;
export const maxOperatorAttempts = 12;
/** Past this, no new attempt starts. */
export const operatorTotalTimeoutMs = 30_000;

export interface OperatorClientLimits {
  readonly attemptTimeoutMs: number;
  readonly retryDelayMs: number;
  readonly maxAttempts: number;
  readonly totalTimeoutMs: number;
}

export const defaultOperatorClientLimits: OperatorClientLimits = {
  attemptTimeoutMs: operatorAttemptTimeoutMs,
  retryDelayMs: operatorRetryDelayMs,
  maxAttempts: maxOperatorAttempts,
  totalTimeoutMs: operatorTotalTimeoutMs,
};

export interface OperatorClientPorts {
  readonly nodeId: string;
  readonly clusterId: string;
  readonly network: Network;
  readonly clock: Clock;
}

export type OperatorClientResult =
  | { readonly ok: true; readonly reply: OperatorReply; readonly controllerId: string; readonly attempts: number }
  | { readonly ok: false; readonly error: string; readonly attempts: number };

/** `done` is called exactly once, never inside this call. */
export function requestOperator(ports: OperatorClientPorts, request: OperatorRequest, done: (result: OperatorClientResult) => void, limits: Partial<OperatorClientLimits> = {}): void {
  const { attemptTimeoutMs, retryDelayMs, maxAttempts, totalTimeoutMs } = { ...defaultOperatorClientLimits, ...limits };
  const subjects = clusterSubjects(ports.clusterId);
  const payload = encodeOperatorRequest(ports.nodeId, request);
  const deadlineMs = ports.clock.now() + totalTimeoutMs;
  let attempts = 0;
  let lastProblem = "";

  const attempt = (target: string | undefined, lastAsked: string | undefined): void => {
    if (attempts >= maxAttempts || ports.clock.now() >= deadlineMs) {
      done({ ok: false, error: `no answer from the leading controller after ${attempts} attempts: ${lastProblem}`, attempts });
      return;
    }
    attempts++;
    const subject = target === undefined ? subjects.operator : subjects.operatorAt(target);
    const timeoutMs = Math.max(1, Math.min(attemptTimeoutMs, deadlineMs - ports.clock.now()));
    ports.network.request(subject, payload, { timeoutMs }, (outcome) => {
      const later = (problem: string): void => {
        lastProblem = problem;
        ports.clock.setTimeout(() => attempt(undefined, lastAsked), retryDelayMs);
      };
      if (!outcome.ok) return later(outcome.failure === "no-responders" ? `no controller answers on ${subject}` : `${outcome.failure} on ${subject}`);
      const decoded = decodeOperatorReply(outcome.message.data);
      if (!decoded.ok) return later(`unreadable reply on ${subject}: ${decoded.reason}: ${decoded.detail}`);
      const reply = decoded.message.body;
      const from = decoded.message.from;
      if (reply.kind !== "invalid" && reply.requestId !== request.requestId) return later(`a reply from ${from} to another request`);
      if (reply.kind !== "not-leader") return done({ ok: true, reply, controllerId: from, attempts });
      if (reply.leaderId === "") return later(`${from} knows no leader yet`);
      lastProblem = `${from} is not the leader; it names ${reply.leaderId}`;
      // Two controllers naming each other (a leader change under way): wait instead of bouncing.
      if (reply.leaderId === lastAsked || reply.leaderId === from) return later(lastProblem);
      ports.clock.setTimeout(() => attempt(reply.leaderId, from), 0);
    });
  };
  ports.clock.setTimeout(() => attempt(undefined, undefined), 0);
}

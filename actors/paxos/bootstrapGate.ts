/**
 * The bootstrap gate of a controller that starts on an empty disk with
 * `bootstrap`: before it creates the cluster it asks the other controllers
 * whether the cluster already ran (machines/paxos/bootstrapDecision.ts decides
 * from their answers). A replaced disk behind a config that still says
 * `bootstrap` thus rejoins, fencing before it votes, instead of voting again
 * with forgotten promises.
 *
 * Wire: a NATS request on `haring.<cluster>.paxos.<controller>.bootstrap`
 * carrying `{"type":"bootstrap-probe","from":"c1","controllers":["c1","c2","c3"]}`, answered with
 * `{"type":"bootstrap-answer","from":"c2","answer":"fresh"|"exists","controllers":[...]}`: each side's
 * configured controller set, which must be the same (a controller from before it was sent sends none). Every
 * controller process answers (`startBootstrapResponder`): `fresh` while it
 * is itself waiting at its gate or, having bootstrapped in this process, no
 * majority can have counted anything of it (`bootstrapAnswerOf`); `exists`
 * otherwise. Malformed probes and
 * answers are counted as rejections and ignored.
 *
 * A controller whose set differs from another's must not create or join a
 * cluster with it: majorities of two different sets need not meet (c1 told it
 * is alone would be its own majority). The gate refuses to start then, naming
 * both lists; the responder answers as usual and warns.
 */
import type { RejectionCounter } from "../codec/rejectionCounter.ts";
import type { TimerId } from "../ports/clock.ts";
import type { NodePorts } from "../ports/nodePorts.ts";
import type { Subscription } from "../ports/network.ts";
import { clusterSubjects, isValidId } from "../subjects.ts";
import { decideBootstrap, type BootstrapAnswer, type BootstrapDecision } from "../../machines/paxos/bootstrapDecision.ts";
import { peerAcceptorSetDifference } from "../../machines/paxos/acceptorSet.ts";
import { majorityOf, maxAcceptors } from "../../machines/paxos/config.ts";

export const acceptorSetMismatchNote =
  "every controller of a cluster must list the same controllerIds: majorities of two different sets need not meet, so two values could be chosen for one slot; " +
  "correct the configs; controllers are added only with haring acceptors grow on each stopped controller (docs/paxos.md, The acceptor set, Adding controllers)";

export interface BootstrapGateTimings {
  /**
   * The first probe waits this long after the start (the Paxos config's `rejoinQuarantineMs`): a phase 1 or a
   * lease that counted something this controller forgot has ended by then, so the answers show it.
   */
  readonly quarantineMs: number;
  /** Unanswered controllers are asked again this often. */
  readonly probeIntervalMs: number;
  /** One probe waits this long for its answer. */
  readonly requestTimeoutMs: number;
  /** While it waits, the gate says so in the log this often. */
  readonly waitingLogIntervalMs: number;
}

export const defaultBootstrapGateTimings: BootstrapGateTimings = { quarantineMs: 2_000, probeIntervalMs: 500, requestTimeoutMs: 400, waitingLogIntervalMs: 10_000 };

/** Differing sets a responder warns about, each once; beyond these it only answers. */
export const maxWarnedSetDifferences = 64;

/** Probes and answers are small (up to `maxAcceptors` ids of 64 characters); anything longer is not one. */
export const maxBootstrapMessageBytes = 1_024;

export const bootstrapGateLogEvents = { waiting: "paxos.bootstrap-waiting", decided: "paxos.bootstrap-decided", setMismatch: "paxos.acceptor-set-mismatch" } as const;

/** `refuse`: another controller lists another controller set; `error` names both lists. */
export type FinalBootstrapDecision = Exclude<BootstrapDecision, { kind: "wait" }> | { readonly kind: "refuse"; readonly peer: string; readonly error: string };

/**
 * The `controllers` field of a probe or answer: absent (a controller from before it was sent), a list of valid ids,
 * or wrong (a string naming what is wrong).
 */
function listedControllers(fields: Record<string, unknown>): readonly string[] | undefined | string {
  const listed = fields.controllers;
  if (listed === undefined) return undefined;
  if (!Array.isArray(listed) || listed.length === 0 || listed.length > maxAcceptors || !listed.every((id) => typeof id === "string" && isValidId(id))) {
    return `controllers must list 1 to ${maxAcceptors} controller ids`;
  }
  return listed as string[];
}

export function bootstrapProbeSubject(clusterId: string, controllerId: string): string {
  return `${clusterSubjects(clusterId).paxos(controllerId)}.bootstrap`;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function parseSmallJson(data: Uint8Array): Record<string, unknown> | string {
  if (data.byteLength > maxBootstrapMessageBytes) return `longer than ${maxBootstrapMessageBytes} bytes`;
  try {
    const value: unknown = JSON.parse(decoder.decode(data));
    return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : "not a JSON object";
  } catch {
    return "not JSON";
  }
}

/** Answers the other controllers' bootstrap probes with `answer()` for as long as the subscription lasts. */
export function startBootstrapResponder(
  ports: NodePorts,
  options: { readonly controllerIds: readonly string[]; readonly answer: () => BootstrapAnswer; readonly rejections: RejectionCounter },
): Subscription {
  const subject = bootstrapProbeSubject(ports.clusterId, ports.nodeId);
  // Each differing set is said once: a prober refuses at its first answer, but a flood of probes must not flood the log.
  const warned = new Set<string>();
  return ports.network.subscribe(subject, (message) => {
    const probe = parseSmallJson(message.data);
    const listed = typeof probe === "string" ? undefined : listedControllers(probe);
    const problem =
      typeof probe === "string"
        ? probe
        : probe.type !== "bootstrap-probe" ||
            typeof probe.from !== "string" ||
            !isValidId(probe.from) ||
            probe.from === ports.nodeId ||
            // One outside this set is answered only when it says which set it has: it must hear that they differ.
            (!options.controllerIds.includes(probe.from) && !Array.isArray(listed))
          ? "not a bootstrap probe from another controller"
          : message.reply === undefined
            ? "a probe without a reply subject"
            : typeof listed === "string"
              ? listed
              : undefined;
    if (problem !== undefined) {
      options.rejections.count(subject, { reason: typeof probe === "string" ? "malformed" : "invalid-body", detail: problem });
      return;
    }
    // The prober refuses to start on the difference; this side says so too, where its operator looks.
    const from = (probe as Record<string, unknown>).from as string;
    const difference = Array.isArray(listed) ? peerAcceptorSetDifference(from, listed, options.controllerIds) : null;
    if (difference !== null && !warned.has(difference) && warned.size < maxWarnedSetDifferences) {
      warned.add(difference);
      ports.log.write("warn", bootstrapGateLogEvents.setMismatch, { peer: from, error: difference, note: acceptorSetMismatchNote });
    }
    ports.network.publish(message.reply!, encoder.encode(JSON.stringify({ type: "bootstrap-answer", from: ports.nodeId, answer: options.answer(), controllers: options.controllerIds })));
  });
}

export interface BootstrapGate {
  stop(): void;
}

/**
 * Asks every other controller, again every `probeIntervalMs` until it has an answer, and calls `onDecision` once:
 * `bootstrap` or `rejoin`, or `refuse` when one lists another controller set. It never gives up by itself (a first
 * start waits for enough controllers to come up, as a rejoin would); `stop()` ends it without a decision.
 *
 * With `mayBootstrap` false (an empty disk whose config does not say `bootstrap`) the decision is always `rejoin`,
 * once a majority of the set other than this controller answered with the same set: the controllers whose fences
 * the rejoin needs anyway. Only the sets are compared, so no quarantine is needed before asking.
 */
export function startBootstrapGate(
  ports: NodePorts,
  options: {
    readonly controllerIds: readonly string[];
    readonly rejections: RejectionCounter;
    readonly timings?: Partial<BootstrapGateTimings>;
    readonly onDecision: (decision: FinalBootstrapDecision) => void;
    /** False: the controller rejoins whatever the answers say; the gate only checks that their sets agree. */
    readonly mayBootstrap?: boolean;
  },
): BootstrapGate {
  const mayBootstrap = options.mayBootstrap ?? true;
  const others = options.controllerIds.filter((id) => id !== ports.nodeId);
  const timings = { ...defaultBootstrapGateTimings, ...options.timings };
  const answers = new Map<string, BootstrapAnswer>();
  const startedAtMs = ports.clock.now();
  let lastWaitingLogAtMs = startedAtMs;
  let finished = false;
  let timer: TimerId | undefined;
  const probe = encoder.encode(JSON.stringify({ type: "bootstrap-probe", from: ports.nodeId, controllers: options.controllerIds }));

  const finish = (): void => {
    finished = true;
    if (timer !== undefined) ports.clock.clearTimeout(timer);
    timer = undefined;
  };

  const refuse = (peer: string, difference: string): void => {
    finish();
    ports.log.write("error", bootstrapGateLogEvents.setMismatch, { peer, error: difference, note: acceptorSetMismatchNote });
    options.onDecision({ kind: "refuse", peer, error: `refusing to start: ${difference}; ${acceptorSetMismatchNote}` });
  };

  const decide = (): void => {
    if (finished) return;
    const decision = decisionNow();
    if (decision.kind === "wait") return;
    finish();
    ports.log.write("info", bootstrapGateLogEvents.decided, {
      decision: decision.kind,
      ...(decision.kind === "rejoin" ? { clusterExistsAt: decision.existsAt } : {}),
      answers: [...answers].map(([id, answer]) => `${id}=${answer}`).join(","),
      waitedMs: Math.round(ports.clock.now() - startedAtMs),
    });
    options.onDecision(decision);
  };

  // A rejoin needs the fences of a majority of the whole set, all of them others: their answers are enough.
  const setsChecked = (): BootstrapDecision => {
    const needed = Math.min(others.length, majorityOf(options.controllerIds.length));
    if (answers.size >= needed) return { kind: "rejoin", existsAt: [...answers.keys()][0] ?? "" };
    return { kind: "wait", freshOthers: 0, neededFreshOthers: needed, unanswered: others.filter((id) => !answers.has(id)) };
  };
  const decisionNow = (): BootstrapDecision => (mayBootstrap ? decideBootstrap(ports.nodeId, options.controllerIds, answers) : setsChecked());

  const round = (): void => {
    timer = undefined;
    if (finished) return;
    for (const other of options.controllerIds) {
      if (other === ports.nodeId || answers.has(other)) continue;
      const subject = bootstrapProbeSubject(ports.clusterId, other);
      ports.network.request(subject, probe, { timeoutMs: timings.requestTimeoutMs }, (outcome) => {
        if (finished || !outcome.ok) return;
        const answer = parseSmallJson(outcome.message.data);
        const listed = typeof answer === "string" ? undefined : listedControllers(answer);
        if (typeof answer === "string" || answer.type !== "bootstrap-answer" || answer.from !== other || (answer.answer !== "fresh" && answer.answer !== "exists") || typeof listed === "string") {
          const detail = typeof answer === "string" ? answer : typeof listed === "string" ? listed : "not a bootstrap answer from the controller asked";
          options.rejections.count(outcome.message.subject, { reason: typeof answer === "string" ? "malformed" : "invalid-body", detail });
          return;
        }
        const difference = listed === undefined ? null : peerAcceptorSetDifference(other, listed, options.controllerIds);
        if (difference !== null) {
          refuse(other, difference);
          return;
        }
        answers.set(other, answer.answer);
        decide();
      });
    }
    const nowMs = ports.clock.now();
    if (nowMs - lastWaitingLogAtMs >= timings.waitingLogIntervalMs) {
      lastWaitingLogAtMs = nowMs;
      const waiting = decisionNow();
      if (waiting.kind === "wait") {
        ports.log.write("warn", bootstrapGateLogEvents.waiting, {
          ...(mayBootstrap ? { freshOthers: waiting.freshOthers } : { answered: answers.size }),
          needed: waiting.neededFreshOthers,
          unanswered: waiting.unanswered.join(","),
          note: mayBootstrap
            ? "an empty disk with bootstrap creates the cluster only once enough other controllers say they never ran either; otherwise it rejoins"
            : "an empty disk without bootstrap rejoins once a majority of the other controllers answer with the same controller set (their fences are needed anyway)",
        });
      }
    }
    timer = ports.clock.setTimeout(round, timings.probeIntervalMs);
  };

  // Decided at once when there is nobody to ask; otherwise on the first answers after the quarantine. Never inside this call.
  timer = ports.clock.setTimeout(
    () => {
      decide();
      round();
    },
    others.length === 0 || !mayBootstrap ? 0 : timings.quarantineMs,
  );
  return {
    stop: finish,
  };
}

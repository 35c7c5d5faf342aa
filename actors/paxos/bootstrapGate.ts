/**
 * The bootstrap gate of a controller that starts on an empty disk with
 * `bootstrap`: before it creates the cluster it asks the other controllers
 * whether the cluster already ran (machines/paxos/bootstrapDecision.ts decides
 * from their answers). A replaced disk behind a config that still says
 * `bootstrap` thus rejoins, fencing before it votes, instead of voting again
 * with forgotten promises.
 *
 * Wire: a NATS request on `haring.<cluster>.paxos.<controller>.bootstrap`
 * carrying `{"type":"bootstrap-probe","from":"c1"}`, answered with
 * `{"type":"bootstrap-answer","from":"c2","answer":"fresh"|"exists"}`. Every
 * controller process answers (`startBootstrapResponder`): `fresh` while it
 * is itself waiting at its gate or, having bootstrapped in this process, no
 * majority can have counted anything of it (`bootstrapAnswerOf`); `exists`
 * otherwise. Malformed probes and
 * answers are counted as rejections and ignored.
 */
import type { RejectionCounter } from "../codec/rejectionCounter.ts";
import type { TimerId } from "../ports/clock.ts";
import type { NodePorts } from "../ports/nodePorts.ts";
import type { Subscription } from "../ports/network.ts";
import { clusterSubjects } from "../subjects.ts";
import { decideBootstrap, type BootstrapAnswer, type BootstrapDecision } from "../../machines/paxos/bootstrapDecision.ts";

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

/** Probes and answers are tiny; anything longer is not one. */
export const maxBootstrapMessageBytes = 256;

export const bootstrapGateLogEvents = { waiting: "paxos.bootstrap-waiting", decided: "paxos.bootstrap-decided" } as const;

export type FinalBootstrapDecision = Exclude<BootstrapDecision, { kind: "wait" }>;

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
  return ports.network.subscribe(subject, (message) => {
    const probe = parseSmallJson(message.data);
    const problem =
      typeof probe === "string"
        ? probe
        : probe.type !== "bootstrap-probe" || typeof probe.from !== "string" || !options.controllerIds.includes(probe.from) || probe.from === ports.nodeId
          ? "not a bootstrap probe from another controller"
          : message.reply === undefined
            ? "a probe without a reply subject"
            : undefined;
    if (problem !== undefined) {
      options.rejections.count(subject, { reason: typeof probe === "string" ? "malformed" : "invalid-body", detail: problem });
      return;
    }
    ports.network.publish(message.reply!, encoder.encode(JSON.stringify({ type: "bootstrap-answer", from: ports.nodeId, answer: options.answer() })));
  });
}

export interface BootstrapGate {
  stop(): void;
}

/**
 * Asks every other controller, again every `probeIntervalMs` until it has an answer, and calls `onDecision` once:
 * `bootstrap` or `rejoin`. It never gives up by itself (a first start waits for enough controllers to come up, as a
 * rejoin would); `stop()` ends it without a decision.
 */
export function startBootstrapGate(
  ports: NodePorts,
  options: {
    readonly controllerIds: readonly string[];
    readonly rejections: RejectionCounter;
    readonly timings?: Partial<BootstrapGateTimings>;
    readonly onDecision: (decision: FinalBootstrapDecision) => void;
  },
): BootstrapGate {
  const timings = { ...defaultBootstrapGateTimings, ...options.timings };
  const answers = new Map<string, BootstrapAnswer>();
  const startedAtMs = ports.clock.now();
  let lastWaitingLogAtMs = startedAtMs;
  let finished = false;
  let timer: TimerId | undefined;
  const probe = encoder.encode(JSON.stringify({ type: "bootstrap-probe", from: ports.nodeId }));

  const decide = (): void => {
    if (finished) return;
    const decision = decideBootstrap(ports.nodeId, options.controllerIds, answers);
    if (decision.kind === "wait") return;
    finished = true;
    if (timer !== undefined) ports.clock.clearTimeout(timer);
    ports.log.write("info", bootstrapGateLogEvents.decided, {
      decision: decision.kind,
      ...(decision.kind === "rejoin" ? { clusterExistsAt: decision.existsAt } : {}),
      answers: [...answers].map(([id, answer]) => `${id}=${answer}`).join(","),
      waitedMs: Math.round(ports.clock.now() - startedAtMs),
    });
    options.onDecision(decision);
  };

  const round = (): void => {
    timer = undefined;
    if (finished) return;
    for (const other of options.controllerIds) {
      if (other === ports.nodeId || answers.has(other)) continue;
      const subject = bootstrapProbeSubject(ports.clusterId, other);
      ports.network.request(subject, probe, { timeoutMs: timings.requestTimeoutMs }, (outcome) => {
        if (finished || !outcome.ok) return;
        const answer = parseSmallJson(outcome.message.data);
        if (typeof answer === "string" || answer.type !== "bootstrap-answer" || answer.from !== other || (answer.answer !== "fresh" && answer.answer !== "exists")) {
          options.rejections.count(outcome.message.subject, { reason: typeof answer === "string" ? "malformed" : "invalid-body", detail: typeof answer === "string" ? answer : "not a bootstrap answer from the controller asked" });
          return;
        }
        answers.set(other, answer.answer);
        decide();
      });
    }
    const nowMs = ports.clock.now();
    if (nowMs - lastWaitingLogAtMs >= timings.waitingLogIntervalMs) {
      lastWaitingLogAtMs = nowMs;
      const waiting = decideBootstrap(ports.nodeId, options.controllerIds, answers);
      if (waiting.kind === "wait") {
        ports.log.write("warn", bootstrapGateLogEvents.waiting, {
          freshOthers: waiting.freshOthers,
          needed: waiting.neededFreshOthers,
          unanswered: waiting.unanswered.join(","),
          note: "an empty disk with bootstrap creates the cluster only once enough other controllers say they never ran either; otherwise it rejoins",
        });
      }
    }
    timer = ports.clock.setTimeout(round, timings.probeIntervalMs);
  };

  // Decided at once when there is nobody to ask; otherwise on the first answers after the quarantine. Never inside this call.
  const others = options.controllerIds.filter((id) => id !== ports.nodeId);
  timer = ports.clock.setTimeout(
    () => {
      decide();
      round();
    },
    others.length === 0 ? 0 : timings.quarantineMs,
  );
  return {
    stop() {
      finished = true;
      if (timer !== undefined) ports.clock.clearTimeout(timer);
      timer = undefined;
    },
  };
}

/**
 * The vote recall of a controller that restarts on a Paxos log it voted with:
 * before its acceptor votes again, it asks every other controller (after a
 * rejoin, those that fenced it: `recallPeers`) what that controller saw its
 * disk hold (machines/paxos/voteEvidence.ts) and refuses a
 * log that falls short: an old copy of its own data directory (a restored
 * backup or VM snapshot), whose forgotten promises and votes a quorum may
 * have counted. Peers answer from memory, so the recall is a safety net, not
 * a proof: a peer that restarted since, or that never heard this controller,
 * knows nothing (docs/paxos.md "Whose data directory").
 *
 * Wire (msgpackr envelopes, actors/codec): a NATS request on
 * `haring.<cluster>.paxos.<controller>.recall` carrying `paxos.recall`,
 * answered with `paxos.recall-reply` (the evidence). Every controller process
 * answers (`startVoteRecallResponder`), with no evidence until its own
 * controller runs. Malformed requests and answers are counted and ignored; a
 * controller of an older version does not answer and counts as unanswered.
 */
import { decodeCounted, type RejectionCounter } from "../codec/rejectionCounter.ts";
import { int, obj } from "../codec/schema.ts";
import { ballotSchema } from "./paxosMessages.ts";
import { createMessageRegistry } from "../codec/messageCodec.ts";
import type { TimerId } from "../ports/clock.ts";
import type { NodePorts } from "../ports/nodePorts.ts";
import type { Subscription } from "../ports/network.ts";
import { clusterSubjects } from "../subjects.ts";
import { evidenceShortfall, recallPeers, type DurableVotingState, type VoteEvidence } from "../../machines/paxos/voteEvidence.ts";

export interface VoteRecallTimings {
  /** The recall gives up waiting for unanswered controllers after this long and lets the log vote (nobody to contradict it). */
  readonly waitMs: number;
  /** Unanswered controllers are asked again this often. */
  readonly askIntervalMs: number;
  /** One request waits this long for its answer. */
  readonly requestTimeoutMs: number;
}

// A few seconds at most: a restart with a controller down waits this long; a loaded peer still gets a dozen chances to answer.
export const defaultVoteRecallTimings: VoteRecallTimings = { waitMs: 3_000, askIntervalMs: 250, requestTimeoutMs: 200 };

/** A recall and its answer are a few ballots; anything longer is not one. */
export const maxVoteRecallMessageBytes = 512;

const countSchema = int({ min: 0, max: Number.MAX_SAFE_INTEGER });

export const voteRecallMessages = createMessageRegistry(
  {
    "paxos.recall": obj({ attempt: countSchema }),
    "paxos.recall-reply": obj({
      attempt: countSchema,
      promised: ballotSchema,
      votedSlot: int({ min: -1, max: Number.MAX_SAFE_INTEGER }),
      votedBallot: ballotSchema,
      roundUsed: countSchema,
    }),
  },
  { maxMessageBytes: maxVoteRecallMessageBytes },
);

export const voteRecallLogEvents = { consistent: "paxos.recall-consistent", rolledBack: "paxos.log-rolled-back" } as const;

export function voteRecallSubject(clusterId: string, controllerId: string): string {
  return `${clusterSubjects(clusterId).paxos(controllerId)}.recall`;
}

/** Answers the other controllers' recalls with `evidence(asker)` for as long as the subscription lasts. */
export function startVoteRecallResponder(
  ports: NodePorts,
  options: { readonly controllerIds: readonly string[]; readonly evidence: (controllerId: string) => VoteEvidence; readonly rejections: RejectionCounter },
): Subscription {
  const subject = voteRecallSubject(ports.clusterId, ports.nodeId);
  return ports.network.subscribe(subject, (message) => {
    const request = decodeCounted(voteRecallMessages, options.rejections, subject, message.data, ["paxos.recall"]);
    if (request === undefined) return;
    if (!options.controllerIds.includes(request.from) || request.from === ports.nodeId || message.reply === undefined) {
      options.rejections.count(subject, { reason: "invalid-body", detail: `a recall from ${request.from}, not another controller with a reply subject` });
      return;
    }
    const known = options.evidence(request.from);
    ports.network.publish(message.reply, voteRecallMessages.encode("paxos.recall-reply", ports.nodeId, request.cid, { attempt: request.body.attempt, ...known }));
  });
}

export type VoteRecallOutcome =
  /**
   * No answering controller saw more than the log holds. `missedRejoin`: controllers not asked, because the rejoin
   * that began the log's life went without them and they may remember its earlier life (recallPeers).
   */
  | { readonly kind: "consistent"; readonly answered: readonly string[]; readonly unanswered: readonly string[]; readonly missedRejoin: readonly string[] }
  /** `peer` saw this controller's disk hold more than the log does: the log is an old copy. */
  | { readonly kind: "rolled-back"; readonly peer: string; readonly shortfall: string };

export interface VoteRecall {
  stop(): void;
}

/**
 * Asks every other controller that can speak for the log (recallPeers), again every `askIntervalMs` until it
 * answers, and calls `onDone` once: at the first answer the log falls short of, or when every controller asked
 * answered, or after `waitMs`. Never inside this call.
 */
export function startVoteRecall(
  ports: NodePorts,
  options: {
    readonly controllerIds: readonly string[];
    readonly own: DurableVotingState;
    readonly rejections: RejectionCounter;
    readonly timings?: Partial<VoteRecallTimings>;
    readonly onDone: (outcome: VoteRecallOutcome) => void;
  },
): VoteRecall {
  const timings = { ...defaultVoteRecallTimings, ...options.timings };
  const { asked: others, missedRejoin } = recallPeers(options.own, options.controllerIds, ports.nodeId);
  const answered = new Set<string>();
  const startedAtMs = ports.clock.now();
  let attempt = 0;
  let finished = false;
  let timer: TimerId | undefined;

  const finish = (outcome: VoteRecallOutcome): void => {
    if (finished) return;
    finished = true;
    if (timer !== undefined) ports.clock.clearTimeout(timer);
    timer = undefined;
    options.onDone(outcome);
  };
  const consistent = (): VoteRecallOutcome => ({ kind: "consistent", answered: others.filter((id) => answered.has(id)), unanswered: others.filter((id) => !answered.has(id)), missedRejoin });

  const round = (): void => {
    timer = undefined;
    if (finished) return;
    if (answered.size === others.length || ports.clock.now() - startedAtMs >= timings.waitMs) {
      finish(consistent());
      return;
    }
    attempt++;
    for (const other of others) {
      if (answered.has(other)) continue;
      const request = voteRecallMessages.encode("paxos.recall", ports.nodeId, `recall-${attempt}-${other}`, { attempt });
      ports.network.request(voteRecallSubject(ports.clusterId, other), request, { timeoutMs: timings.requestTimeoutMs }, (outcome) => {
        if (finished || !outcome.ok) return;
        const reply = decodeCounted(voteRecallMessages, options.rejections, outcome.message.subject, outcome.message.data, ["paxos.recall-reply"]);
        if (reply === undefined) return;
        if (reply.from !== other) {
          options.rejections.count(outcome.message.subject, { reason: "invalid-body", detail: `a recall answer from ${reply.from}, asked ${other}` });
          return;
        }
        answered.add(other);
        const shortfall = evidenceShortfall(options.own, reply.body);
        if (shortfall !== undefined) finish({ kind: "rolled-back", peer: other, shortfall });
        else if (answered.size === others.length) finish(consistent());
      });
    }
    timer = ports.clock.setTimeout(round, timings.askIntervalMs);
  };

  timer = ports.clock.setTimeout(round, 0);
  return {
    stop() {
      finished = true;
      if (timer !== undefined) ports.clock.clearTimeout(timer);
      timer = undefined;
    },
  };
}

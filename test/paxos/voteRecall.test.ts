import test from "ava";
import { createRejectionCounter, messagesRejectedMetric } from "../../actors/codec/rejectionCounter.ts";
import { defaultVoteRecallTimings, startVoteRecall, startVoteRecallResponder, voteRecallMessages, voteRecallSubject, type VoteRecallOutcome } from "../../actors/paxos/voteRecall.ts";
import type { NodePorts } from "../../actors/ports/nodePorts.ts";
import type { Ballot } from "../../machines/paxos/ballot.ts";
import { noVoteEvidence, type DurableVotingState, type VoteEvidence } from "../../machines/paxos/voteEvidence.ts";
import { SimWorld } from "../../sim/world.ts";
import { recordingTelemetry } from "../codec/recordingTelemetry.ts";

/**
 * The vote recall over the simulated network: c1 restarts and asks c2 and c3,
 * which answer with whatever evidence the test gives them (or do not run).
 */
const b = (round: number, controllerId: string): Ballot => ({ round, controllerId });
const controllerIds = ["c1", "c2", "c3"];

/** c1's log: promised 3.c2, votes in slots 0-9 at 3.c2, rounds up to 3. */
const ownLog: DurableVotingState = { promised: b(3, "c2"), floorSlot: 0, voteBallotAt: (slot) => (slot < 10 ? b(3, "c2") : undefined), roundsKnownUpTo: 3, fencedBy: null };

function recall(
  evidence: ReadonlyMap<string, VoteEvidence>,
  options: { readonly running?: readonly string[]; readonly seed?: number; readonly controllerIds?: readonly string[]; readonly own?: DurableVotingState } = {},
) {
  const world = new SimWorld({ seed: options.seed ?? 1, clusterId: "recall" });
  const telemetry = recordingTelemetry();
  const ids = options.controllerIds ?? controllerIds;
  const asked: string[] = [];
  for (const id of options.running ?? ["c2", "c3"]) {
    world.addNode(id, (ports) => {
      const subscription = startVoteRecallResponder(ports, { controllerIds: ids, evidence: (asker) => {
          if (asker === "c1") asked.push(id);
          return asker === "c1" ? (evidence.get(id) ?? noVoteEvidence) : noVoteEvidence;
        },
        rejections: createRejectionCounter(ports),
      });
      return { stop: () => subscription.unsubscribe() };
    });
  }
  let outcome: VoteRecallOutcome | undefined;
  let doneAtMs = -1;
  let c1!: NodePorts;
  world.addNode("c1", (ports) => {
    c1 = { ...ports, metrics: telemetry.metrics, log: telemetry.log };
    const running = startVoteRecall(c1, {
      controllerIds: ids,
      own: options.own ?? ownLog,
      rejections: createRejectionCounter(c1),
      onDone: (result) => {
        outcome = result;
        doneAtMs = world.now();
      },
    });
    return { stop: () => running.stop() };
  });
  world.runUntil(5_000);
  return { outcome, doneAtMs, world, telemetry, asked, c1: () => c1 };
}

test("every peer answers with no more than the log holds: consistent, at once", (t) => {
  const { outcome, doneAtMs } = recall(new Map([["c2", { promised: b(3, "c2"), votedSlot: 9, votedBallot: b(3, "c2"), roundUsed: 2 }]]));
  t.deepEqual(outcome, { kind: "consistent", answered: ["c2", "c3"], unanswered: [], missedRejoin: [] });
  t.true(doneAtMs >= 0 && doneAtMs < 100, `done at ${doneAtMs} ms`);
});

test("a peer that saw more than the log holds refuses it, naming the peer and what is missing", (t) => {
  const { outcome } = recall(new Map([["c3", { promised: b(4, "c3"), votedSlot: 9, votedBallot: b(4, "c3"), roundUsed: 0 }]]));
  t.deepEqual(outcome, { kind: "rolled-back", peer: "c3", shortfall: "it promised ballot 4.c3, the log only 3.c2" });
  const missingVote = recall(new Map([["c2", { promised: b(3, "c2"), votedSlot: 12, votedBallot: b(3, "c2"), roundUsed: 0 }]])).outcome;
  t.like(missingVote, { kind: "rolled-back", peer: "c2" });
});

test("after a rejoin, only the controllers whose fences it counted are asked: one that missed it may remember the earlier life", (t) => {
  const five = ["c1", "c2", "c3", "c4", "c5"];
  const rejoinedLog: DurableVotingState = { ...ownLog, fencedBy: ["c2", "c3", "c4"] };
  const earlierLife: VoteEvidence = { promised: b(6, "c5"), votedSlot: 40, votedBallot: b(6, "c5"), roundUsed: 0 };
  const running = ["c2", "c3", "c4", "c5"];
  const missed = recall(new Map([["c5", earlierLife]]), { controllerIds: five, own: rejoinedLog, running });
  t.deepEqual(missed.outcome, { kind: "consistent", answered: ["c2", "c3", "c4"], unanswered: [], missedRejoin: ["c5"] });
  t.false(missed.asked.includes("c5"), `asked: ${missed.asked.join(",")}`);
  t.true(missed.doneAtMs >= 0 && missed.doneAtMs < 100, `done at ${missed.doneAtMs} ms: c5 is not waited for`);
  // The same memory in a controller that fenced the rejoin is evidence of this life: the log is refused.
  const fenced = recall(new Map([["c4", earlierLife]]), { controllerIds: five, own: rejoinedLog, running });
  t.deepEqual(fenced.outcome, { kind: "rolled-back", peer: "c4", shortfall: "it promised ballot 6.c5, the log only 3.c2" });
  // A bootstrapped log asks everyone, c5 too.
  const bootstrapped = recall(new Map([["c5", earlierLife]]), { controllerIds: five, running });
  t.like(bootstrapped.outcome, { kind: "rolled-back", peer: "c5" });
});

test("a peer that does not run is waited for at most waitMs, then the log starts; the one that answered counted", (t) => {
  const { outcome, doneAtMs } = recall(new Map(), { running: ["c2"] });
  t.deepEqual(outcome, { kind: "consistent", answered: ["c2"], unanswered: ["c3"], missedRejoin: [] });
  t.true(doneAtMs >= defaultVoteRecallTimings.waitMs && doneAtMs < defaultVoteRecallTimings.waitMs + 300, `done at ${doneAtMs} ms`);
});

test("hostile recalls and answers are counted and ignored; the responder keeps answering", (t) => {
  const world = new SimWorld({ seed: 3, clusterId: "recall" });
  const c2Telemetry = recordingTelemetry();
  world.addNode("c2", (ports) => {
    const telemetryPorts = { ...ports, metrics: c2Telemetry.metrics, log: c2Telemetry.log };
    const subscription = startVoteRecallResponder(telemetryPorts, { controllerIds, evidence: () => noVoteEvidence, rejections: createRejectionCounter(telemetryPorts) });
    return { stop: () => subscription.unsubscribe() };
  });
  const answers: string[] = [];
  let intruder!: NodePorts;
  world.addNode("x9", (ports) => {
    intruder = ports;
    return { stop: () => undefined };
  });
  world.runUntil(10);
  const subject = voteRecallSubject("recall", "c2");
  const ask = (data: Uint8Array) =>
    intruder.network.request(subject, data, { timeoutMs: 100 }, (outcome) => answers.push(outcome.ok ? voteRecallMessages.decode(outcome.message.data).ok ? "answer" : "garbage" : outcome.failure));
  ask(new Uint8Array([0xc1, 0xff, 0x00]));
  ask(voteRecallMessages.encode("paxos.recall", "x9", "r1", { attempt: 1 }));
  ask(voteRecallMessages.encode("paxos.recall", "c2", "r2", { attempt: 1 }));
  ask(voteRecallMessages.encode("paxos.recall-reply", "c1", "r3", { attempt: 1, ...noVoteEvidence }));
  world.runUntil(500);
  t.is(c2Telemetry.counter(messagesRejectedMetric), 4, "garbage, an unknown controller, itself, and the wrong type");
  t.deepEqual(answers, ["timeout", "timeout", "timeout", "timeout"]);
  ask(voteRecallMessages.encode("paxos.recall", "c1", "r4", { attempt: 2 }));
  world.runUntil(1_000);
  t.deepEqual(answers.slice(4), ["answer"], "a proper recall is still answered");
});

test("an answer from another controller than the one asked, or not an answer, is counted and does not count as answered", (t) => {
  const world = new SimWorld({ seed: 4, clusterId: "recall" });
  world.addNode("c2", (ports) => {
    // A confused c2 answers in c3's name with evidence that would refuse the log, and c3's subject gets bytes that are no answer.
    const claims = ports.network.subscribe(voteRecallSubject("recall", "c2"), (message) =>
      ports.network.publish(message.reply!, voteRecallMessages.encode("paxos.recall-reply", "c3", "x", { attempt: 1, promised: b(9, "c3"), votedSlot: -1, votedBallot: b(0, ""), roundUsed: 0 })),
    );
    const garbage = ports.network.subscribe(voteRecallSubject("recall", "c3"), (message) => ports.network.publish(message.reply!, new Uint8Array([1, 2, 3])));
    return { stop: () => (claims.unsubscribe(), garbage.unsubscribe()) };
  });
  const telemetry = recordingTelemetry();
  let outcome: VoteRecallOutcome | undefined;
  world.addNode("c1", (ports) => {
    const c1 = { ...ports, metrics: telemetry.metrics, log: telemetry.log };
    const running = startVoteRecall(c1, { controllerIds, own: ownLog, rejections: createRejectionCounter(c1), onDone: (result) => (outcome = result) });
    return { stop: () => running.stop() };
  });
  world.runUntil(5_000);
  t.deepEqual(outcome, { kind: "consistent", answered: [], unanswered: ["c2", "c3"], missedRejoin: [] });
  t.true(telemetry.counter(messagesRejectedMetric) >= 2 * 8, `${telemetry.counter(messagesRejectedMetric)} refused: each of about eight asks, to both`);
});

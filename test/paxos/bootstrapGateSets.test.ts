/**
 * The bootstrap gate over the simulated network: probes and answers carry each
 * controller's configured set, and a gate that hears another set refuses to
 * start instead of creating (or joining) a cluster whose majorities need not
 * meet its own.
 */
import test from "ava";
import { createRejectionCounter } from "../../actors/codec/rejectionCounter.ts";
import { bootstrapGateLogEvents, bootstrapProbeSubject, startBootstrapGate, startBootstrapResponder, type FinalBootstrapDecision } from "../../actors/paxos/bootstrapGate.ts";
import { SimWorld } from "../../sim/world.ts";

const encoder = new TextEncoder();

/** c1's gate, listing `gateSet`; c2 and c3 answer `fresh` listing their sets (`"old"`: a controller from before the field, `"garbage"`: a wrong one). */
function gateAgainst(gateSet: readonly string[], answers: Readonly<Record<"c2" | "c3", readonly string[] | "old" | "garbage">>): { decisions: FinalBootstrapDecision[]; world: SimWorld } {
  const world = new SimWorld({ seed: 3, clusterId: "t" });
  const decisions: FinalBootstrapDecision[] = [];
  world.addNode("c1", (ports) => {
    const gate = startBootstrapGate(ports, { controllerIds: gateSet, rejections: createRejectionCounter(ports), timings: { quarantineMs: 100 }, onDecision: (decision) => decisions.push(decision) });
    return { stop: () => gate.stop() };
  });
  for (const id of ["c2", "c3"] as const) {
    const listed = answers[id];
    world.addNode(id, (ports) => {
      if (Array.isArray(listed)) {
        const responder = startBootstrapResponder(ports, { controllerIds: listed, answer: () => "fresh", rejections: createRejectionCounter(ports) });
        return { stop: () => responder.unsubscribe() };
      }
      const subscription = ports.network.subscribe(bootstrapProbeSubject("t", id), (message) => {
        const body = listed === "old" ? { type: "bootstrap-answer", from: id, answer: "fresh" } : { type: "bootstrap-answer", from: id, answer: "fresh", controllers: "c1,c2,c3" };
        ports.network.publish(message.reply!, encoder.encode(JSON.stringify(body)));
      });
      return { stop: () => subscription.unsubscribe() };
    });
  }
  world.runFor(2_000);
  return { decisions, world };
}

const three = ["c1", "c2", "c3"];

test("controllers listing the same set, in any order, bootstrap as before", (t) => {
  const { decisions } = gateAgainst(three, { c2: ["c3", "c2", "c1"], c3: three });
  t.deepEqual(decisions, [{ kind: "bootstrap" }]);
});

test("another controller listing another set: the gate refuses to start, naming both lists; that controller warns", (t) => {
  const { decisions, world } = gateAgainst(three, { c2: [...three, "c4", "c5"], c3: three });
  t.deepEqual(decisions, [
    {
      kind: "refuse",
      peer: "c2",
      error:
        "refusing to start: c2 lists the controllers c1, c2, c3, c4, c5, but this controller's config lists c1, c2, c3 (it drops c4, c5); every controller of a cluster must list the same controllerIds: majorities of two different sets need not meet, so two values could be chosen for one slot; correct the configs; controllers are added only with haring acceptors grow on each stopped controller (docs/paxos.md, The acceptor set, Adding controllers)",
    },
  ]);
  const transcript = world.transcript();
  t.regex(transcript, new RegExp(`c1.*${bootstrapGateLogEvents.setMismatch.replaceAll(".", "\\.")}`));
  t.regex(transcript, /c2.*paxos\.acceptor-set-mismatch.*c1 lists the controllers c1, c2, c3, but this controller's config lists c1, c2, c3, c4, c5 \(it adds c4, c5\)/);
});

test("a lone controller told it is alone is refused by the others it does not know it has", (t) => {
  // c1's config lists only itself: it asks nobody and would be its own majority. c2's gate hears it list another set.
  const world = new SimWorld({ seed: 4, clusterId: "t" });
  const decisions: FinalBootstrapDecision[] = [];
  world.addNode("c1", (ports) => {
    const responder = startBootstrapResponder(ports, { controllerIds: ["c1"], answer: () => "fresh", rejections: createRejectionCounter(ports) });
    return { stop: () => responder.unsubscribe() };
  });
  world.addNode("c2", (ports) => {
    const gate = startBootstrapGate(ports, { controllerIds: three, rejections: createRejectionCounter(ports), timings: { quarantineMs: 100 }, onDecision: (decision) => decisions.push(decision) });
    return { stop: () => gate.stop() };
  });
  world.runFor(2_000);
  t.is(decisions.length, 1);
  t.is(decisions[0]?.kind, "refuse");
  t.regex(decisions[0]?.kind === "refuse" ? decisions[0].error : "", /c1 lists the controllers c1, but this controller's config lists c1, c2, c3 \(it adds c2, c3\)/);
});

test("an answer without the list (an older controller) counts as before; a wrong list is counted and ignored", (t) => {
  t.deepEqual(gateAgainst(three, { c2: "old", c3: "old" }).decisions, [{ kind: "bootstrap" }]);
  const { decisions, world } = gateAgainst(three, { c2: "garbage", c3: three });
  // c2's answers are refused, c3's alone is not enough (2 of 3 others needed): it keeps waiting.
  t.deepEqual(decisions, []);
  t.true(world.metrics("c1").counterTotal("haring_messages_rejected_total") >= 1);
});

test("a flood of probes listing another set gets every answer but one warning", (t) => {
  const world = new SimWorld({ seed: 6, clusterId: "t" });
  let answers = 0;
  world.addNode("c2", (ports) => {
    const responder = startBootstrapResponder(ports, { controllerIds: three, answer: () => "exists", rejections: createRejectionCounter(ports) });
    return { stop: () => responder.unsubscribe() };
  });
  world.addNode("c1", (ports) => {
    const probe = encoder.encode(JSON.stringify({ type: "bootstrap-probe", from: "c1", controllers: ["c1", "c2"] }));
    for (let index = 0; index < 100; index++) {
      ports.network.request(bootstrapProbeSubject("t", "c2"), probe, { timeoutMs: 1_000 }, (outcome) => {
        if (outcome.ok) answers++;
      });
    }
    return { stop: () => {} };
  });
  world.runFor(2_000);
  t.is(answers, 100);
  t.is(world.transcriptLines().filter((line) => line.includes("paxos.acceptor-set-mismatch")).length, 1);
});

/**
 * A host incarnation does not join for ever (machines/heartbeat/heartbeatSender.ts,
 * `joining.expired`): the leader keeps a declared incarnation excluded only for
 * `declaredExclusionRetentionMs`, so an incarnation that won no lease within
 * `maxJoiningWithoutLeaseMs` takes the next one, and never heartbeats again, even
 * after a pause past the limit. Whole-system fuzz seed 540461: h5 joined as
 * incarnation 2, was cut off from every monitor for 12 s, was declared failed
 * meanwhile, and after the heal a monitor granted incarnation 2 a lease.
 *
 * The real sender actor on simulated ports; the monitors are stand-ins that answer
 * every heartbeat as the test says (`no-authority`, a lease, or nothing).
 */
import test from "ava";
import { createRejectionCounter } from "../../actors/codec/rejectionCounter.ts";
import type { IsolationRequest } from "../../actors/detection/hostIsolation.ts";
import { heartbeatMessages } from "../../actors/heartbeat/heartbeatMessages.ts";
import { startHeartbeatSender, type HeartbeatSenderHost } from "../../actors/heartbeat/heartbeatSenderActor.ts";
import { clusterSubjects } from "../../actors/subjects.ts";
import { declaredExclusionRetentionMs, defaultHostAgentConfig, maxJoiningWithoutLeaseMs } from "../../machines/detection/detectionConfig.ts";
import { SimWorld } from "../../sim/world.ts";

const config = { heartbeatIntervalMs: 100, missedAcksBeforeSwitch: 2, driftBackAfterMs: 30_000 };
const monitorIds = ["m1", "m2", "m3"];
const leaseMs = 1_100;
type Answer = "no-authority" | "lease" | "silence";

function joiningWorld(seed: number) {
  const world = new SimWorld({ seed, clusterId: "test" });
  const subjects = clusterSubjects("test");
  let answer: Answer = "no-authority";
  const heard: { atMs: number; incarnation: number }[] = [];
  for (const monitorId of monitorIds) {
    world.addNode(monitorId, (ports) => {
      const subscription = ports.network.subscribe(subjects.heartbeat(monitorId), (message) => {
        const decoded = heartbeatMessages.decode(message.data, ["hb.ping"]);
        if (!decoded.ok || decoded.message.t !== "hb.ping" || message.reply === undefined) return;
        const { hostId, sequence, incarnation } = decoded.message.body;
        heard.push({ atMs: ports.clock.now(), incarnation });
        if (answer === "silence") return;
        const grant = answer === "lease" ? { grant: "lease" as const, leaseMs } : { grant: "no-authority" as const, leaseMs: 0 };
        ports.network.publish(message.reply, heartbeatMessages.encode("hb.ack", monitorId, `ack-${sequence}`, { monitorId, hostId, sequence, ...grant }));
      });
      return { stop: () => subscription.unsubscribe() };
    });
  }
  const isolations: (IsolationRequest & { atMs: number })[] = [];
  let sender: HeartbeatSenderHost | undefined;
  world.addNode("h1", (ports) => {
    sender = startHeartbeatSender(ports, {
      monitorIds,
      config,
      ackTimeoutMs: 80,
      rejections: createRejectionCounter(ports),
      lease: {
        maxAcceptedLeaseMs: leaseMs,
        isolationResponse: "power-off",
        isolation: {
          isolate: (request, done) => {
            isolations.push({ ...request, atMs: ports.clock.now() });
            ports.clock.setTimeout(done, 1);
          },
        },
      },
    });
    return { stop: () => sender?.dispose() };
  });
  return {
    world,
    heard,
    isolations,
    answer: (next: Answer) => (answer = next),
    context: () => sender!.getSnapshot()!.context,
  };
}

/** When each incarnation joined (its first heartbeat heard) and when it was heard last. */
function incarnationSpans(heard: readonly { atMs: number; incarnation: number }[]): Map<number, { firstMs: number; lastMs: number }> {
  const spans = new Map<number, { firstMs: number; lastMs: number }>();
  for (const { atMs, incarnation } of heard) {
    const span = spans.get(incarnation);
    if (span === undefined) spans.set(incarnation, { firstMs: atMs, lastMs: atMs });
    else span.lastMs = atMs;
  }
  return spans;
}

test("the limit leaves the leader's exclusion a wide margin", (t) => {
  // Exclusion from the declaration on, which comes after the incarnation first beat; clocks within 10% at most.
  t.true(maxJoiningWithoutLeaseMs * 1.1 < declaredExclusionRetentionMs * 0.9);
  t.true(maxJoiningWithoutLeaseMs >= 40 * defaultHostAgentConfig.heartbeatIntervalMs, "loss alone hardly runs out the limit while a monitor can grant");
});

test("an incarnation that wins no lease moves on after maxJoiningWithoutLeaseMs, and is never heard again", (t) => {
  const { world, heard, isolations, context } = joiningWorld(1);
  world.runFor(3 * maxJoiningWithoutLeaseMs + 1_000);
  t.deepEqual(
    isolations.map(({ reason, incarnation }) => [reason, incarnation]),
    [
      ["boot", 0],
      ["unleased", 1],
      ["unleased", 2],
      ["unleased", 3],
    ],
  );
  t.is(context().incarnation, 4);
  t.is(context().phase, "joining");
  const spans = incarnationSpans(heard);
  for (const incarnation of [1, 2, 3]) {
    const span = spans.get(incarnation)!;
    t.true(span.lastMs - span.firstMs < maxJoiningWithoutLeaseMs, `incarnation ${incarnation} heard for ${span.lastMs - span.firstMs} ms`);
    t.true(span.lastMs - span.firstMs > maxJoiningWithoutLeaseMs - 2 * config.heartbeatIntervalMs, "and not cut short");
  }
});

test("a host paused past the limit beats again only as a new incarnation", (t) => {
  const { world, heard, isolations, context } = joiningWorld(2);
  world.runFor(1_000);
  t.is(context().incarnation, 1);
  world.pause("h1", 2 * maxJoiningWithoutLeaseMs);
  world.runFor(2 * maxJoiningWithoutLeaseMs + 1_000);
  const joinedAtMs = incarnationSpans(heard).get(1)!.firstMs;
  t.false(
    heard.some((beat) => beat.incarnation === 1 && beat.atMs >= joinedAtMs + maxJoiningWithoutLeaseMs),
    "no heartbeat of incarnation 1 once its limit passed",
  );
  t.deepEqual(isolations.at(-1) && [isolations.at(-1)!.reason, isolations.at(-1)!.incarnation], ["unleased", 1]);
  t.is(context().incarnation, 2);
});

test("a host that wins a lease keeps its incarnation; once the lease runs out, the next one joins under the limit again", (t) => {
  const { world, isolations, context, answer } = joiningWorld(3);
  answer("lease");
  world.runFor(3 * maxJoiningWithoutLeaseMs);
  t.deepEqual(isolations.map(({ reason }) => reason), ["boot"], "leased for 15 s: no move");
  t.is(context().incarnation, 1);
  t.is(context().phase, "leased");
  answer("no-authority");
  world.runFor(leaseMs + 500);
  t.deepEqual(isolations.map(({ reason, incarnation }) => [reason, incarnation]), [["boot", 0], ["lease-expired", 1]]);
  t.is(context().phase, "joining");
  world.runFor(maxJoiningWithoutLeaseMs);
  t.deepEqual(isolations.at(-1) && [isolations.at(-1)!.reason, isolations.at(-1)!.incarnation], ["unleased", 2]);
  answer("lease");
  world.runFor(2 * maxJoiningWithoutLeaseMs);
  t.is(context().incarnation, 3, "leased again as incarnation 3, and kept it");
  t.is(context().phase, "leased");
});

test("silent monitors (every heartbeat missed) run out the limit too", (t) => {
  const { world, isolations, answer } = joiningWorld(4);
  answer("silence");
  world.runFor(maxJoiningWithoutLeaseMs + 1_000);
  t.deepEqual(isolations.map(({ reason }) => reason), ["boot", "unleased"]);
});

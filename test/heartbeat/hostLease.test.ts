import test from "ava";
import { createActor } from "xstate";
import type { GrantOutcome } from "../../machines/heartbeat/heartbeatMonitor.ts";
import {
  heartbeatSenderMachine,
  type IsolateParams,
  type PetWatchdogParams,
  type SendHeartbeatParams,
  type TargetSwitchedParams,
} from "../../machines/heartbeat/heartbeatSender.ts";
import { rendezvousOrder } from "../../machines/heartbeat/rendezvousOrder.ts";
import { VirtualClock } from "../../sim/virtualClock.ts";

const config = { heartbeatIntervalMs: 100, missedAcksBeforeSwitch: 2, driftBackAfterMs: 30_000 };
const monitorIds = ["m1", "m2", "m3"];
const order = rendezvousOrder("h1", monitorIds) as [string, string, string];

type Answer = { grant: GrantOutcome; leaseMs: number } | "miss" | "silence";

/**
 * The host lease machine on a virtual clock, with the actor's duties played
 * by the test: acks arrive 10 ms after each heartbeat as `answer` says, the
 * lease timer fires `lease.expired` at the lease end, and isolation finishes
 * (with the next incarnation durable) 5 ms after it starts.
 */
function startHost(answer: (sent: SendHeartbeatParams & { atMs: number }) => Answer, options: { persistedIncarnation?: number; maxAcceptedLeaseMs?: number } = {}) {
  const clock = new VirtualClock();
  const xstateClock = { setTimeout: (callback: () => void, delayMs: number) => clock.schedule(delayMs, callback), clearTimeout: (handle: unknown) => clock.cancel(handle) };
  const sent: Array<SendHeartbeatParams & { atMs: number }> = [];
  const isolations: Array<IsolateParams & { atMs: number }> = [];
  const pets: Array<PetWatchdogParams & { atMs: number }> = [];
  const switches: TargetSwitchedParams[] = [];
  const probeAnswers: Array<{ replyTo: string; incarnation: number }> = [];
  const joiningStarts: Array<{ incarnation: number; atMs: number }> = [];
  let leaseTimer: unknown;
  const actor = createActor(
    heartbeatSenderMachine.provide({
      actions: {
        sendHeartbeat: (_, params) => {
          const record = { ...params, atMs: clock.now() };
          sent.push(record);
          const reply = answer(record);
          if (reply === "silence") return;
          clock.schedule(10, () => {
            if (reply === "miss") actor.send({ type: "heartbeat.missed", sequence: params.sequence, monitorId: params.monitorId });
            else actor.send({ type: "heartbeat.acked", sequence: params.sequence, monitorId: params.monitorId, ...reply, sentAtMs: record.atMs, receivedAtMs: clock.now() });
          });
        },
        targetSwitched: (_, params) => switches.push(params),
        petWatchdog: (_, params) => pets.push({ ...params, atMs: clock.now() }),
        isolate: (_, params) => {
          isolations.push({ ...params, atMs: clock.now() });
          clock.schedule(5, () => actor.send({ type: "isolation.done", incarnation: params.incarnation + 1 }));
        },
        leaseExtended: (_, { leaseUntilMs }) => {
          if (leaseTimer !== undefined) clock.cancel(leaseTimer);
          leaseTimer = clock.schedule(Math.max(0, leaseUntilMs - clock.now()), () => actor.send({ type: "lease.expired", nowMs: clock.now() }));
        },
        answerProbe: (_, params) => probeAnswers.push(params),
        joiningStarted: (_, params) => joiningStarts.push({ ...params, atMs: clock.now() }),
      },
    }),
    {
      clock: xstateClock,
      input: { hostId: "h1", monitorIds, config, lease: { persistedIncarnation: options.persistedIncarnation ?? 0, maxAcceptedLeaseMs: options.maxAcceptedLeaseMs ?? 1_000 } },
    },
  );
  actor.start();
  return { actor, clock, sent, isolations, pets, switches, probeAnswers, joiningStarts, context: () => actor.getSnapshot().context };
}

const lease = (leaseMs = 1_000): Answer => ({ grant: "lease", leaseMs });

test("a host starts by isolating into its next incarnation, and only then heartbeats", (t) => {
  const { clock, sent, isolations, context } = startHost(() => lease(), { persistedIncarnation: 4 });
  t.deepEqual(isolations, [{ reason: "boot", incarnation: 4, atMs: 0 }]);
  t.is(sent.length, 0);
  clock.runUntil(5);
  t.is(context().incarnation, 5);
  t.is(context().phase, "joining");
  t.deepEqual(sent.map((s) => [s.atMs, s.incarnation]), [[5, 5]]);
});

test("each granted ack extends the lease to the heartbeat's send time plus the grant", (t) => {
  const { clock, context } = startHost(() => lease(1_000));
  clock.runUntil(16);
  t.is(context().phase, "leased");
  t.is(context().leaseUntilMs, 5 + 1_000);
  clock.runUntil(116);
  t.is(context().leaseUntilMs, 105 + 1_000);
});

test("a grant longer than maxAcceptedLeaseMs is cut to it", (t) => {
  const { clock, context } = startHost(() => lease(60_000), { maxAcceptedLeaseMs: 700 });
  clock.runUntil(16);
  t.is(context().leaseUntilMs, 5 + 700);
});

test("when grants stop, the host isolates at the lease end and rejoins with the next incarnation", (t) => {
  let granting = true;
  const { clock, sent, isolations, context } = startHost(() => (granting ? lease(1_000) : "silence"));
  clock.runUntil(500);
  granting = false;
  const lastGrantedSendMs = sent.at(-1)!.atMs;
  clock.runUntil(3_000);
  t.deepEqual(isolations.map(({ reason, incarnation, atMs }) => ({ reason, incarnation, atMs })), [
    { reason: "boot", incarnation: 0, atMs: 0 },
    { reason: "lease-expired", incarnation: 1, atMs: lastGrantedSendMs + 1_000 },
  ]);
  t.is(context().incarnation, 2);
  t.is(context().phase, "joining");
  t.true(sent.some((s) => s.incarnation === 2), "it heartbeats again, as the new incarnation");
  t.false(sent.some((s) => s.atMs > lastGrantedSendMs + 1_000 && s.atMs < lastGrantedSendMs + 1_005), "no heartbeat while isolating");
});

test("a grant that arrives after the lease ran out, or for an earlier incarnation's heartbeat, grants nothing", (t) => {
  const { actor, clock, sent, context } = startHost(() => "silence");
  actor.send({ type: "heartbeat.acked", sequence: sent[0]?.sequence ?? 1, monitorId: order[0], grant: "lease", leaseMs: 1_000, sentAtMs: 0, receivedAtMs: 0 });
  t.is(context().phase, "isolating", "acks are ignored while isolating");
  clock.runUntil(5);
  // A heartbeat of incarnation 0 (sequence 0 never existed; anything below the first of incarnation 1 is older).
  const first = context().firstSequenceOfIncarnation;
  actor.send({ type: "heartbeat.acked", sequence: first - 1, monitorId: order[0], grant: "lease", leaseMs: 1_000, sentAtMs: 1, receivedAtMs: 5 });
  t.is(context().phase, "joining");
  // A grant already expired on arrival: sent at 5 with 100 ms, arriving at 200.
  actor.send({ type: "heartbeat.acked", sequence: first, monitorId: order[0], grant: "lease", leaseMs: 100, sentAtMs: 5, receivedAtMs: 200 });
  t.is(context().phase, "joining");
  actor.send({ type: "heartbeat.acked", sequence: first, monitorId: order[0], grant: "lease", leaseMs: 100, sentAtMs: 5, receivedAtMs: 6 });
  t.is(context().leaseUntilMs, 105);
  t.is(context().phase, "leased");
  // Arrives at 110, after the lease ended at 105: the host must treat its lease as gone.
  actor.send({ type: "heartbeat.acked", sequence: first, monitorId: order[0], grant: "lease", leaseMs: 1_000, sentAtMs: 5, receivedAtMs: 110 });
  t.is(context().leaseUntilMs, 105);
});

test("an ack from a monitor without authority counts as a miss: the host moves on after missedAcksBeforeSwitch", (t) => {
  const { clock, switches, sent } = startHost((s) => (s.monitorId === order[0] ? { grant: "no-authority", leaseMs: 0 } : lease()));
  clock.runUntil(400);
  t.deepEqual(switches.map(({ from, to, reason }) => ({ from, to, reason })), [{ from: order[0], to: order[1], reason: "missed-acks" }]);
  t.is(sent.at(-1)!.monitorId, order[1]);
});

test("a leased host told it is excluded stays on its monitor (every monitor would say the same) and gets no renewal", (t) => {
  let excluded = false;
  const { clock, switches, context, isolations } = startHost(() => (excluded ? { grant: "excluded", leaseMs: 0 } : lease(1_000)));
  clock.runUntil(300);
  excluded = true;
  const leaseUntilMs = context().leaseUntilMs;
  clock.runUntil(800);
  t.deepEqual(switches, []);
  t.is(context().phase, "leased");
  t.is(context().leaseUntilMs, leaseUntilMs);
  t.is(isolations.length, 1, "only the boot isolation");
});

test("a host without a lease told it is excluded moves to the next incarnation at once (it has nothing to lose)", (t) => {
  const { clock, isolations, context, sent } = startHost(() => ({ grant: "excluded", leaseMs: 0 }), { persistedIncarnation: 2 });
  clock.runUntil(20);
  t.deepEqual(isolations.map(({ reason, incarnation }) => [reason, incarnation]), [["boot", 2], ["refuted", 3]]);
  t.is(context().incarnation, 4);
  clock.runUntil(30);
  t.is(sent.at(-1)!.incarnation, 4);
});

test("the watchdog is petted on every beat with the lease end, or unconditionally while there is nothing to protect, never while isolating", (t) => {
  let granting = true;
  const { clock, pets } = startHost(() => (granting ? lease(1_000) : "silence"));
  clock.runUntil(250);
  granting = false;
  clock.runUntil(1_500);
  t.deepEqual(pets.slice(0, 3).map((p) => [p.atMs, p.leaseUntilMs]), [[5, null], [105, 1_005], [205, 1_105]]);
  const isolatedAtMs = 205 + 1_000;
  t.false(pets.some((p) => p.atMs > isolatedAtMs && p.atMs < isolatedAtMs + 5), "no pet between the lease end and the next incarnation");
  t.true(pets.filter((p) => p.atMs > isolatedAtMs).every((p) => p.leaseUntilMs === null), "after rejoining without a lease: nothing to protect");
});

test("a probe is answered with the current incarnation", (t) => {
  const { actor, clock, probeAnswers } = startHost(() => lease(), { persistedIncarnation: 8 });
  clock.runUntil(20);
  actor.send({ type: "probe.received", replyTo: "_INBOX.1" });
  t.deepEqual(probeAnswers, [{ replyTo: "_INBOX.1", incarnation: 9 }]);
});

test("joining.expired moves a joining incarnation on (reason unleased); a stale one, or a leased host, ignores it", (t) => {
  let granting = false;
  const { actor, clock, isolations, joiningStarts, context } = startHost(() => (granting ? lease(1_000) : { grant: "no-authority", leaseMs: 0 }));
  clock.runUntil(50);
  t.deepEqual(joiningStarts, [{ incarnation: 1, atMs: 5 }], "the actor is asked to start the limit when the incarnation joins");
  actor.send({ type: "joining.expired", incarnation: 0 });
  t.is(context().phase, "joining", "an earlier incarnation's limit is stale");
  actor.send({ type: "joining.expired", incarnation: 1 });
  t.is(context().phase, "isolating");
  t.deepEqual(isolations.map(({ reason, incarnation }) => [reason, incarnation]), [["boot", 0], ["unleased", 1]]);
  clock.runUntil(100);
  t.is(context().incarnation, 2);
  t.deepEqual(joiningStarts.map(({ incarnation }) => incarnation), [1, 2]);
  granting = true;
  clock.runUntil(200);
  t.is(context().phase, "leased");
  actor.send({ type: "joining.expired", incarnation: 2 });
  t.is(context().phase, "leased", "a host that holds a lease is not joining: its lease, not the limit, ends it");
  t.is(isolations.length, 2);
});

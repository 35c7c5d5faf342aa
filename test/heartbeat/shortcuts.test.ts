import test from "ava";
import { isDeepStrictEqual } from "node:util";
import type { AnyActorRef } from "xstate";
import { createActorHost, takeMachine, type ActorHostPorts } from "../../actors/actorHost.ts";
import { createEffectBinding } from "../../actors/effectBinding.ts";
import { createSeededRandom } from "../../actors/seededRandom.ts";
import type { Random } from "../../actors/ports/random.ts";
import {
  grantOutcomes,
  heartbeatMonitorMachine,
  heartbeatMonitorShortcut,
  type AckHeartbeatParams,
  type AuthorityGrant,
  type HeartbeatMonitorEvent,
} from "../../machines/heartbeat/heartbeatMonitor.ts";
import { heartbeatSenderMachine, heartbeatSenderShortcut, type HeartbeatSenderEvent } from "../../machines/heartbeat/heartbeatSender.ts";
import { NodeClock } from "../../sim/nodeClock.ts";
import { VirtualClock } from "../../sim/virtualClock.ts";

/**
 * The heartbeat pair's shortcuts (events taken past xstate by the actor host)
 * against the machines themselves: two hosts of the same machine, one with the
 * shortcut and one without, get the same random events at the same virtual
 * times; after every event their state, context and effects must be equal.
 */

const events = 4_000;

interface Pair {
  readonly host: { getSnapshot(): { value: unknown; context: unknown } | undefined };
  readonly effects: Array<[string, unknown]>;
}

/** Where the two hosts first differ after an event, or undefined. */
function difference(plain: Pair, shortcut: Pair): string | undefined {
  const a = plain.host.getSnapshot()!;
  const b = shortcut.host.getSnapshot()!;
  if (!isDeepStrictEqual(a.value, b.value)) return `state ${JSON.stringify(a.value)} vs ${JSON.stringify(b.value)}`;
  if (!isDeepStrictEqual(a.context, b.context)) return "context";
  if (!isDeepStrictEqual(plain.effects, shortcut.effects)) return `effects ${JSON.stringify(plain.effects)} vs ${JSON.stringify(shortcut.effects)}`;
  return undefined;
}

function quietPorts(clock: NodeClock): ActorHostPorts {
  return {
    clock,
    network: {
      publish: () => {},
      subscribe: () => ({ unsubscribe: () => {} }),
      request: () => {},
    },
    log: { write: () => {} },
    metrics: { increment: () => {}, setGauge: () => {}, observe: () => {} },
  };
}

interface Effects {
  readonly effect: (name: string, params: unknown) => void;
}

const senderBinding = createEffectBinding<Effects>("test sender");
/** The machine as written: its beat is xstate's own delayed raise. */
const plainSender = heartbeatSenderMachine.provide({
  actions: {
    sendHeartbeat: ({ self }, params) => senderBinding.of(self).effect("sendHeartbeat", params),
    sendAnchorHeartbeat: ({ self }, params) => senderBinding.of(self).effect("sendAnchorHeartbeat", params),
    targetSwitched: ({ self }, params) => senderBinding.of(self).effect("targetSwitched", params),
    petWatchdog: ({ self }, params) => senderBinding.of(self).effect("petWatchdog", params),
    isolate: ({ self }, params) => senderBinding.of(self).effect("isolate", params),
    leaseExtended: ({ self }, params) => senderBinding.of(self).effect("leaseExtended", params),
    answerProbe: ({ self }, params) => senderBinding.of(self).effect("answerProbe", params),
  },
});

interface BeatEffects extends Effects {
  readonly armBeat: (delayMs: number) => void;
  readonly disarmBeat: () => void;
}

const beatBinding = createEffectBinding<BeatEffects>("test sender beat");
/** As the actor layer binds it: the beat is a timer of the actor's, handed over with deliverNow. */
const actorSender = plainSender.provide({
  actions: {
    armBeat: ({ self }, params) => beatBinding.of(self).armBeat(params.delayMs),
    disarmBeat: ({ self }) => beatBinding.of(self).disarmBeat(),
  },
});

const monitorBinding = createEffectBinding<Effects>("test monitor");
const boundMonitor = heartbeatMonitorMachine.provide({
  actions: {
    ackHeartbeat: ({ self }, params) => monitorBinding.of(self).effect("ackHeartbeat", params),
    sendDigest: ({ self }, params) => monitorBinding.of(self).effect("sendDigest", params),
    probeHosts: ({ self }, params) => monitorBinding.of(self).effect("probeHosts", params),
  },
});

const monitorIds = ["m1", "m2", "m3"];
const pick = <T>(random: Random, values: readonly T[]): T => values[random.int(values.length)]!;

function startSenders() {
  const global = new VirtualClock();
  const input = {
    hostId: "h1",
    monitorIds,
    config: { heartbeatIntervalMs: 100, missedAcksBeforeSwitch: 2, driftBackAfterMs: 2_000 },
    lease: { persistedIncarnation: 0, maxAcceptedLeaseMs: 1_000 },
  };
  const plainEffects: Array<[string, unknown]> = [];
  const plainHost = createActorHost(plainSender, quietPorts(new NodeClock(global)), {
    name: "sender",
    input,
    onActorCreated: (actor: AnyActorRef) => senderBinding.bind(actor, { effect: (name, params) => plainEffects.push([name, params]) }),
  });
  const effects: Array<[string, unknown]> = [];
  const effect = (name: string, params: unknown) => effects.push([name, params]);
  const clock = new NodeClock(global);
  let beat: unknown;
  const disarmBeat = () => clock.clearTimeout(beat);
  const armBeat = (delayMs: number) => {
    disarmBeat();
    beat = clock.setTimeout(() => host.deliverNow({ type: "beat.due" }), delayMs);
  };
  const host = createActorHost(actorSender, quietPorts(clock), {
    name: "sender",
    input,
    onActorCreated: (actor: AnyActorRef) => {
      senderBinding.bind(actor, { effect });
      beatBinding.bind(actor, { effect, armBeat, disarmBeat });
    },
    onActorTimersCancelled: disarmBeat,
    shortcut: (context, state, event) =>
      heartbeatSenderShortcut(context, state, event, {
        sendHeartbeat: (params) => effect("sendHeartbeat", params),
        sendAnchorHeartbeat: (params) => effect("sendAnchorHeartbeat", params),
        petWatchdog: (params) => effect("petWatchdog", params),
        leaseExtended: (params) => effect("leaseExtended", params),
        armBeat: (params) => armBeat(params.delayMs),
        disarmBeat,
      }) ?? takeMachine,
  });
  plainHost.start();
  host.start();
  return { global, plain: { host: plainHost, effects: plainEffects }, shortcut: { host, effects } };
}

function senderEvent(random: Random, nowMs: number, sequence: number, incarnation: number): HeartbeatSenderEvent {
  const roll = random.next();
  if (roll < 0.02) return { type: "lease.expired", nowMs };
  if (roll < 0.04) return { type: "isolation.done", incarnation: incarnation + 1 };
  if (roll < 0.3) return { type: "heartbeat.missed", sequence, monitorId: pick(random, monitorIds) };
  const sentAtMs = nowMs - random.int(300);
  return {
    type: "heartbeat.acked",
    sequence: Math.max(1, sequence - random.int(3)),
    monitorId: pick(random, monitorIds),
    grant: pick(random, grantOutcomes),
    leaseMs: pick(random, [0, 200, 1_100, 5_000]),
    sentAtMs,
    receivedAtMs: nowMs,
  };
}

test("the sender's beat timer and its shortcut for beats, acks and misses do what the machine does", (t) => {
  const random = createSeededRandom(41);
  const { global, plain, shortcut } = startSenders();
  let compared = 0;
  for (let index = 0; index < events; index++) {
    // Events land between beats and on them (a multiple of 10 ms), where the order of same-instant timers shows.
    global.runFor(random.int(7) * 10);
    const context = plain.host.getSnapshot()!.context;
    const event = senderEvent(random, global.now(), context.nextSequence - 1, context.incarnation);
    plain.host.send(event);
    shortcut.host.send(event);
    global.runFor(0);
    const found = difference(plain, shortcut);
    if (found !== undefined) return t.fail(`after event ${index} ${JSON.stringify(event)}: ${found}`);
    plain.effects.length = 0;
    shortcut.effects.length = 0;
    compared++;
  }
  const context = plain.host.getSnapshot()!.context;
  t.is(compared, events);
  t.true(context.acksReceived > 100 && context.acksMissed > 100 && context.switches > 10 && context.leasesGranted > 10 && context.isolations > 1, JSON.stringify(context));
});

function startMonitors() {
  const global = new VirtualClock();
  const make = (withShortcut: boolean) => {
    const effects: Array<[string, unknown]> = [];
    const effect = (name: string, params: unknown) => effects.push([name, params]);
    const host = createActorHost(boundMonitor, quietPorts(new NodeClock(global)), {
      name: "monitor",
      input: { monitorId: "m1", reporting: { digestIntervalMs: 100, maxHostsPerDigest: 5, maxProbesInFlight: 4 } },
      onActorCreated: (actor: AnyActorRef) => monitorBinding.bind(actor, { effect }),
      ...(withShortcut ? { shortcut: (context, _state, event) => heartbeatMonitorShortcut(context, event, (params: AckHeartbeatParams) => effect("ackHeartbeat", params)) ?? takeMachine } : {}),
    });
    host.start();
    return { host, effects };
  };
  return { global, plain: make(false), shortcut: make(true) };
}

const hostIds = Array.from({ length: 12 }, (_, index) => `h${index}`);

function monitorEvent(random: Random, nowMs: number, lastDigest: number): HeartbeatMonitorEvent {
  const roll = random.next();
  if (roll < 0.08) {
    const authority: AuthorityGrant = {
      termId: "t1",
      seq: random.int(100) + 1,
      validForMs: pick(random, [50, 300, 1_500]),
      leaseMs: 1_100,
      excluded: random.next() < 0.5 ? [{ hostId: pick(random, hostIds), incarnation: random.int(3) }] : [],
      probe: random.next() < 0.5 ? [{ hostId: pick(random, hostIds), incarnation: random.int(3), round: random.int(3) + 1 }] : [],
    };
    return { type: "digest.replied", sequence: lastDigest, sentAtMs: nowMs - random.int(50), authority };
  }
  if (roll < 0.1) return { type: "digest.failed", sequence: lastDigest };
  if (roll < 0.12) return { type: "probe.answered", hostId: pick(random, hostIds), round: random.int(3) + 1, incarnation: random.int(3), answeredAtMs: nowMs };
  if (roll < 0.14) return { type: "probe.unanswered", hostId: pick(random, hostIds), round: random.int(3) + 1 };
  return {
    type: "heartbeat.received",
    hostId: pick(random, hostIds),
    sequence: random.int(1_000) + 1,
    incarnation: random.int(3),
    receivedAtMs: nowMs,
    replyTo: random.next() < 0.05 ? "" : `_INBOX.${random.int(9)}`,
  };
}

test("the monitor's shortcut for heartbeats does what the machine does", (t) => {
  const random = createSeededRandom(43);
  const { global, plain, shortcut } = startMonitors();
  for (let index = 0; index < events; index++) {
    global.runFor(random.int(40));
    const event = monitorEvent(random, global.now(), plain.host.getSnapshot()!.context.inFlight?.sequence ?? 0);
    plain.host.send(event);
    shortcut.host.send(event);
    global.runFor(0);
    const found = difference(plain, shortcut);
    if (found !== undefined) return t.fail(`after event ${index} ${JSON.stringify(event)}: ${found}`);
    plain.effects.length = 0;
    shortcut.effects.length = 0;
  }
  const context = plain.host.getSnapshot()!.context;
  t.true(context.leasesGranted > 100 && context.grantsRefused > 100 && context.digestsAcknowledged > 10, JSON.stringify({ ...context, heard: undefined, pending: undefined, probes: undefined }));
});

test("a shortcut that throws stops the actor like a machine error, and its host restarts it", (t) => {
  const global = new VirtualClock();
  const effects: Array<[string, unknown]> = [];
  let throwNext = true;
  const host = createActorHost(boundMonitor, quietPorts(new NodeClock(global)), {
    name: "monitor",
    input: { monitorId: "m1" },
    onActorCreated: (actor: AnyActorRef) => monitorBinding.bind(actor, { effect: (name, params) => effects.push([name, params]) }),
    shortcut: (context, _state, event) => {
      if (event.type === "heartbeat.received" && throwNext) {
        throwNext = false;
        throw new Error("broken shortcut");
      }
      return heartbeatMonitorShortcut(context, event, (params) => effects.push(["ackHeartbeat", params])) ?? takeMachine;
    },
  });
  host.start();
  const heartbeat: HeartbeatMonitorEvent = { type: "heartbeat.received", hostId: "h1", sequence: 1, receivedAtMs: 0, replyTo: "r" };
  host.send(heartbeat);
  global.runFor(0);
  t.is(host.recentRestarts, 1);
  t.is(host.status, "running");
  host.send({ ...heartbeat, sequence: 2 });
  global.runFor(0);
  t.is(host.getSnapshot()!.context.heartbeatsAcked, 1, "the restarted actor starts from its initial context");
  t.deepEqual(
    effects.map(([name]) => name),
    ["ackHeartbeat"],
  );
});

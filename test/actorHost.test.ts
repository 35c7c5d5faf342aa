import test from "ava";
import { pack } from "msgpackr";
import { assign, setup } from "xstate";
import {
  actorErrorsMetric,
  actorGaveUpMetric,
  actorRestartsMetric,
  createActorHost,
  mailboxDroppedMetric,
  type ActorHostPorts,
  type InboundEvent,
} from "../actors/actorHost.ts";
import { messagesRejectedMetric } from "../actors/codec/rejectionCounter.ts";
import { subjectMatches, type NetMessage, type Network } from "../actors/ports/network.ts";
import { VirtualClock } from "../sim/virtualClock.ts";
import { recordingTelemetry } from "./codec/recordingTelemetry.ts";
import { testRegistry, type TestMessages } from "./codec/testMessages.ts";

/**
 * A loopback Network on the virtual clock: every publish is delivered to every
 * matching subscription one tick later. (sim/simNetwork.ts had not landed when
 * this was written; these tests need nothing beyond loopback delivery.)
 */
function loopbackNetwork(clock: VirtualClock): Network {
  const subscriptions = new Set<{ subject: string; handler: (message: NetMessage) => void }>();
  return {
    publish(subject, data, options) {
      const message: NetMessage = { subject, data, headers: options?.headers ?? {}, ...(options?.reply ? { reply: options.reply } : {}) };
      clock.schedule(0, () => {
        for (const subscription of [...subscriptions]) if (subjectMatches(subscription.subject, subject)) subscription.handler(message);
      });
    },
    subscribe(subject, handler) {
      const subscription = { subject, handler };
      subscriptions.add(subscription);
      return { unsubscribe: () => subscriptions.delete(subscription) };
    },
    request(_subject, _data, _options, done) {
      clock.schedule(0, () => done({ ok: false, failure: "no-responders" }));
    },
  };
}

function makePorts() {
  const virtualClock = new VirtualClock();
  const telemetry = recordingTelemetry();
  const ports: ActorHostPorts = {
    clock: {
      now: () => virtualClock.now(),
      setTimeout: (callback, delayMs) => virtualClock.schedule(delayMs, callback),
      clearTimeout: (handle) => virtualClock.cancel(handle),
    },
    network: loopbackNetwork(virtualClock),
    log: telemetry.log,
    metrics: telemetry.metrics,
  };
  return { virtualClock, telemetry, ports };
}

type HeartbeatEvent = InboundEvent<TestMessages, "hb.ping" | "hb.ack">;

/** Records what it receives; `boom` throws inside an action; times out after `timeoutMs` in `waiting`. */
const recorderMachine = setup({
  types: {
    context: {} as { label: string; seen: string[]; pings: number[]; replies: string[] },
    events: {} as
      | { type: "note"; text: string }
      | { type: "boom" }
      | { type: "wait" }
      | { type: "haring.resume" }
      | HeartbeatEvent,
    input: {} as { label: string },
  },
  actions: {
    explode: () => {
      throw new Error("machine bug");
    },
  },
}).createMachine({
  id: "recorder",
  context: ({ input }) => ({ label: input.label, seen: [], pings: [], replies: [] }),
  initial: "idle",
  on: {
    note: { actions: assign({ seen: ({ context, event }) => [...context.seen, event.text] }) },
    boom: { actions: "explode" },
    "hb.ping": {
      actions: assign({
        pings: ({ context, event }) => [...context.pings, event.body.sequence],
        replies: ({ context, event }) => [...context.replies, `${event.from}/${event.cid}/${event.subject}/${event.reply ?? "-"}`],
      }),
    },
  },
  states: {
    idle: { on: { wait: "waiting" } },
    waiting: {
      after: { 1_000: "expired" },
      on: { "haring.resume": { target: "waiting", reenter: true } },
    },
    expired: {},
  },
});

test("after timers run on the injected clock", (t) => {
  const { virtualClock, ports } = makePorts();
  const host = createActorHost(recorderMachine, ports, { name: "rec/1", input: { label: "a" } });
  host.start();
  host.send({ type: "wait" });
  virtualClock.runUntil(0);
  t.is(host.getSnapshot()?.value, "waiting");
  virtualClock.runUntil(999);
  t.is(host.getSnapshot()?.value, "waiting");
  virtualClock.runUntil(1_000);
  t.is(host.getSnapshot()?.value, "expired");
});

test("the mailbox delivers in order on a later tick, never inside send", (t) => {
  const { virtualClock, ports } = makePorts();
  const host = createActorHost(recorderMachine, ports, { name: "rec/1", input: { label: "a" } });
  host.start();
  for (const text of ["one", "two", "three"]) t.true(host.send({ type: "note", text }));
  t.deepEqual(host.getSnapshot()?.context.seen, [], "nothing delivered synchronously");
  t.is(host.mailboxDepth, 3);
  virtualClock.runUntil(0);
  t.deepEqual(host.getSnapshot()?.context.seen, ["one", "two", "three"]);
  t.is(host.mailboxDepth, 0);
});

test("the mailbox bound is respected; overflow is dropped, counted and logged once per episode", (t) => {
  const { virtualClock, telemetry, ports } = makePorts();
  const host = createActorHost(recorderMachine, ports, { name: "rec/1", input: { label: "a" }, limits: { maxMailboxDepth: 3 } });
  host.start();
  const accepted = ["a", "b", "c", "d", "e"].map((text) => host.send({ type: "note", text }));
  t.deepEqual(accepted, [true, true, true, false, false]);
  t.is(host.mailboxDepth, 3);
  virtualClock.runUntil(0);
  t.deepEqual(host.getSnapshot()?.context.seen, ["a", "b", "c"]);
  t.is(telemetry.counter(mailboxDroppedMetric, { actor: "recorder", reason: "overflow" }), 2);
  t.is(telemetry.lines.filter((line) => line.event === "mailbox.overflow").length, 1);
  // a second episode after the mailbox drained is logged again
  for (const text of ["f", "g", "h", "i"]) host.send({ type: "note", text });
  virtualClock.runUntil(0);
  t.is(telemetry.counter(mailboxDroppedMetric, { reason: "overflow" }), 3);
  t.is(telemetry.lines.filter((line) => line.event === "mailbox.overflow").length, 2);
});

test("listen delivers valid messages as events and never lets garbage reach the machine", (t) => {
  const { virtualClock, telemetry, ports } = makePorts();
  const host = createActorHost(recorderMachine, ports, { name: "rec/1", input: { label: "a" } });
  host.start();
  host.listen("haring.c1.hb.*", testRegistry, { allowedTypes: ["hb.ping"] });
  const ping = (sequence: number) => testRegistry.encode("hb.ping", "h7", `h7-${sequence}`, { sequence, sentAtMs: 10 });
  ports.network.publish("haring.c1.hb.m1", ping(1), { reply: "_INBOX.h7.1" });
  ports.network.publish("haring.c1.hb.m1", new Uint8Array([0xde, 0xad, 0xbe, 0xef]));
  ports.network.publish("haring.c1.hb.m1", ping(2).subarray(0, 10));
  ports.network.publish("haring.c1.hb.m1", testRegistry.encode("hb.ack", "m1", "x", { sequence: 1, leaseMs: 1, granted: true }));
  ports.network.publish("haring.c1.hb.m1", pack({ v: 1, t: "hb.ping", from: "h7", cid: "", body: { sequence: "3", sentAtMs: 0 } }));
  for (let index = 0; index < 100; index++) ports.network.publish("haring.c1.hb.m2", new Uint8Array([0xc1, index]));
  ports.network.publish("haring.c1.hb.m2", ping(3));
  virtualClock.runUntil(10);

  const context = host.getSnapshot()?.context;
  t.deepEqual(context?.pings, [1, 3]);
  t.deepEqual(context?.replies, ["h7/h7-1/haring.c1.hb.m1/_INBOX.h7.1", "h7/h7-3/haring.c1.hb.m2/-"]);
  t.is(telemetry.counter(messagesRejectedMetric, { family: "hb" }), 104);
  t.is(telemetry.counter(messagesRejectedMetric, { reason: "malformed" }), 100);
  t.is(telemetry.counter(messagesRejectedMetric, { reason: "truncated" }), 2, "a ping cut short, and 0xdeadbeef (a map header promising 44478 entries)");
  t.is(telemetry.counter(messagesRejectedMetric, { reason: "unexpected-type" }), 1);
  t.is(telemetry.counter(messagesRejectedMetric, { reason: "invalid-body" }), 1);
  t.true(telemetry.lines.filter((line) => line.event === "message.rejected").length <= 5, "a flood of garbage is logged once per kind");
  t.is(host.getSnapshot()?.status, "active");
});

test("a custom toEvent maps messages; a throwing one is logged, not fatal", (t) => {
  const { virtualClock, telemetry, ports } = makePorts();
  const host = createActorHost(recorderMachine, ports, { name: "rec/1", input: { label: "a" } });
  host.start();
  host.listen("haring.c1.hb.m1", testRegistry, {
    allowedTypes: ["hb.ping"],
    toEvent: (message) => {
      if (message.body.sequence === 13) throw new Error("unlucky");
      return { type: "note", text: `ping ${message.body.sequence}` };
    },
  });
  for (const sequence of [12, 13, 14]) ports.network.publish("haring.c1.hb.m1", testRegistry.encode("hb.ping", "h1", "", { sequence, sentAtMs: 0 }));
  virtualClock.runUntil(10);
  t.deepEqual(host.getSnapshot()?.context.seen, ["ping 12", "ping 14"]);
  t.is(telemetry.lines.filter((line) => line.event === "actor.to-event-failed").length, 1);
});

test("restore loses after timers (xstate#5331); the resume event re-arms them", (t) => {
  const { virtualClock, ports } = makePorts();
  const first = createActorHost(recorderMachine, ports, { name: "rec/1", input: { label: "a" } });
  first.start();
  first.send({ type: "wait" });
  virtualClock.runUntil(400);
  const persisted = first.getPersistedSnapshot();
  first.stop();
  if (persisted === undefined) return t.fail();

  const resumed = createActorHost(recorderMachine, ports, { name: "rec/1", input: { label: "a" } });
  resumed.restore(persisted);
  t.is(resumed.getSnapshot()?.value, "waiting");
  virtualClock.runUntil(1_399);
  t.is(resumed.getSnapshot()?.value, "waiting", "the timer restarted at restore time, by re-entering the state");
  virtualClock.runUntil(1_400);
  t.is(resumed.getSnapshot()?.value, "expired");

  // Without a resume handler, a restored state would wait forever.
  const withoutResume = createActorHost(machineWithoutResume(), ports, { name: "rec/2" });
  withoutResume.restore(persisted);
  virtualClock.runUntil(10_000);
  t.is(withoutResume.getSnapshot()?.value, "waiting");
});

function machineWithoutResume() {
  return setup({ types: { context: {} as { label: string; seen: string[]; pings: number[]; replies: string[] } } }).createMachine({
    id: "recorder",
    context: { label: "", seen: [], pings: [], replies: [] },
    initial: "idle",
    states: { idle: {}, waiting: { after: { 1_000: "expired" } }, expired: {} },
  });
}

test("an actor that throws is restarted from its initial state with the same input, up to the bound", (t) => {
  const { virtualClock, telemetry, ports } = makePorts();
  const host = createActorHost(recorderMachine, ports, {
    name: "rec/1",
    input: { label: "keep" },
    limits: { maxActorRestartsPerWindow: 2, actorRestartWindowMs: 1_000 },
  });
  host.start();
  host.send({ type: "note", text: "before" });
  host.send({ type: "boom" });
  host.send({ type: "note", text: "after" });
  virtualClock.runUntil(0);
  t.is(host.status, "running");
  t.deepEqual(host.getSnapshot()?.context.seen, ["after"], "fresh context, and the event queued behind the crash still arrives");
  t.is(host.getSnapshot()?.context.label, "keep");
  t.is(telemetry.counter(actorErrorsMetric), 1);
  t.is(telemetry.counter(actorRestartsMetric), 1);
  t.is(host.recentRestarts, 1);

  host.send({ type: "boom" });
  virtualClock.runUntil(100);
  t.is(host.status, "running");
  t.is(telemetry.counter(actorRestartsMetric), 2);

  host.send({ type: "boom" });
  virtualClock.runUntil(200);
  t.is(host.status, "failed");
  t.is(telemetry.counter(actorGaveUpMetric), 1);
  t.is(telemetry.counter(actorRestartsMetric), 2);
  const gaveUp = telemetry.lines.find((line) => line.event === "actor.gave-up");
  t.like(gaveUp, { level: "error", fields: { actor: "rec/1", kind: "recorder", error: "Error: machine bug", restarts: 2 } });
  t.false(host.send({ type: "note", text: "ignored" }));
  t.is(telemetry.counter(mailboxDroppedMetric, { reason: "not-running" }), 1);

  host.restart();
  t.is(host.status, "running", "an explicit restart revives a failed actor");
});

test("restarts are counted per window: spaced-out errors never exhaust the bound", (t) => {
  const { virtualClock, ports } = makePorts();
  const host = createActorHost(recorderMachine, ports, {
    name: "rec/1",
    input: { label: "a" },
    limits: { maxActorRestartsPerWindow: 2, actorRestartWindowMs: 1_000 },
  });
  host.start();
  for (let round = 1; round <= 6; round++) {
    host.send({ type: "boom" });
    virtualClock.runUntil(round * 600);
    t.is(host.status, "running", `round ${round}`);
  }
});

test("an error while starting is contained and bounded too", (t) => {
  const { virtualClock, telemetry, ports } = makePorts();
  const brokenMachine = setup({ types: { input: {} as { monitors: number } } }).createMachine({
    id: "broken",
    context: ({ input }) => {
      if (input.monitors === 0) throw new RangeError("needs a monitor");
      return {};
    },
  });
  const host = createActorHost(brokenMachine, ports, { name: "broken/1", input: { monitors: 0 }, limits: { maxActorRestartsPerWindow: 3 } });
  t.notThrows(() => host.start());
  virtualClock.runUntil(10);
  t.is(host.status, "failed");
  t.is(telemetry.counter(actorRestartsMetric), 3);
  t.is(telemetry.counter(actorErrorsMetric), 4);
});

test("restart keeps the mailbox and input; stop drops the mailbox and the actor's timers", (t) => {
  const { virtualClock, telemetry, ports } = makePorts();
  const host = createActorHost(recorderMachine, ports, { name: "rec/1", input: { label: "a" } });
  host.start();
  host.send({ type: "wait" });
  virtualClock.runUntil(0);
  host.send({ type: "note", text: "queued" });
  host.restart();
  virtualClock.runUntil(0);
  t.is(host.getSnapshot()?.value, "idle");
  t.deepEqual(host.getSnapshot()?.context.seen, ["queued"]);

  host.send({ type: "wait" });
  virtualClock.runUntil(10);
  host.send({ type: "note", text: "lost" });
  host.stop();
  t.is(host.status, "stopped");
  t.is(virtualClock.pendingTimers, 0, "the after timer and the drain were cancelled");
  t.is(telemetry.counter(mailboxDroppedMetric, { reason: "stopped" }), 1);
  t.throws(() => host.start(), { message: /already started/ });
});

test("dispose closes subscriptions; a stopped host drops what still arrives", (t) => {
  const { virtualClock, telemetry, ports } = makePorts();
  const host = createActorHost(recorderMachine, ports, { name: "rec/1", input: { label: "a" } });
  host.start();
  host.listen("haring.c1.hb.m1", testRegistry, { allowedTypes: ["hb.ping"] });
  const ping = testRegistry.encode("hb.ping", "h1", "", { sequence: 1, sentAtMs: 0 });
  host.stop();
  ports.network.publish("haring.c1.hb.m1", ping);
  virtualClock.runUntil(1);
  t.is(telemetry.counter(mailboxDroppedMetric, { reason: "not-running" }), 1);
  host.dispose();
  ports.network.publish("haring.c1.hb.m1", ping);
  virtualClock.runUntil(2);
  t.is(telemetry.counter(mailboxDroppedMetric, { reason: "not-running" }), 1, "no longer subscribed");
  t.throws(() => host.listen("haring.c1.hb.m1", testRegistry), { message: /disposed/ });
});

test("snapshot listeners follow the actor across restarts; a throwing listener is logged", (t) => {
  const { virtualClock, telemetry, ports } = makePorts();
  const host = createActorHost(recorderMachine, ports, { name: "rec/1", input: { label: "a" } });
  const seen: string[] = [];
  host.onSnapshot((snapshot) => seen.push(String(snapshot.value)));
  host.onSnapshot(() => {
    throw new Error("listener bug");
  });
  host.start();
  host.send({ type: "wait" });
  virtualClock.runUntil(0);
  host.send({ type: "boom" });
  virtualClock.runUntil(0);
  host.send({ type: "wait" });
  virtualClock.runUntil(0);
  t.deepEqual(seen, ["idle", "waiting", "idle", "waiting"]);
  t.true(telemetry.lines.some((line) => line.event === "actor.snapshot-listener-failed"));
});

test("the same inputs produce the same transcript", (t) => {
  const run = () => {
    const { virtualClock, telemetry, ports } = makePorts();
    const host = createActorHost(recorderMachine, ports, { name: "rec/1", input: { label: "a" }, limits: { maxActorRestartsPerWindow: 1 } });
    host.start();
    host.listen("haring.c1.hb.m1", testRegistry, { allowedTypes: ["hb.ping"] });
    for (let index = 0; index < 20; index++) {
      ports.network.publish("haring.c1.hb.m1", index % 3 === 0 ? new Uint8Array([index]) : testRegistry.encode("hb.ping", "h1", `${index}`, { sequence: index, sentAtMs: 0 }));
      if (index % 7 === 0) host.send({ type: "boom" });
    }
    virtualClock.runUntil(5_000);
    return JSON.stringify([telemetry.lines, host.status, host.getSnapshot()?.context]);
  };
  t.is(run(), run());
});

test("an actor that reaches a final state is done; later events are dropped", (t) => {
  const { virtualClock, telemetry, ports } = makePorts();
  const oneShot = setup({ types: { events: {} as { type: "finish" } | { type: "note" } } }).createMachine({
    id: "oneShot",
    initial: "open",
    states: { open: { on: { finish: "closed" } }, closed: { type: "final" } },
  });
  const host = createActorHost(oneShot, ports, { name: "once/1" });
  host.start();
  host.send({ type: "finish" });
  host.send({ type: "note" });
  virtualClock.runUntil(0);
  t.is(host.status, "done");
  t.is(telemetry.counter(mailboxDroppedMetric, { actor: "oneShot", reason: "done" }), 1);
  t.false(host.send({ type: "note" }));
});

import test from "ava";
import type { Clock } from "../actors/ports/clock.ts";
import type { Subscription } from "../actors/ports/network.ts";
import type { ConsumerConfig, KvEntry, Stream, StreamMessage } from "../actors/ports/stream.ts";
import {
  SimStreamServer,
  defaultSimRequestTimeoutMs,
  simServerDownMessage,
  simUnreachableMessage,
  subjectPatternsOverlap,
  type SimStreamClient,
} from "../sim/simStream.ts";
import { VirtualClock } from "../sim/virtualClock.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const text = (bytes: Uint8Array) => decoder.decode(bytes);

function world(latencyMs = 1) {
  const virtualClock = new VirtualClock();
  const clock: Clock = {
    now: () => virtualClock.now(),
    setTimeout: (callback, ms) => virtualClock.schedule(ms, callback),
    clearTimeout: (handle) => virtualClock.cancel(handle),
  };
  const server = new SimStreamServer(clock, { clusterSize: 1 });
  const client = (nodeId: string) => server.client(nodeId, { latencyMs });
  /** Runs the virtual clock until `done` has been called; returns what it got and when. */
  function call<T>(start: (done: (outcome: T) => void) => void): { outcome: T; atMs: number } {
    let result: { outcome: T; atMs: number } | undefined;
    start((outcome) => (result = { outcome, atMs: virtualClock.now() }));
    while (!result) if (!virtualClock.step()) throw new Error("stalled");
    return result;
  }
  return { virtualClock, server, client, call };
}

const baseStream = { duplicateWindowMs: 60_000, replicas: 1 as const, maxMessages: 1_000, maxBytes: 1 << 20 };
const baseConsumer: Omit<ConsumerConfig, "durableName" | "filterSubject"> = { ackWaitMs: 500, maxDeliver: 5, maxAckPending: 100 };

function setUp(latencyMs = 1) {
  const sim = world(latencyMs);
  const first = sim.client("n1");
  sim.call((done) => first.ensureStream({ name: "CMD", subjects: ["cmd.>"], ...baseStream }, done));
  const publish = (via: Stream, body: string, msgId?: string) =>
    sim.call((done: Parameters<Stream["publish"]>[3]) => via.publish(`cmd.${body}`, encoder.encode(body), msgId ? { msgId } : {}, done));
  const consume = (via: Stream, durableName: string, handler: (message: StreamMessage) => void, config: Partial<ConsumerConfig> = {}) => {
    const { outcome } = sim.call((done: Parameters<Stream["consume"]>[3]) =>
      via.consume("CMD", { durableName, filterSubject: "cmd.>", ...baseConsumer, ...config }, handler, done),
    );
    if (!outcome.ok) throw new Error(outcome.error);
    return outcome.subscription;
  };
  return { ...sim, first, publish, consume };
}

test("every answer takes a round trip of virtual latency and never comes synchronously", (t) => {
  const { first, publish, virtualClock } = setUp(2);
  const start = virtualClock.now();
  let returned = false;
  let sawReturn = false;
  first.publish("cmd.x", encoder.encode("x"), {}, () => (sawReturn = returned));
  returned = true;
  virtualClock.runFor(4);
  t.true(sawReturn);
  const { atMs } = publish(first, "y");
  t.is(atMs - start - 4, 4);
});

test("server loss: requests fail after the request timeout; stored data and consumers resume after recovery", (t) => {
  const { server, first, publish, consume, call, virtualClock } = setUp();
  const deliveries: string[] = [];
  consume(first, "worker", (message) => {
    deliveries.push(`${text(message.data)}#${message.deliveryCount}`);
    if (message.deliveryCount >= 2 || text(message.data) === "after") message.ack();
  });
  t.true(publish(first, "before", "b").outcome.ok);
  virtualClock.runFor(10);
  t.deepEqual(deliveries, ["before#1"]);

  server.setAvailable(false);
  const sentAt = virtualClock.now();
  const during = publish(first, "during", "d");
  t.deepEqual(during.outcome, { ok: false, error: `publish to cmd.during: ${simServerDownMessage}` });
  t.is(during.atMs - sentAt, defaultSimRequestTimeoutMs);
  t.false(call((done: Parameters<Stream["kvGet"]>[2]) => first.kvGet("view", "k", done)).outcome.ok);
  t.deepEqual(deliveries, ["before#1"], "no deliveries while the server is down");

  server.setAvailable(true);
  virtualClock.runFor(10);
  t.deepEqual(deliveries, ["before#1", "before#2"], "the unacked message comes back after recovery");
  t.deepEqual(publish(first, "after", "a").outcome, { ok: true, stream: "CMD", sequence: 2, duplicate: false });
  virtualClock.runFor(10);
  t.deepEqual(deliveries, ["before#1", "before#2", "after#1"]);
  t.deepEqual(server.consumerInfo("CMD", "worker"), { ackPending: 0, waitingForRedelivery: 0, nextSequence: 3, bindings: 1 });
});

test("a node cut off from the server fails its requests; the durable's other subscriber gets the work", (t) => {
  const { server, client, first, publish, consume, virtualClock } = setUp();
  const second = client("n2");
  const byNode: string[] = [];
  const ackAll = (node: string) => (message: StreamMessage) => {
    byNode.push(`${node}:${text(message.data)}`);
    message.ack();
  };
  consume(first, "shared", ackAll("n1"));
  consume(second, "shared", ackAll("n2"));
  server.setReachable("n1", false);
  t.deepEqual(publish(first, "lost").outcome, { ok: false, error: `publish to cmd.lost: ${simUnreachableMessage}` });
  for (const body of ["a", "b", "c"]) publish(second, body);
  virtualClock.runFor(10);
  t.deepEqual(byNode, ["n2:a", "n2:b", "n2:c"]);
  server.setReachable("n1", true);
  for (const body of ["d", "e"]) publish(second, body);
  virtualClock.runFor(10);
  t.deepEqual(byNode.slice(3).map((entry) => entry.split(":")[0]).sort(), ["n1", "n2"], "round robin again once n1 is back");
});

test("a crashed node's unacked messages go to the other subscriber after ack wait", (t) => {
  const { client, first, publish, consume, virtualClock } = setUp();
  const second = client("n2");
  const seen: string[] = [];
  consume(first, "pool", (message) => seen.push(`n1:${text(message.data)}#${message.deliveryCount}`));
  publish(second, "job");
  virtualClock.runFor(10);
  (first as SimStreamClient).close();
  consume(second, "pool", (message) => {
    seen.push(`n2:${text(message.data)}#${message.deliveryCount}`);
    message.ack();
  });
  virtualClock.runFor(600);
  t.deepEqual(seen, ["n1:job#1", "n2:job#2"]);
});

test("max ack pending bounds what is in flight; acks let the rest through in order", (t) => {
  const { first, publish, consume, virtualClock } = setUp();
  const held: StreamMessage[] = [];
  consume(first, "narrow", (message) => held.push(message), { maxAckPending: 2, ackWaitMs: 10_000 });
  for (const body of ["m1", "m2", "m3", "m4", "m5"]) publish(first, body);
  virtualClock.runFor(50);
  t.deepEqual(held.map((message) => text(message.data)), ["m1", "m2"]);
  held[0]!.ack();
  held[0]!.ack(); // a second ack of the same delivery changes nothing
  virtualClock.runFor(50);
  t.deepEqual(held.map((message) => text(message.data)), ["m1", "m2", "m3"]);
  for (const message of held.slice(1)) message.ack();
  virtualClock.runFor(50);
  t.deepEqual(held.map((message) => text(message.data)), ["m1", "m2", "m3", "m4", "m5"]);
});

test("a watch that loses the server catches up in revision order once it is back", (t) => {
  const { server, client, first, call, virtualClock } = setUp();
  const watcherNode = client("watcher");
  t.true(call((done: Parameters<Stream["ensureKv"]>[1]) => first.ensureKv({ bucket: "view", replicas: 1, history: 1, maxValueBytes: 1024 }, done)).outcome.ok);
  const put = (key: string, value: string) => call((done: Parameters<Stream["kvPut"]>[3]) => first.kvPut("view", key, encoder.encode(value), done));
  put("epoch", "1");
  const seen: string[] = [];
  const watch: Subscription = watcherNode.kvWatch("view", "*", (entry: KvEntry) => seen.push(`${entry.key}=${text(entry.value)}@${entry.revision}`));
  virtualClock.runFor(10);
  server.setReachable("watcher", false);
  put("epoch", "2");
  put("leader", "c1");
  virtualClock.runFor(10);
  t.deepEqual(seen, ["epoch=1@1"]);
  server.setReachable("watcher", true);
  virtualClock.runFor(10);
  watch.unsubscribe();
  put("epoch", "3");
  virtualClock.runFor(10);
  t.deepEqual(seen, ["epoch=1@1", "epoch=2@2", "leader=c1@3"]);
});

test("streams refuse overlapping subjects and replicas a single server cannot hold; limits discard the oldest", (t) => {
  const { server, first, call, publish } = setUp();
  const ensure = (name: string, subjects: string[], extra: object = {}) =>
    call((done: Parameters<Stream["ensureStream"]>[1]) => first.ensureStream({ name, subjects, ...baseStream, ...extra }, done)).outcome;
  t.deepEqual(ensure("OTHER", ["cmd.x.*"]), { ok: false, error: "ensureStream OTHER: subjects overlap with an existing stream" });
  t.deepEqual(ensure("R3", ["r3.>"], { replicas: 3 }), { ok: false, error: "ensureStream R3: replicas > 1 not supported in non-clustered mode" });
  t.deepEqual(ensure("CMD", ["cmd.>"], { maxBytes: 200 }), { ok: true });
  for (const body of ["aaaaaaaaaa", "bbbbbbbbbb", "cccccccccc", "dddddddddd", "eeeeeeeeee"]) publish(first, body);
  const info = server.streamInfo("CMD")!;
  t.true(info.bytes <= 200);
  t.is(info.lastSequence, 5);
  t.true(info.firstSequence > 1);
  t.is(info.messages, info.lastSequence - info.firstSequence + 1);
});

test("subject pattern overlap", (t) => {
  t.true(subjectPatternsOverlap("a.>", "a.b.c"));
  t.true(subjectPatternsOverlap("a.*.c", "a.b.*"));
  t.true(subjectPatternsOverlap("*", "x"));
  t.false(subjectPatternsOverlap("a.*", "a.b.c"));
  t.false(subjectPatternsOverlap("a.b", "a.c"));
  t.false(subjectPatternsOverlap("a.>", "a"));
});

test("the same script gives the same trace twice", (t) => {
  const run = () => {
    const { first, publish, consume, virtualClock } = setUp(0.3);
    const trace: string[] = [];
    consume(first, "d", (message) => {
      trace.push(`${virtualClock.now()}:${text(message.data)}#${message.deliveryCount}`);
      if (message.deliveryCount === 2) message.nak(25);
      if (message.deliveryCount === 3) message.ack();
    }, { ackWaitMs: 100 });
    for (const body of ["x", "y", "z"]) publish(first, body, body);
    virtualClock.runFor(1_000);
    return trace;
  };
  const once = run();
  t.is(once.length, 9);
  t.deepEqual(run(), once);
});

test("consumers see only their filter's messages, a late durable gets the stored backlog, and a changed filter re-targets it", (t) => {
  const { first, publish, consume, virtualClock, server } = setUp();
  const byConsumer = new Map<string, string[]>();
  const record = (name: string) => (message: StreamMessage) => {
    byConsumer.set(name, [...(byConsumer.get(name) ?? []), `${message.streamSequence}:${text(message.data)}`]);
    message.ack();
  };
  for (const body of ["h1", "h2", "h1", "h3"]) publish(first, body);
  consume(first, "one", record("one"), { filterSubject: "cmd.h1" });
  consume(first, "all", record("all"), { filterSubject: "cmd.*" });
  publish(first, "h2");
  virtualClock.runFor(10);
  t.deepEqual(byConsumer.get("one"), ["1:h1", "3:h1"]);
  t.deepEqual(byConsumer.get("all"), ["1:h1", "2:h2", "3:h1", "4:h3", "5:h2"]);

  const subscription = consume(first, "one", record("one"), { filterSubject: "cmd.h2" });
  publish(first, "h2");
  publish(first, "h1");
  virtualClock.runFor(10);
  subscription.unsubscribe();
  // Whether an h2 stored before the change (5) is still delivered depends on how far the server had scanned; not asserted.
  const afterChange = byConsumer.get("one")!.slice(2);
  t.true(afterChange.includes("6:h2"));
  t.false(afterChange.includes("7:h1"), "no h1 after the filter moved to h2");
  t.is(server.consumerInfo("CMD", "all")!.ackPending, 0);
});

test("a KV bucket keeps one sequence for every key and serves the newest value within its history", (t) => {
  const { first, call, server } = setUp();
  call((done: Parameters<Stream["ensureKv"]>[1]) => first.ensureKv({ bucket: "hist", replicas: 1, history: 2, maxValueBytes: 100 }, done));
  const put = (key: string, value: string) =>
    call((done: Parameters<Stream["kvPut"]>[3]) => first.kvPut("hist", key, encoder.encode(value), done)).outcome;
  t.deepEqual(put("a", "1"), { ok: true, value: 1 });
  t.deepEqual(put("b", "1"), { ok: true, value: 2 });
  t.deepEqual(put("a", "2"), { ok: true, value: 3 });
  t.deepEqual(put("a", "3"), { ok: true, value: 4 });
  const got = call((done: Parameters<Stream["kvGet"]>[2]) => first.kvGet("hist", "a", done)).outcome;
  t.true(got.ok && got.value !== undefined && text(got.value.value) === "3" && got.value.revision === 4);
  const info = server.streamInfo("KV_hist")!;
  t.is(info.messages, 3, "two values of a (history 2) and one of b");
  t.is(info.firstSequence, 2);
});

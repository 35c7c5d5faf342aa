/**
 * The simulated JetStream must behave like the real one: the same scripted
 * sequence runs against SimStream (on the virtual clock) and against a real
 * nats-server, and both must produce the same observable trace.
 */
import test from "ava";
import type { Clock } from "../actors/ports/clock.ts";
import type { ConsumerConfig, KvEntry, Stream, StreamMessage } from "../actors/ports/stream.ts";
import { NatsNetwork } from "../runtime/natsNetwork.ts";
import { NatsStream } from "../runtime/natsStream.ts";
import { startNatsServer, type NatsServer } from "../runtime/natsServer.ts";
import { SimStreamServer } from "../sim/simStream.ts";
import { VirtualClock } from "../sim/virtualClock.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const text = (bytes: Uint8Array) => decoder.decode(bytes);

interface Backend {
  readonly stream: Stream;
  call<T>(start: (done: (outcome: T) => void) => void): Promise<T>;
  wait(ms: number): Promise<void>;
  until(condition: () => boolean, what: string): Promise<void>;
}

const ackWaitMs = 400;
const maxDeliver = 2;

type Trace = unknown[];

function sortedHeaders(headers: Readonly<Record<string, string>>): [string, string][] {
  return Object.entries(headers).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

async function script(backend: Backend): Promise<Trace> {
  const stream = backend.stream;
  const trace: Trace = [];
  const record = (step: string, outcome: unknown) => trace.push([step, outcome]);

  record(
    "ensureStream",
    await backend.call((done) =>
      stream.ensureStream({ name: "AGREE", subjects: ["agree.>"], duplicateWindowMs: 60_000, replicas: 1, maxMessages: 1_000, maxBytes: 1 << 20 }, done),
    ),
  );
  const publish = (subject: string, body: string, msgId?: string) =>
    backend.call((done: Parameters<Stream["publish"]>[3]) =>
      stream.publish(subject, encoder.encode(body), { ...(msgId ? { msgId } : {}), headers: { "Haring-Type": "agree" } }, done),
    );
  record("publish ack", await publish("agree.a", "ack", "id-1"));
  record("publish ack again", await publish("agree.a", "ack (duplicate)", "id-1"));
  record("publish late", await publish("agree.b", "late", "id-2"));
  record("publish never", await publish("agree.c", "never", "id-3"));
  record("publish nak", await publish("agree.d", "nak", "id-4"));
  record("publish term", await publish("agree.e", "term", "id-5"));
  record("publish without msg id", await publish("agree.f", "plain"));
  record("publish to an invalid subject", await publish("agree.*", "x"));
  record("publish where no stream listens", await publish("elsewhere.x", "x", "id-x"));

  const consumer: ConsumerConfig = { durableName: "agree-worker", filterSubject: "agree.>", ackWaitMs, maxDeliver, maxAckPending: 100 };
  const deliveries: [number, string, string, number, [string, string][]][] = [];
  const onMessage = (message: StreamMessage) => {
    const body = text(message.data);
    deliveries.push([message.streamSequence, message.subject, body, message.deliveryCount, sortedHeaders(message.headers)]);
    if (body === "ack" || body === "plain") message.ack();
    if (body === "late" && message.deliveryCount === 2) message.ack();
    if (body === "nak") {
      if (message.deliveryCount === 1) message.nak(100);
      else message.ack();
    }
    if (body === "term") message.term();
  };
  const ready = await backend.call<Parameters<Parameters<Stream["consume"]>[3]>[0]>((done) => stream.consume("AGREE", consumer, onMessage, done));
  if (!ready.ok) throw new Error(ready.error);
  record("consume", { ok: ready.ok });
  await backend.until(() => deliveries.length >= 9, "nine deliveries");
  await backend.wait(ackWaitMs * 2 + 300); // "never" gives up after maxDeliver; nothing else may come
  ready.subscription.unsubscribe();
  deliveries.sort((a, b) => a[0] - b[0] || a[3] - b[3]);
  record("deliveries", deliveries.slice());

  record("publish ack after consuming", await publish("agree.a", "ack (late duplicate)", "id-1"));
  const afterwards: unknown[] = [];
  const again = await backend.call<Parameters<Parameters<Stream["consume"]>[3]>[0]>((done) =>
    stream.consume("AGREE", consumer, (message) => afterwards.push([message.streamSequence, message.deliveryCount]), done),
  );
  if (!again.ok) throw new Error(again.error);
  await backend.wait(ackWaitMs + 200);
  again.subscription.unsubscribe();
  record("nothing left for the durable", afterwards);

  record(
    "ensureStream with limits",
    await backend.call((done) =>
      stream.ensureStream({ name: "LIMITED", subjects: ["limited.*"], duplicateWindowMs: 300, replicas: 1, maxMessages: 2, maxBytes: 1 << 20 }, done),
    ),
  );
  const limitedPublish = (body: string, msgId: string) =>
    backend.call((done: Parameters<Stream["publish"]>[3]) => stream.publish(`limited.${body}`, encoder.encode(body), { msgId }, done));
  for (const body of ["one", "two", "three", "four"]) record(`publish ${body} to the limited stream`, await limitedPublish(body, `l-${body}`));
  record("duplicate inside a short window", await limitedPublish("four", "l-four"));
  await backend.wait(700);
  record("same msg id after the window", await limitedPublish("four", "l-four"));
  const kept: unknown[] = [];
  const limited = await backend.call<Parameters<Parameters<Stream["consume"]>[3]>[0]>((done) =>
    stream.consume(
      "LIMITED",
      { durableName: "limited-reader", filterSubject: "limited.*", ackWaitMs, maxDeliver, maxAckPending: 100 },
      (message) => {
        kept.push([message.streamSequence, text(message.data)]);
        message.ack();
      },
      done,
    ),
  );
  if (!limited.ok) throw new Error(limited.error);
  await backend.until(() => kept.length === 2, "the two messages the limit keeps");
  await backend.wait(100);
  limited.subscription.unsubscribe();
  record("kept by max messages", kept);

  record("ensureKv", await backend.call((done) => stream.ensureKv({ bucket: "agreekv", replicas: 1, history: 1, maxValueBytes: 64 }, done)));
  const update = (key: string, value: string, expected: number) =>
    backend.call((done: Parameters<Stream["kvUpdate"]>[4]) => stream.kvUpdate("agreekv", key, encoder.encode(value), expected, done));
  const put = (bucket: string, key: string, value: string) =>
    backend.call((done: Parameters<Stream["kvPut"]>[3]) => stream.kvPut(bucket, key, encoder.encode(value), done));
  const get = async (bucket: string, key: string) => {
    const outcome = await backend.call((done: Parameters<Stream["kvGet"]>[2]) => stream.kvGet(bucket, key, done));
    return outcome.ok && outcome.value ? { ok: true, key: outcome.value.key, value: text(outcome.value.value), revision: outcome.value.revision } : outcome;
  };
  record("create epoch", await update("epoch", "e1", 0));
  record("create epoch again", await update("epoch", "e1 again", 0));
  record("update epoch from 1", await update("epoch", "e2", 1));
  record("stale update from 1", await update("epoch", "stale", 1));
  record("put host", await put("agreekv", "hosts.h1", "up"));
  record("get epoch", await get("agreekv", "epoch"));
  record("get missing", await get("agreekv", "missing"));
  record("put too large", await put("agreekv", "big", "x".repeat(65)));
  record("put invalid key", await put("agreekv", "bad key", "x"));
  record("get from a missing bucket", await get("nobucket", "k"));

  const watched: string[] = [];
  const watch = stream.kvWatch("agreekv", ">", (entry: KvEntry) => watched.push(`${entry.key}=${text(entry.value)}@${entry.revision}`));
  await backend.until(() => watched.length === 2, "current values");
  record("update epoch while watched", await update("epoch", "e3", 2));
  await backend.until(() => watched.length === 3, "the change");
  watch.unsubscribe();
  record("watched", watched);
  return trace;
}

function simBackend(): Backend & { readonly server: SimStreamServer } {
  const virtualClock = new VirtualClock();
  const clock: Clock = {
    now: () => virtualClock.now(),
    setTimeout: (callback, ms) => virtualClock.schedule(ms, callback),
    clearTimeout: (handle) => virtualClock.cancel(handle),
  };
  const server = new SimStreamServer(clock, { clusterSize: 1 });
  const maxSteps = 1_000_000;
  const stepUntil = (condition: () => boolean, what: string) => {
    for (let steps = 0; !condition(); steps++) {
      if (steps > maxSteps || !virtualClock.step()) throw new Error(`simulation stalled waiting for ${what}`);
    }
  };
  return {
    server,
    stream: server.client("n1"),
    call<T>(start: (done: (outcome: T) => void) => void) {
      let settled = false;
      let result: T | undefined;
      start((outcome) => {
        settled = true;
        result = outcome;
      });
      stepUntil(() => settled, "a callback");
      return Promise.resolve(result as T);
    },
    wait(ms) {
      virtualClock.runFor(ms);
      return Promise.resolve();
    },
    until(condition, what) {
      stepUntil(condition, what);
      return Promise.resolve();
    },
  };
}

interface RealSetup {
  readonly server: NatsServer;
  readonly network: NatsNetwork;
  readonly streams: NatsStream[];
}

const realSetups: RealSetup[] = [];

test.after.always(async () => {
  for (const setup of realSetups) {
    await Promise.all(setup.streams.map((stream) => stream.close()));
    await setup.network.close();
    await setup.server.stop();
  }
});

const realCall = <T>(start: (done: (outcome: T) => void) => void) => new Promise<T>((resolve) => start(resolve));
const realWait = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
async function realUntil(condition: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await realWait(10);
  }
}

async function realSetup(): Promise<RealSetup> {
  const server = await startNatsServer();
  const network = await NatsNetwork.connect({ servers: server.url, name: "agreement" });
  const setup: RealSetup = { server, network, streams: [] };
  realSetups.push(setup);
  return setup;
}

async function realBackend(): Promise<Backend> {
  const setup = await realSetup();
  // One attempt: the simulator answers "no stream" at once, and retries would only make the test slower.
  const stream = new NatsStream(setup.network.connection, { maxPublishAttempts: 1, onError: () => undefined });
  setup.streams.push(stream);
  return { stream, call: realCall, wait: realWait, until: realUntil };
}

test("SimStream and real JetStream give the same trace for the same script", async (t) => {
  const simulated = await script(simBackend());
  const real = await script(await realBackend());
  t.deepEqual(simulated, real);

  // And the shared trace says what JetStream does.
  const steps = new Map(simulated.map((entry) => entry as [string, unknown]));
  t.deepEqual(steps.get("publish ack again"), { ok: true, stream: "AGREE", sequence: 1, duplicate: true });
  t.deepEqual(steps.get("publish ack after consuming"), { ok: true, stream: "AGREE", sequence: 1, duplicate: true });
  const deliveries = steps.get("deliveries") as [number, string, string, number][];
  t.deepEqual(
    deliveries.map(([, , body, count]) => `${body}#${count}`),
    ["ack#1", "late#1", "late#2", "never#1", "never#2", "nak#1", "nak#2", "term#1", "plain#1"],
  );
  t.deepEqual(steps.get("nothing left for the durable"), []);
  t.true(String((steps.get("create epoch again") as { error: string }).error).startsWith("kv revision conflict"));
  t.deepEqual(steps.get("kept by max messages"), [
    [4, "four"],
    [5, "four"],
  ]);
  t.deepEqual(steps.get("watched"), ["epoch=e2@2", "hosts.h1=up@3", "epoch=e3@4"]);
});

interface LossBackend extends Backend {
  /** Fails fast (one attempt): for requests made while the server is gone. */
  readonly impatient: Stream;
  loseServer(): Promise<void>;
  restoreServer(): Promise<void>;
}

async function lossScript(backend: LossBackend): Promise<Trace> {
  const stream = backend.stream;
  const trace: Trace = [];
  const record = (step: string, outcome: unknown) => trace.push([step, outcome]);
  record(
    "ensureStream",
    await backend.call((done) =>
      stream.ensureStream({ name: "LOSS", subjects: ["loss.>"], duplicateWindowMs: 60_000, replicas: 1, maxMessages: 1_000, maxBytes: 1 << 20 }, done),
    ),
  );
  const deliveries: string[] = [];
  const ready = await backend.call<Parameters<Parameters<Stream["consume"]>[3]>[0]>((done) =>
    stream.consume(
      "LOSS",
      { durableName: "survivor", filterSubject: "loss.>", ackWaitMs, maxDeliver: 5, maxAckPending: 100 },
      (message) => {
        const body = text(message.data);
        deliveries.push(`${body}#${message.deliveryCount}`);
        if (message.deliveryCount >= 2 || body === "after") message.ack();
      },
      done,
    ),
  );
  if (!ready.ok) throw new Error(ready.error);
  const publish = (via: Stream, body: string) =>
    backend.call((done: Parameters<Stream["publish"]>[3]) => via.publish(`loss.${body}`, encoder.encode(body), { msgId: body }, done));
  record("publish before", await publish(stream, "before"));
  await backend.until(() => deliveries.length === 1, "the first delivery");

  await backend.loseServer();
  record("publish while the server is gone", (await publish(backend.impatient, "during")).ok);
  record(
    "kv get while the server is gone",
    (await backend.call((done: Parameters<Stream["kvGet"]>[2]) => backend.impatient.kvGet("lossview", "k", done))).ok,
  );
  record("deliveries while the server is gone", deliveries.slice());

  await backend.restoreServer();
  record("publish after", await publish(stream, "after"));
  await backend.until(() => deliveries.includes("before#2") && deliveries.includes("after#1"), "redelivery and the new message");
  await backend.wait(ackWaitMs + 100);
  ready.subscription.unsubscribe();
  record("deliveries", [...deliveries].sort());
  return trace;
}

test("after NATS server loss both fail requests, keep stored messages and resume the consumer", async (t) => {
  const sim = simBackend();
  const simulated = await lossScript({
    ...sim,
    impatient: sim.stream,
    loseServer: async () => sim.server.setAvailable(false),
    restoreServer: async () => sim.server.setAvailable(true),
  });

  const setup = await realSetup();
  const patient = new NatsStream(setup.network.connection, { apiTimeoutMs: 1_000, onError: () => undefined });
  const impatient = new NatsStream(setup.network.connection, { apiTimeoutMs: 1_000, maxPublishAttempts: 1, onError: () => undefined });
  setup.streams.push(patient, impatient);
  const real = await lossScript({
    stream: patient,
    impatient,
    call: realCall,
    wait: realWait,
    until: realUntil,
    loseServer: () => setup.server.kill(),
    restoreServer: async () => {
      await setup.server.restart();
      await realUntil(() => setup.network.isConnected, "the reconnect");
    },
  });

  t.deepEqual(simulated, real);
  const steps = new Map(simulated.map((entry) => entry as [string, unknown]));
  t.is(steps.get("publish while the server is gone"), false);
  t.deepEqual(steps.get("deliveries while the server is gone"), ["before#1"]);
  t.deepEqual(steps.get("publish after"), { ok: true, stream: "LOSS", sequence: 2, duplicate: false });
  t.deepEqual(steps.get("deliveries"), ["after#1", "before#1", "before#2"]);
});

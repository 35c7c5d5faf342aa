import test from "ava";
import { NatsNetwork, type NatsConnectionEvent } from "../../runtime/natsNetwork.ts";
import { startNatsServer, type NatsServer } from "../../runtime/natsServer.ts";
import type { NetMessage, RequestOutcome } from "../../actors/ports/network.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const text = (bytes: Uint8Array) => decoder.decode(bytes);

let server: NatsServer;
const networks: NatsNetwork[] = [];

async function connectNetwork(name: string): Promise<NatsNetwork> {
  const network = await NatsNetwork.connect({ servers: server.url, name });
  networks.push(network);
  return network;
}

function request(network: NatsNetwork, subject: string, body: string, timeoutMs: number, headers?: Record<string, string>) {
  return new Promise<RequestOutcome>((resolve) =>
    network.request(subject, encoder.encode(body), { timeoutMs, ...(headers ? { headers } : {}) }, resolve),
  );
}

function collect(network: NatsNetwork, subject: string, queue?: string) {
  const received: NetMessage[] = [];
  const subscription = network.subscribe(subject, (message) => received.push(message), queue ? { queue } : undefined);
  return { received, subscription };
}

async function until(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

test.before(async () => {
  server = await startNatsServer();
});

test.after.always(async () => {
  await Promise.all(networks.map((network) => network.close()));
  await server?.stop();
});

test.serial("publish reaches exact, * and > subscribers with headers, and not the non-matching ones", async (t) => {
  const subscriber = await connectNetwork("sub");
  const publisher = await connectNetwork("pub");
  const exact = collect(subscriber, "t1.a.b");
  const star = collect(subscriber, "t1.*.b");
  const tail = collect(subscriber, "t1.>");
  const other = collect(subscriber, "t1.*.c");
  await subscriber.connection.flush();

  publisher.publish("t1.a.b", encoder.encode("one"), { headers: { "Haring-Type": "greeting", "X-Seq": "7" } });
  publisher.publish("t1.x.y.z", encoder.encode("two"));
  await until(() => tail.received.length === 2, "two messages on t1.>");
  await subscriber.connection.flush();

  t.deepEqual(exact.received.map((message) => text(message.data)), ["one"]);
  t.deepEqual(star.received.map((message) => text(message.data)), ["one"]);
  t.deepEqual(tail.received.map((message) => message.subject), ["t1.a.b", "t1.x.y.z"]);
  t.deepEqual(other.received, []);
  t.deepEqual(exact.received[0]!.headers, { "Haring-Type": "greeting", "X-Seq": "7" });
  t.deepEqual(tail.received[1]!.headers, {});

  exact.subscription.unsubscribe();
  exact.subscription.unsubscribe();
  await subscriber.connection.flush();
  publisher.publish("t1.a.b", encoder.encode("three"));
  await until(() => star.received.length === 2, "second message on t1.*.b");
  t.is(exact.received.length, 1);
});

test.serial("a queue group delivers each message to exactly one member; a plain subscriber sees all", async (t) => {
  const first = await connectNetwork("q1");
  const second = await connectNetwork("q2");
  const publisher = await connectNetwork("qpub");
  const memberA = collect(first, "t2.work", "workers");
  const memberB = collect(second, "t2.work", "workers");
  const audit = collect(first, "t2.work");
  await first.connection.flush();
  await second.connection.flush();

  const count = 40;
  for (let index = 0; index < count; index++) publisher.publish("t2.work", encoder.encode(String(index)));
  await until(() => audit.received.length === count && memberA.received.length + memberB.received.length === count, "all work");
  const delivered = [...memberA.received, ...memberB.received].map((message) => Number(text(message.data))).sort((a, b) => a - b);
  t.deepEqual(delivered, Array.from({ length: count }, (_, index) => index));
});

test.serial("request/reply carries headers both ways; timeout and no-responders are told apart", async (t) => {
  const responder = await connectNetwork("responder");
  const requester = await connectNetwork("requester");
  responder.subscribe("t3.echo", (message) => {
    responder.publish(message.reply!, encoder.encode(`echo:${text(message.data)}`), {
      headers: { "Haring-Type": "echo-reply", "In-Type": message.headers["Haring-Type"] ?? "none" },
    });
  });
  responder.subscribe("t3.silent", () => undefined);
  await responder.connection.flush();

  const answered = await request(requester, "t3.echo", "hi", 2_000, { "Haring-Type": "echo" });
  if (!answered.ok) return t.fail(`request failed: ${answered.failure}`);
  t.is(text(answered.message.data), "echo:hi");
  t.deepEqual(answered.message.headers, { "Haring-Type": "echo-reply", "In-Type": "echo" });

  t.deepEqual(await request(requester, "t3.silent", "x", 150), { ok: false, failure: "timeout" });
  t.deepEqual(await request(requester, "t3.nobody", "x", 2_000), { ok: false, failure: "no-responders" });
});

test.serial("request calls done exactly once and never synchronously", async (t) => {
  const network = await connectNetwork("once");
  network.subscribe("t4.twice", (message) => {
    network.publish(message.reply!, encoder.encode("a"));
    network.publish(message.reply!, encoder.encode("b"));
  });
  await network.connection.flush();
  const outcomes: RequestOutcome[] = [];
  let returned = false;
  network.request("t4.twice", encoder.encode(""), { timeoutMs: 2_000 }, (outcome) => {
    t.true(returned, "done ran inside request()");
    outcomes.push(outcome);
  });
  returned = true;
  await until(() => outcomes.length === 1, "the reply");
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.is(outcomes.length, 1);
  t.true(outcomes[0]!.ok && text(outcomes[0]!.message.data) === "a");
});

test.serial("invalid subjects are refused with a RangeError", async (t) => {
  const network = await connectNetwork("invalid");
  t.throws(() => network.publish("a.*", new Uint8Array()), { instanceOf: RangeError });
  t.throws(() => network.publish("a..b", new Uint8Array()), { instanceOf: RangeError });
  t.throws(() => network.subscribe("a.>.b", () => undefined), { instanceOf: RangeError });
  t.throws(() => network.request("", new Uint8Array(), { timeoutMs: 10 }, () => undefined), { instanceOf: RangeError });
});

test.serial("after the server restarts on the same port, the client reconnects and subscriptions work again", async (t) => {
  const subscriber = await connectNetwork("restart-sub");
  const publisher = await connectNetwork("restart-pub");
  const events: NatsConnectionEvent["type"][] = [];
  subscriber.onEvent((event) => events.push(event.type));
  const inbox = collect(subscriber, "t5.after");
  await subscriber.connection.flush();

  await server.kill();
  await until(() => !subscriber.isConnected, "the disconnect");
  t.deepEqual(await request(publisher, "t5.nobody", "x", 200), { ok: false, failure: "disconnected" });

  await server.restart();
  await until(() => subscriber.isConnected && publisher.isConnected, "both reconnects");
  t.true(events.includes("disconnected"));
  t.true(events.includes("reconnected"));
  t.true(subscriber.counters.reconnects >= 1);

  await subscriber.connection.flush();
  publisher.publish("t5.after", encoder.encode("back"));
  await until(() => inbox.received.length === 1, "a message after the restart");
  t.is(text(inbox.received[0]!.data), "back");
});

import test from "ava";
import type { NetMessage, Network, RequestOutcome } from "../../actors/ports/network.ts";
import { SimWorld } from "../../sim/world.ts";

const text = (value: string) => new TextEncoder().encode(value);
const read = (message: NetMessage) => new TextDecoder().decode(message.data);

/** A world whose nodes expose their Network port to the test. */
function worldWith(nodeIds: readonly string[], options: { seed?: number } = {}) {
  const world = new SimWorld({ seed: options.seed ?? 1, clusterId: "test", network: { latency: { baseMs: 1, jitterMs: 0 } } });
  const networks = new Map<string, Network>();
  for (const nodeId of nodeIds) {
    world.addNode(nodeId, (ports) => {
      networks.set(nodeId, ports.network);
      return { stop: () => networks.delete(nodeId) };
    });
  }
  const net = (nodeId: string) => {
    const network = networks.get(nodeId);
    if (!network) throw new Error(`no network for ${nodeId}`);
    return network;
  };
  return { world, net };
}

test("delivery is a later event on the virtual clock, never inside publish", (t) => {
  const { world, net } = worldWith(["a", "b"]);
  const received: string[] = [];
  net("b").subscribe("x.y", (message) => received.push(`${read(message)}@${world.now()}`));
  net("a").publish("x.y", text("hello"));
  t.deepEqual(received, []);
  world.runFor(0.5);
  t.deepEqual(received, []);
  world.runFor(1);
  t.deepEqual(received, ["hello@1"]);
});

test("wildcards: `*` matches one token, `>` one or more; exact and wildcard subscribers all get a copy", (t) => {
  const { world, net } = worldWith(["a", "b"]);
  const received: string[] = [];
  for (const pattern of ["haring.c.hb.m1", "haring.*.hb.*", "haring.>", "haring.c.>", "haring.c.hb", "other.>", "haring.*"]) {
    net("b").subscribe(pattern, (message) => received.push(`${pattern} ${message.subject}`));
  }
  net("a").publish("haring.c.hb.m1", text(""));
  world.runFor(10);
  t.deepEqual(received.sort(), ["haring.*.hb.* haring.c.hb.m1", "haring.> haring.c.hb.m1", "haring.c.> haring.c.hb.m1", "haring.c.hb.m1 haring.c.hb.m1"]);
});

test("headers and payload arrive intact; the payload is a copy taken at publish time", (t) => {
  const { world, net } = worldWith(["a", "b"]);
  let got: NetMessage | undefined;
  net("b").subscribe("h", (message) => (got = message));
  const payload = text("abc");
  net("a").publish("h", payload, { headers: { type: "hb", "Nats-Msg-Id": "42" } });
  payload[0] = 0x7a;
  world.runFor(10);
  t.deepEqual(got?.headers, { type: "hb", "Nats-Msg-Id": "42" });
  t.is(got && read(got), "abc");
});

test("queue groups: each message goes to exactly one member per group, spread over members; plain subscribers get every one", (t) => {
  const { world, net } = worldWith(["pub", "w1", "w2", "w3", "audit"]);
  const counts = new Map<string, number>();
  const bump = (key: string) => counts.set(key, (counts.get(key) ?? 0) + 1);
  for (const worker of ["w1", "w2", "w3"]) {
    net(worker).subscribe("jobs.*", () => bump(`workers:${worker}`), { queue: "workers" });
    net(worker).subscribe("jobs.>", () => bump(`other:${worker}`), { queue: "other" });
  }
  net("audit").subscribe("jobs.>", () => bump("audit"));
  for (let index = 0; index < 300; index++) net("pub").publish(`jobs.${index % 3}`, text(String(index)));
  world.runFor(10);
  const sum = (prefix: string) => [...counts].filter(([key]) => key.startsWith(prefix)).reduce((total, [, count]) => total + count, 0);
  t.is(sum("workers:"), 300);
  t.is(sum("other:"), 300);
  t.is(counts.get("audit"), 300);
  for (const worker of ["w1", "w2", "w3"]) t.true((counts.get(`workers:${worker}`) ?? 0) > 50, `${worker} got a share`);
});

test("request/reply: the requester gets the first reply through its own inbox; later replies are dropped", (t) => {
  const { world, net } = worldWith(["client", "server1", "server2"]);
  for (const server of ["server1", "server2"]) {
    net(server).subscribe("svc.echo", (message) => {
      t.truthy(message.reply);
      t.true(message.reply!.startsWith("_INBOX.client."));
      net(server).publish(message.reply!, text(`${server}:${read(message)}`), { headers: { type: "reply" } });
    });
  }
  const outcomes: RequestOutcome[] = [];
  net("client").request("svc.echo", text("ping"), { timeoutMs: 100, headers: { type: "req" } }, (outcome) => outcomes.push(outcome));
  world.runFor(1_000);
  t.is(outcomes.length, 1);
  const outcome = outcomes[0]!;
  t.true(outcome.ok);
  if (outcome.ok) {
    t.is(read(outcome.message), "server1:ping");
    t.is(outcome.message.headers.type, "reply");
  }
  t.is(world.fabric.pendingRequests, 0);
});

test("request timeout: exactly one `timeout` on the requester's clock when nobody answers", (t) => {
  const { world, net } = worldWith(["client", "silent"]);
  net("silent").subscribe("svc.slow", () => {});
  const outcomes: string[] = [];
  net("client").request("svc.slow", text(""), { timeoutMs: 250 }, (outcome) => outcomes.push(`${outcome.ok ? "ok" : outcome.failure}@${world.now()}`));
  world.runFor(1_000);
  t.deepEqual(outcomes, ["timeout@250"]);
});

test("no-responders: reported quickly when nothing anywhere subscribes to the subject", (t) => {
  const { world, net } = worldWith(["client", "other"]);
  net("other").subscribe("svc.elsewhere", () => {});
  const outcomes: string[] = [];
  net("client").request("svc.nobody", text(""), { timeoutMs: 5_000 }, (outcome) => outcomes.push(`${outcome.ok ? "ok" : outcome.failure}@${world.now()}`));
  t.deepEqual(outcomes, [], "never inside request()");
  world.runFor(10_000);
  t.deepEqual(outcomes, ["no-responders@2"]);
  t.is(world.networkCounters().noResponders, 1);
});

test("a reply that arrives after the timeout is dropped and done is not called twice", (t) => {
  const { world, net } = worldWith(["client", "server"]);
  world.setLinkProfile("server", "client", { latency: { baseMs: 80, jitterMs: 0 } });
  net("server").subscribe("svc", (message) => net("server").publish(message.reply!, text("late")));
  const outcomes: string[] = [];
  net("client").request("svc", text(""), { timeoutMs: 50 }, (outcome) => outcomes.push(outcome.ok ? "ok" : outcome.failure));
  world.runFor(500);
  t.deepEqual(outcomes, ["timeout"]);
  t.is(world.networkCounters().droppedUnsubscribed + world.networkCounters().unrouted, 1);
});

test("invalid subjects: publish drops and counts; subscribe throws RangeError", (t) => {
  const { world, net } = worldWith(["a"]);
  for (const subject of ["", "a..b", "a.*", "a.>", "has space", ".lead", "trail.", "x".repeat(600)]) net("a").publish(subject, text(""));
  net("a").publish("ok.subject", text(""), { reply: "bad reply" });
  world.runFor(10);
  t.is(world.networkCounters().droppedInvalid, 9);
  t.is(world.networkCounters().sent, 0);
  for (const subject of ["", "a..b", "a.>.b", "sp ace", "a.b*"]) t.throws(() => net("a").subscribe(subject, () => {}), { instanceOf: RangeError });
  t.throws(() => net("a").subscribe("ok", () => {}, { queue: "bad queue" }), { instanceOf: RangeError });
});

test("unsubscribe stops deliveries, including ones already in flight", (t) => {
  const { world, net } = worldWith(["a", "b"]);
  const received: string[] = [];
  const subscription = net("b").subscribe("t", (message) => received.push(read(message)));
  net("a").publish("t", text("1"));
  world.runFor(10);
  net("a").publish("t", text("2"));
  subscription.unsubscribe();
  world.runFor(10);
  net("a").publish("t", text("3"));
  world.runFor(10);
  t.deepEqual(received, ["1"]);
  t.is(world.networkCounters().droppedUnsubscribed, 1);
  t.is(world.networkCounters().unrouted, 1);
});

test("a node hears its own publications (NATS echo)", (t) => {
  const { world, net } = worldWith(["a"]);
  const received: string[] = [];
  net("a").subscribe("self", (message) => received.push(read(message)));
  net("a").publish("self", text("me"));
  world.runFor(10);
  t.deepEqual(received, ["me"]);
});

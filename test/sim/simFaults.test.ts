import test from "ava";
import type { NetMessage, Network } from "../../actors/ports/network.ts";
import type { NodePorts } from "../../actors/ports/nodePorts.ts";
import type { NetworkFaultSettings } from "../../sim/simNetwork.ts";
import { SimWorld } from "../../sim/world.ts";

const text = (value: string) => new TextEncoder().encode(value);
const read = (message: NetMessage) => new TextDecoder().decode(message.data);

/** Every node subscribes to `to.<itself>` and records what it receives; the test drives publishes through the ports. */
function cluster(nodeIds: readonly string[], network: Partial<NetworkFaultSettings> = {}, seed = 7) {
  const world = new SimWorld({ seed, clusterId: "faults", network: { latency: { baseMs: 1, jitterMs: 0 }, ...network } });
  const ports = new Map<string, NodePorts>();
  const received = new Map<string, string[]>(nodeIds.map((nodeId) => [nodeId, []]));
  for (const nodeId of nodeIds) {
    world.addNode(nodeId, (nodePorts) => {
      ports.set(nodeId, nodePorts);
      nodePorts.network.subscribe(`to.${nodeId}`, (message) => received.get(nodeId)!.push(read(message)));
      return { stop: () => {} };
    });
  }
  const net = (nodeId: string): Network => ports.get(nodeId)!.network;
  const send = (from: string, to: string, body: string) => net(from).publish(`to.${to}`, text(body));
  return { world, ports, received, net, send };
}

test("loss drops about the configured share, counted as lost", (t) => {
  const { world, received, send } = cluster(["a", "b"]);
  world.setLoss(0.3);
  for (let index = 0; index < 2_000; index++) send("a", "b", String(index));
  world.runFor(100);
  const delivered = received.get("b")!.length;
  const counters = world.networkCounters();
  t.is(counters.lost + delivered, 2_000);
  t.true(delivered > 1_300 && delivered < 1_500, `delivered ${delivered}`);
  t.is(counters.delivered, delivered);
});

test("duplication delivers some messages twice, counted as duplicated", (t) => {
  const { world, received, send } = cluster(["a", "b"]);
  world.setDuplication(0.5);
  for (let index = 0; index < 1_000; index++) send("a", "b", String(index));
  world.runFor(100);
  const got = received.get("b")!;
  const distinct = new Set(got);
  const counters = world.networkCounters();
  t.is(distinct.size, 1_000);
  t.is(got.length, 1_000 + counters.duplicated);
  t.true(counters.duplicated > 400 && counters.duplicated < 600, `duplicated ${counters.duplicated}`);
});

test("reordering lets later messages overtake held-back ones; without it a fixed-latency link keeps order", (t) => {
  const inOrder = cluster(["a", "b"]);
  for (let index = 0; index < 200; index++) inOrder.send("a", "b", String(index));
  inOrder.world.runFor(100);
  t.deepEqual(inOrder.received.get("b")!.map(Number), [...Array(200).keys()]);

  const shuffled = cluster(["a", "b"]);
  shuffled.world.setReorder({ fraction: 0.2, maxExtraDelayMs: 20 });
  for (let index = 0; index < 200; index++) shuffled.send("a", "b", String(index));
  shuffled.world.runFor(100);
  const got = shuffled.received.get("b")!.map(Number);
  t.is(got.length, 200);
  t.notDeepEqual(got, [...Array(200).keys()]);
  t.deepEqual([...got].sort((x, y) => x - y), [...Array(200).keys()]);
});

test("latency: base plus uniform jitter, globally and overridden per directed link", (t) => {
  const { world, net, ports } = cluster(["a", "b", "c"]);
  world.setLatency({ baseMs: 5, jitterMs: 2 });
  world.setLinkProfile("a", "c", { latency: { baseMs: 50, jitterMs: 0 } });
  const arrivals: [string, number][] = [];
  for (const nodeId of ["b", "c"]) ports.get(nodeId)!.network.subscribe(`lat.${nodeId}`, () => arrivals.push([nodeId, world.now()]));
  for (let index = 0; index < 100; index++) {
    net("a").publish("lat.b", text(""));
    net("a").publish("lat.c", text(""));
  }
  world.runFor(100);
  const toB = arrivals.filter(([nodeId]) => nodeId === "b").map(([, at]) => at);
  const toC = arrivals.filter(([nodeId]) => nodeId === "c").map(([, at]) => at);
  t.is(toB.length, 100);
  t.true(toB.every((at) => at >= 5 && at < 7));
  t.true(new Set(toB).size > 50, "jitter spreads arrivals");
  t.deepEqual(new Set(toC), new Set([50]));
});

test("partition: nodes in different groups cannot talk; unlisted nodes form one more group; heal restores", (t) => {
  const { world, received, send } = cluster(["a", "b", "c", "d", "e"]);
  world.partition([["a", "b"], ["c"]]);
  t.true(world.fabric.canReach("a", "b"));
  send("a", "b", "a>b");
  send("a", "c", "a>c");
  send("c", "a", "c>a");
  send("a", "d", "a>d");
  send("d", "e", "d>e");
  send("e", "c", "e>c");
  world.runFor(10);
  t.deepEqual(received.get("b"), ["a>b"]);
  t.deepEqual(received.get("e"), ["d>e"], "d and e, listed nowhere, are together");
  t.deepEqual([...received.get("a")!, ...received.get("c")!, ...received.get("d")!], []);
  t.is(world.networkCounters().partitioned, 4);
  world.heal();
  send("a", "c", "after-heal");
  world.runFor(10);
  t.deepEqual(received.get("c"), ["after-heal"]);
});

test("one-way partition: a cut link drops one direction only", (t) => {
  const { world, received, send } = cluster(["a", "b"]);
  world.blockLink("a", "b");
  send("a", "b", "a>b");
  send("b", "a", "b>a");
  world.runFor(10);
  t.deepEqual(received.get("b"), []);
  t.deepEqual(received.get("a"), ["b>a"]);
  t.is(world.networkCounters().partitioned, 1);
  world.unblockLink("a", "b");
  send("a", "b", "again");
  world.runFor(10);
  t.deepEqual(received.get("b"), ["again"]);
});

test("a request across a one-way cut times out instead of reporting no-responders", (t) => {
  const { world, net } = cluster(["a", "b"]);
  net("b").subscribe("svc", (message) => net("b").publish(message.reply!, text("pong")));
  world.blockLink("b", "a");
  const outcomes: string[] = [];
  net("a").request("svc", text("ping"), { timeoutMs: 100 }, (outcome) => outcomes.push(outcome.ok ? read(outcome.message) : outcome.failure));
  world.runFor(200);
  t.deepEqual(outcomes, ["timeout"]);
});

test("crash drops the node's subscriptions and deliveries in flight to it; restart boots again with fresh subscriptions", (t) => {
  const { world, received, send } = cluster(["a", "b"]);
  world.setLatency({ baseMs: 10, jitterMs: 0 });
  send("a", "b", "in-flight");
  world.runFor(5);
  world.crash("b");
  world.runFor(20);
  send("a", "b", "while-down");
  world.runFor(20);
  t.deepEqual(received.get("b"), []);
  t.is(world.networkCounters().droppedCrashed, 1);
  t.is(world.networkCounters().unrouted, 1);
  world.restart("b");
  send("a", "b", "after-restart");
  world.runFor(20);
  t.deepEqual(received.get("b"), ["after-restart"]);
});

test("pause holds deliveries in a bounded inbox and delivers them in order on resume; overflow is dropped and counted", (t) => {
  const { world, received, send, net } = cluster(["a", "b"], { maxPausedInboxMessages: 3 });
  world.pause("b");
  for (let index = 1; index <= 5; index++) send("a", "b", String(index));
  world.runFor(50);
  t.deepEqual(received.get("b"), []);
  t.is(world.fabric.heldMessages("b"), 3);
  net("b").publish("to.a", text("sent-while-paused"));
  world.runFor(10);
  t.deepEqual(received.get("a"), [], "a paused node does not send");
  world.resume("b");
  t.deepEqual(received.get("b"), [], "held messages are events, not calls inside resume()");
  world.runFor(0);
  t.deepEqual(received.get("b"), ["1", "2", "3"]);
  const counters = world.networkCounters();
  t.is(counters.droppedOverflow, 2);
  t.is(counters.droppedPaused, 1);
});

test("pause for a duration resumes by itself; the node's timers were held meanwhile", (t) => {
  const { world, ports } = cluster(["a"]);
  const fired: number[] = [];
  ports.get("a")!.clock.setTimeout(() => fired.push(world.now()), 100);
  world.runFor(50);
  world.pause("a", 3_000);
  world.runFor(2_000);
  t.deepEqual(fired, []);
  t.is(world.nodeState("a"), "paused");
  world.runFor(2_000);
  t.deepEqual(fired, [3_050]);
  t.is(world.nodeState("a"), "up");
});

test("clock skew: a fast node's periodic timer fires more often and its clock reads ahead", (t) => {
  const { world, ports } = cluster(["fast", "normal"]);
  world.setClockSkew("fast", 2_000, 100_000);
  const ticks = new Map<string, number>([["fast", 0], ["normal", 0]]);
  for (const nodeId of ["fast", "normal"]) {
    const clock = ports.get(nodeId)!.clock;
    const tick = () => {
      ticks.set(nodeId, ticks.get(nodeId)! + 1);
      clock.setTimeout(tick, 100);
    };
    clock.setTimeout(tick, 100);
  }
  world.runFor(10_050);
  t.is(ticks.get("normal"), 100);
  t.is(ticks.get("fast"), 110);
  t.true(Math.abs(ports.get("fast")!.clock.now() - (2_000 + 10_050 * 1.1)) < 1e-6);
  t.is(ports.get("normal")!.clock.now(), 10_050);
});

test("every injected fault is a line in the transcript", (t) => {
  const { world } = cluster(["a", "b"]);
  world.setLoss(0.05);
  world.partition([["a"], ["b"]]);
  world.blockLink("a", "b");
  world.heal();
  world.setClockSkew("a", 10, 50);
  world.pause("b");
  world.resume("b");
  world.crash("a");
  world.restart("a");
  const events = world.transcriptLines().map((line) => line.split(" ").slice(1, 4).join(" "));
  t.deepEqual(events, [
    "world info add-node",
    "world info add-node",
    "world info loss",
    "world info partition",
    "world info block-link",
    "world info heal",
    "world info clock-skew",
    "world info pause",
    "world info resume",
    "world info crash",
    "world info restart",
  ]);
  t.true(world.transcript().includes("world info partition groups=a|b\n"));
});

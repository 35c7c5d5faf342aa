import test from "ava";
import type { NodePorts } from "../../actors/ports/nodePorts.ts";
import { SimWorld } from "../../sim/world.ts";

const nodeIds = ["p1", "p2", "p3", "p4"] as const;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Plain callback code: every node pings a random peer at a jittered interval and answers pings with pongs. */
function bootPingPong(ports: NodePorts): { stop(): void } {
  const { network, clock, random, log, metrics, nodeId } = ports;
  let stopped = false;
  let sequence = 0;
  const subscription = network.subscribe(`pp.${nodeId}`, (message) => {
    if (message.reply) network.publish(message.reply, encoder.encode(`pong:${decoder.decode(message.data)}`), { headers: { type: "pong" } });
  });
  const persist = ports.storage.open("pings");
  const ping = () => {
    if (stopped) return;
    const peers = nodeIds.filter((peer) => peer !== nodeId);
    const peer = peers[random.int(peers.length)]!;
    const id = `${nodeId}-${++sequence}`;
    const sentAtMs = clock.now();
    network.request(`pp.${peer}`, encoder.encode(id), { timeoutMs: 40, headers: { type: "ping" } }, (outcome) => {
      if (outcome.ok) {
        metrics.increment("pongs_total");
        log.write("info", "pong", { peer, id, rttMs: Math.round((clock.now() - sentAtMs) * 1000) / 1000 });
        persist.append(encoder.encode(id));
        persist.sync(() => {});
      } else {
        log.write("warn", "ping-failed", { peer, id, failure: outcome.failure });
      }
    });
    clock.setTimeout(ping, 20 + random.int(30));
  };
  clock.setTimeout(ping, random.int(20));
  log.write("info", "booted", { records: persist.readAll().length });
  return {
    stop: () => {
      stopped = true;
      subscription.unsubscribe();
    },
  };
}

function run(seed: number): SimWorld {
  const world = new SimWorld({
    seed,
    clusterId: "pp",
    network: { latency: { baseMs: 1, jitterMs: 4 }, lossProbability: 0.1 },
    storage: { tornTailOnCrashProbability: 0.5 },
  });
  for (const nodeId of nodeIds) world.addNode(nodeId, bootPingPong);
  world.setReorder({ fraction: 0.1, maxExtraDelayMs: 10 });
  world.runUntil(300);
  world.partition([["p1", "p2"]]);
  world.runUntil(500);
  world.heal();
  world.crash("p3");
  world.setClockSkew("p4", 30, 2_000);
  world.runUntil(700);
  world.restart("p3");
  world.pause("p2", 100);
  world.runUntil(1_000);
  return world;
}

test("the same seed gives a byte-identical transcript; another seed gives a different one", (t) => {
  const first = run(42).transcript();
  const second = run(42).transcript();
  const other = run(43).transcript();
  t.is(first, second);
  t.not(first, other);
  t.true(first.includes(" pong "), "pongs happened");
  t.true(first.includes("failure=timeout"), "loss and the partition caused timeouts");
  t.true(first.split("\n").length > 80, "the workload did real work");
});

test("counters and metrics replay identically too", (t) => {
  const a = run(7);
  const b = run(7);
  t.deepEqual(a.networkCounters(), b.networkCounters());
  t.true(a.networkCounters().lost > 0);
  t.deepEqual(
    nodeIds.map((nodeId) => a.metrics(nodeId).counter("pongs_total")),
    nodeIds.map((nodeId) => b.metrics(nodeId).counter("pongs_total")),
  );
});

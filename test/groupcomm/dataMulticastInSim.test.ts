import test from "ava";
import { createRejectionCounter, type RejectionCounter } from "../../actors/codec/rejectionCounter.ts";
import { dataBucketName, startDataMulticast, type DataMulticast, type DataRestoreOutcome, type DataWriteOutcome } from "../../actors/groupcomm/dataMulticast.ts";
import { dataMessages } from "../../actors/groupcomm/dataMessages.ts";
import type { Clock } from "../../actors/ports/clock.ts";
import type { NodePorts } from "../../actors/ports/nodePorts.ts";
import type { RequestOutcome } from "../../actors/ports/network.ts";
import { clusterSubjects } from "../../actors/subjects.ts";
import { chooseBackupPeers } from "../../machines/groupcomm/backupPeers.ts";
import { SimStreamServer, type SimStreamClient } from "../../sim/simStream.ts";
import { SimWorld } from "../../sim/world.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const nodeIds = ["h1", "h2", "h3", "h4", "h5", "h6"];

function dataWorld(seed = 1) {
  const shared: { server?: SimStreamServer } = {};
  const clients = new Map<string, SimStreamClient>();
  const world = new SimWorld({
    seed,
    clusterId: "gc",
    extraPorts: ({ nodeId, clock }) => {
      const client = shared.server!.client(nodeId, { clock, requestTimeoutMs: 1_000 });
      clients.set(nodeId, client);
      return { stream: client };
    },
  });
  const serverClock: Clock = { now: () => world.clock.now(), setTimeout: (callback, ms) => world.clock.schedule(ms, callback), clearTimeout: (handle) => world.clock.cancel(handle) };
  const server = new SimStreamServer(serverClock, { clusterSize: 1 });
  shared.server = server;
  world.onNodeLifecycle((event) => {
    if (event.type === "crashed") clients.get(event.nodeId)?.close();
  });
  const data = new Map<string, DataMulticast>();
  const ports = new Map<string, NodePorts>();
  const rejections = new Map<string, RejectionCounter>();
  for (const nodeId of nodeIds) {
    world.addNode(nodeId, (nodePorts) => {
      ports.set(nodeId, nodePorts);
      const counter = createRejectionCounter(nodePorts);
      rejections.set(nodeId, counter);
      const node = startDataMulticast(nodePorts, { rejections: counter, backupCount: 2, requestTimeoutMs: 200, writeAttempts: 2, writeRetryBaseMs: 100 });
      node.setLiveNodes(world.nodeIds().filter((id) => world.nodeState(id) !== "crashed"));
      data.set(nodeId, node);
      return { stop: () => node.stop() };
    });
  }
  for (const node of data.values()) node.setLiveNodes(nodeIds);
  function run<T>(start: (done: (outcome: T) => void) => void, maxMs = 10_000): T {
    let result: { outcome: T } | undefined;
    start((outcome) => (result = { outcome }));
    const deadline = world.now() + maxMs;
    while (!result && world.now() < deadline) world.runFor(10);
    if (!result) throw new Error("no answer");
    return result.outcome;
  }
  const write = (nodeId: string, key: string, value: string, expectedVersion: number) =>
    run<DataWriteOutcome>((done) => data.get(nodeId)!.write(key, encoder.encode(value), expectedVersion, done));
  const restore = (via: string, ownerId: string) => run<DataRestoreOutcome>((done) => data.get(via)!.restore(ownerId, done));
  const describe = (outcome: DataRestoreOutcome) =>
    outcome.ok ? `${outcome.source}: ${outcome.entries.map((entry) => `${entry.key}@${entry.version}=${decoder.decode(entry.value)}`).join(" ")}` : `error: ${outcome.error}`;
  return { world, server, data, ports, rejections, run, write, restore, describe };
}

test("a write lands in the KV with a version, and the k rendezvous-chosen peers confirm durable copies", (t) => {
  const sim = dataWorld();
  sim.world.runFor(10);
  const peers = chooseBackupPeers("h1", nodeIds, 2);
  const first = sim.write("h1", "vm-1", "def v1", 0);
  t.true(first.ok);
  if (!first.ok) return;
  t.deepEqual(first.backedUpBy, peers);
  t.deepEqual(first.backupFailures, []);
  t.deepEqual(sim.data.get("h1")!.backupPeersOf("h1"), peers);
  for (const nodeId of nodeIds) t.is(sim.data.get(nodeId)!.heldCopies, peers.includes(nodeId) ? 1 : 0, nodeId);
  const read = sim.run<Parameters<Parameters<DataMulticast["read"]>[2]>[0]>((done) => sim.data.get("h4")!.read("h1", "vm-1", done));
  t.true(read.ok && read.entry !== undefined && decoder.decode(read.entry.value) === "def v1" && read.entry.version === first.version);
});

test("compare-and-set: a stale writer never overwrites a newer version and is told the current one", (t) => {
  const sim = dataWorld();
  sim.world.runFor(10);
  const first = sim.write("h1", "vm-1", "v1", 0);
  t.true(first.ok);
  const v1 = first.ok ? first.version : 0;
  const second = sim.write("h1", "vm-1", "v2", v1);
  t.true(second.ok);
  const v2 = second.ok ? second.version : 0;
  t.true(v2 > v1);
  const stale = sim.write("h1", "vm-1", "v1-late", v1);
  t.false(stale.ok);
  if (!stale.ok) {
    t.is(stale.currentVersion, v2);
    t.regex(stale.error, /stale write refused/);
  }
  const created = sim.write("h1", "vm-1", "again", 0);
  t.false(created.ok, "version 0 means the key must not exist");
  t.is(sim.describe(sim.restore("h3", "h1")), `kv: vm-1@${v2}=v2`);
  // Backup peers refuse a copy older than the one they hold.
  const peer = chooseBackupPeers("h1", nodeIds, 2)[0]!;
  const stalestore = dataMessages.encode("data.store", "h1", "x", { ownerId: "h1", key: "vm-1", version: v1, value: encoder.encode("v1-late") });
  const answer = sim.run<RequestOutcome>((done) => sim.ports.get("h1")!.network.request(clusterSubjects("gc").data(peer, "store"), stalestore, { timeoutMs: 500 }, done));
  t.true(answer.ok);
  if (answer.ok) {
    const decoded = dataMessages.decode(answer.message.data, ["data.stored"]);
    t.true(decoded.ok && decoded.message.body.stored === false && decoded.message.body.heldVersion === v2);
  }
});

test("a failed node's data is restored from the KV, and from the backups (newest version wins) when the KV is unavailable", (t) => {
  const sim = dataWorld();
  sim.world.runFor(10);
  const [peerA, peerB] = chooseBackupPeers("h1", nodeIds, 2) as [string, string];
  const a1 = sim.write("h1", "vm-1", "one", 0);
  const b1 = sim.write("h1", "vm-2", "two", 0);
  t.true(a1.ok && b1.ok);
  // Peer A misses the second version of vm-1: it keeps (durably) the first.
  sim.world.crash(peerA);
  const a2 = sim.write("h1", "vm-1", "one-v2", a1.ok ? a1.version : 0);
  t.true(a2.ok);
  if (a2.ok) {
    t.deepEqual(a2.backedUpBy, [peerB]);
    t.is(a2.backupFailures[0]?.peerId, peerA);
  }
  sim.world.restart(peerA);
  sim.world.crash("h1");
  sim.world.runFor(100);
  const survivors = nodeIds.filter((id) => id !== "h1");
  for (const id of survivors) sim.data.get(id)!.setLiveNodes(survivors);
  const v2 = a2.ok ? a2.version : 0;
  const v1b = b1.ok ? b1.version : 0;
  t.is(sim.describe(sim.restore("h6", "h1")), `kv: vm-1@${v2}=one-v2 vm-2@${v1b}=two`);

  sim.server.setAvailable(false);
  const fromBackups = sim.restore("h6", "h1");
  t.is(sim.describe(fromBackups), `backups: vm-1@${v2}=one-v2 vm-2@${v1b}=two`);
  t.true(fromBackups.ok && fromBackups.peersAnswered!.includes(peerA) && fromBackups.peersAnswered!.includes(peerB));
  // With only the stale peer left, its older copy is what there is.
  sim.world.crash(peerB);
  t.is(sim.describe(sim.restore("h6", "h1")), `backups: vm-1@${a1.ok ? a1.version : 0}=one vm-2@${v1b}=two`);
});

test("writes are refused while the KV is down (after bounded retries) and work again after", (t) => {
  const sim = dataWorld();
  sim.world.runFor(10);
  t.true(sim.write("h2", "vm-1", "x", 0).ok);
  sim.server.setAvailable(false);
  const failed = sim.write("h2", "vm-2", "y", 0);
  t.false(failed.ok);
  if (!failed.ok) t.regex(failed.error, /kv write failed after 2 attempts/);
  sim.server.setAvailable(true);
  t.true(sim.write("h2", "vm-2", "y", 0).ok);
});

test("a new backup peer gets copies when the live list changes", (t) => {
  const sim = dataWorld();
  sim.world.runFor(10);
  const small = ["h1", "h2"];
  for (const node of sim.data.values()) node.setLiveNodes(small);
  const written = sim.write("h1", "vm-1", "x", 0);
  t.true(written.ok && written.backedUpBy.length === 1);
  sim.data.get("h1")!.setLiveNodes(nodeIds);
  sim.world.runFor(500);
  for (const peer of chooseBackupPeers("h1", nodeIds, 2)) t.is(sim.data.get(peer)!.heldCopies, 1, peer);
});

test("hostile stores and fetches are counted and refused", (t) => {
  const sim = dataWorld();
  sim.world.runFor(10);
  const evil = sim.ports.get("h6")!;
  const subjects = clusterSubjects("gc");
  evil.network.publish(subjects.data("h2", "store"), encoder.encode("garbage"));
  // h6 claiming to store h1's data.
  evil.network.publish(subjects.data("h2", "store"), dataMessages.encode("data.store", "h6", "", { ownerId: "h1", key: "vm-1", version: 99, value: encoder.encode("forged") }));
  evil.network.publish(subjects.data("h2", "fetch"), dataMessages.encode("data.stored", "h6", "", { ownerId: "h1", key: "k", stored: true, heldVersion: 1, error: "" }));
  sim.world.runFor(100);
  t.is(sim.rejections.get("h2")!.rejectedTotal, 3);
  t.is(sim.data.get("h2")!.heldCopies, 0);
  const bad = sim.write("h1", "bad key!", "x", 0);
  t.false(bad.ok);
  t.is(sim.server.streamInfo(`KV_${dataBucketName("gc")}`)?.messages ?? 0, 0);
});

test("the same seed replays the same data run byte for byte", (t) => {
  const run = (seed: number) => {
    const sim = dataWorld(seed);
    sim.world.setLoss(0.05);
    sim.world.runFor(10);
    const lines: string[] = [];
    for (let index = 0; index < 8; index++) {
      const outcome = sim.write(nodeIds[index % nodeIds.length]!, `vm-${index}`, `v${index}`, 0);
      lines.push(outcome.ok ? `${outcome.version} ${outcome.backedUpBy.join(",")}` : outcome.error);
    }
    sim.server.setAvailable(false);
    lines.push(sim.describe(sim.restore("h2", "h1")));
    return `${sim.world.transcript()}\n${lines.join("\n")}`;
  };
  t.is(run(3), run(3));
});

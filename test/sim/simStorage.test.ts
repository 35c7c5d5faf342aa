import test from "ava";
import type { NodePorts } from "../../actors/ports/nodePorts.ts";
import type { RecordLog, SyncOutcome } from "../../actors/ports/storage.ts";
import { recordHeaderBytes } from "../../actors/recordFraming.ts";
import { SimWorld } from "../../sim/world.ts";

const bytes = (value: string) => new TextEncoder().encode(value);
const texts = (log: RecordLog) => log.readAll().map((record) => new TextDecoder().decode(record));

/** One node whose current incarnation's ports the test can reach. */
function node(options: { seed?: number; syncLatencyMs?: number } = {}) {
  const world = new SimWorld({ seed: options.seed ?? 3, clusterId: "disk", storage: { syncLatencyMs: options.syncLatencyMs ?? 5 } });
  let current: NodePorts | undefined;
  world.addNode("n1", (ports) => {
    current = ports;
    return { stop: () => {} };
  });
  const ports = () => current!;
  return { world, ports, log: (name = "wal") => ports().storage.open(name) };
}

test("synced records survive a crash; unsynced ones are lost", (t) => {
  const { world, log } = node();
  const wal = log();
  wal.append(bytes("one"));
  wal.append(bytes("two"));
  const outcomes: SyncOutcome[] = [];
  wal.sync((outcome) => outcomes.push(outcome));
  t.deepEqual(outcomes, [], "sync completes later, never inside the call");
  world.runFor(5);
  t.deepEqual(outcomes, [{ ok: true }]);
  wal.append(bytes("three"));
  t.deepEqual(texts(wal), ["one", "two", "three"]);
  world.crash("n1");
  world.restart("n1");
  const reopened = log();
  t.deepEqual(texts(reopened), ["one", "two"]);
  t.is(reopened.discardedTailBytes, 0);
});

test("a crash before the sync completes loses what it covered, and its callback never runs", (t) => {
  const { world, log } = node({ syncLatencyMs: 10 });
  const wal = log();
  wal.append(bytes("pending"));
  let called = false;
  wal.sync(() => (called = true));
  world.runFor(9);
  world.crash("n1");
  world.runFor(100);
  t.false(called);
  world.restart("n1");
  t.deepEqual(texts(log()), []);
});

test("a torn tail left by a crash is detected on open and cut", (t) => {
  const { world, log } = node();
  world.setTornWrites(1);
  const wal = log();
  wal.append(bytes("durable"));
  wal.sync(() => {});
  world.runFor(5);
  wal.append(bytes("a record long enough to tear somewhere in the middle"));
  world.crash("n1");
  const disk = world.disk("n1");
  const durableBytes = recordHeaderBytes + "durable".length;
  const onDisk = disk.fileLength("wal")!;
  t.true(onDisk > durableBytes, "a fragment of the unsynced record reached the disk");
  world.restart("n1");
  const reopened = log();
  t.deepEqual(texts(reopened), ["durable"]);
  t.is(reopened.discardedTailBytes, onDisk - durableBytes);
  t.is(disk.fileLength("wal"), durableBytes, "the tail was cut");
  t.true(world.transcript().includes(`tornBytes=${onDisk - durableBytes}`));
});

test("corruptTail flips a byte of the last durable record: unnoticed until reopen, then cut", (t) => {
  const { world, log } = node();
  const wal = log();
  for (const record of ["first", "second", "last"]) wal.append(bytes(record));
  wal.sync(() => {});
  world.runFor(5);
  t.true(world.corruptTail("n1", "wal"));
  t.deepEqual(texts(wal), ["first", "second", "last"], "the running incarnation keeps what it read");
  world.crash("n1");
  world.restart("n1");
  const reopened = log();
  t.deepEqual(texts(reopened), ["first", "second"]);
  t.is(reopened.discardedTailBytes, recordHeaderBytes + "last".length);
  t.false(world.corruptTail("n1", "missing"));
});

test("rewrite is atomic: a crash before it completes leaves the old log, after it the new one", (t) => {
  const { world, log } = node({ syncLatencyMs: 10 });
  const wal = log();
  wal.append(bytes("old-1"));
  wal.append(bytes("old-2"));
  wal.sync(() => {});
  world.runFor(10);
  wal.rewrite([bytes("snapshot")], () => {});
  t.deepEqual(texts(wal), ["snapshot"]);
  world.runFor(5);
  world.crash("n1");
  world.restart("n1");
  t.deepEqual(texts(log()), ["old-1", "old-2"]);

  const again = log();
  const outcomes: SyncOutcome[] = [];
  again.rewrite([bytes("snapshot")], (outcome) => outcomes.push(outcome));
  world.runFor(10);
  t.deepEqual(outcomes, [{ ok: true }]);
  again.append(bytes("after-snapshot"));
  again.sync(() => {});
  world.runFor(10);
  world.crash("n1");
  world.restart("n1");
  t.deepEqual(texts(log()), ["snapshot", "after-snapshot"]);
});

test("logs are independent by name; invalid names are refused", (t) => {
  const { world, log, ports } = node();
  const a = log("a");
  const b = log("b");
  t.is(log("a"), a, "opening twice returns the same log");
  a.append(bytes("in-a"));
  b.append(bytes("in-b"));
  a.sync(() => {});
  world.runFor(5);
  world.crash("n1");
  world.restart("n1");
  t.deepEqual(texts(log("a")), ["in-a"]);
  t.deepEqual(texts(log("b")), []);
  for (const name of ["", "has space", "dots.no", "x".repeat(65)]) t.throws(() => ports().storage.open(name), { instanceOf: RangeError });
});

test("a dead incarnation's log handle no longer reaches the disk", (t) => {
  const { world, log } = node();
  const stale = log();
  world.crash("n1");
  world.restart("n1");
  stale.append(bytes("ghost"));
  let called = false;
  stale.sync(() => (called = true));
  world.runFor(50);
  t.false(called);
  t.deepEqual(texts(log()), []);
});

test("the disk keeps working while the node is paused: the sync is durable on time, the node hears of it after resume", (t) => {
  const { world, log } = node({ syncLatencyMs: 10 });
  const wal = log();
  wal.append(bytes("during-pause"));
  const reported: number[] = [];
  wal.sync(() => reported.push(world.now()));
  world.pause("n1");
  world.runFor(50);
  t.deepEqual(reported, []);
  t.is(world.disk("n1").durableLength("wal"), recordHeaderBytes + "during-pause".length);
  world.resume("n1");
  world.runFor(1);
  t.deepEqual(reported, [50]);
  world.crash("n1");
  world.restart("n1");
  t.deepEqual(texts(log()), ["during-pause"]);
});

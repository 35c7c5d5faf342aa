import test from "ava";
import { DurableWriter } from "../../actors/paxos/durableWriter.ts";
import type { NodePorts } from "../../actors/ports/nodePorts.ts";
import { SimWorld } from "../../sim/world.ts";
import { unattestedMessageTypes } from "../../machines/paxos/stepResult.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A writer over one simulated node's log; records and messages are strings. */
function setup(syncLatencyMs = 5, deferFlush?: (flush: () => void) => void, onSynced?: () => void) {
  const world = new SimWorld({ seed: 1, clusterId: "w", storage: { syncLatencyMs } });
  let ports: NodePorts | undefined;
  world.addNode("n1", (nodePorts) => {
    ports = nodePorts;
    return { stop: () => {} };
  });
  const log = ports!.storage.open("paxos");
  const sent: string[] = [];
  const synced: string[][] = [];
  const fatal: string[] = [];
  const writer = new DurableWriter<string, string>({
    log,
    encode: (record) => encoder.encode(record),
    send: (messages) => sent.push(...messages),
    synced: (records, rewritten) => {
      synced.push([rewritten ? "rewrite" : "append", ...records]);
      onSynced?.();
    },
    fatal: (error) => fatal.push(error),
    ...(deferFlush ? { deferFlush } : {}),
  });
  const durable = () => {
    world.crash("n1");
    world.restart("n1");
    return ports!.storage.open("paxos").readAll().map((record) => decoder.decode(record));
  };
  return { world, writer, sent, synced, fatal, durable };
}

/** A writer whose deferred flushes wait in a list until the test runs them (the runtime's microtask after a mailbox drain). */
function setupDeferred(onSynced?: () => void) {
  const deferred: Array<() => void> = [];
  const context = setup(5, (flush) => deferred.push(flush), onSynced);
  const endBurst = () => {
    for (const flush of deferred.splice(0)) flush();
  };
  return { ...context, deferred, endBurst };
}

test("messages leave only after the records of their step are durable, in step order", (t) => {
  const { world, writer, sent, synced } = setup();
  writer.submit({ persist: ["promise-1"], rewrite: null, messages: ["promised-1"] });
  writer.submit({ persist: [], rewrite: null, messages: ["heartbeat-ack"] });
  t.deepEqual(sent, [], "nothing leaves before the sync completes, not even a step without records");
  world.runFor(4);
  t.deepEqual(sent, []);
  world.runFor(1);
  t.deepEqual(sent, ["promised-1", "heartbeat-ack"]);
  t.deepEqual(synced, [["append", "promise-1"]]);
  writer.submit({ persist: [], rewrite: null, messages: ["nothing-to-wait-for"] });
  t.deepEqual(sent.at(-1), "nothing-to-wait-for", "with nothing pending, a step without records goes at once");
});

test("steps arriving during a sync share the next one (group commit)", (t) => {
  const { world, writer, sent, synced } = setup();
  writer.submit({ persist: ["a"], rewrite: null, messages: ["after-a"] });
  world.runFor(1);
  writer.submit({ persist: ["b"], rewrite: null, messages: ["after-b"] });
  writer.submit({ persist: ["c"], rewrite: null, messages: ["after-c"] });
  world.runFor(4);
  t.deepEqual(sent, ["after-a"]);
  world.runFor(5);
  t.deepEqual(sent, ["after-a", "after-b", "after-c"]);
  t.deepEqual(synced, [["append", "a"], ["append", "b", "c"]]);
  t.is(writer.syncCount, 2);
});

test("a crash before the sync completes loses the records and the messages that depended on them", (t) => {
  const { world, writer, sent, durable } = setup();
  writer.submit({ persist: ["kept"], rewrite: null, messages: ["one"] });
  world.runFor(5);
  writer.submit({ persist: ["lost"], rewrite: null, messages: ["two"] });
  world.runFor(3);
  writer.stop();
  t.deepEqual(durable(), ["kept"]);
  world.runFor(10);
  t.deepEqual(sent, ["one"]);
});

test("a rewrite replaces the log and supersedes the records of earlier steps in its batch", (t) => {
  const { world, writer, sent, synced, durable } = setup();
  writer.submit({ persist: ["old-1", "old-2"], rewrite: null, messages: ["m1"] });
  world.runFor(1);
  // While that sync runs, the next batch gathers: the rewrite subsumes the step before it.
  writer.submit({ persist: ["superseded"], rewrite: null, messages: ["m2"] });
  writer.submit({ persist: [], rewrite: ["compacted"], messages: ["m3"] });
  writer.submit({ persist: ["after"], rewrite: null, messages: ["m4"] });
  world.runFor(5);
  writer.submit({ persist: ["later"], rewrite: null, messages: [] });
  world.runFor(10);
  t.deepEqual(sent, ["m1", "m2", "m3", "m4"]);
  t.deepEqual(synced, [["append", "old-1", "old-2"], ["rewrite", "compacted"], ["append", "after"], ["append", "later"]]);
  t.deepEqual(durable(), ["compacted", "after", "later"]);
});

test("a failed sync is fatal: nothing of that batch or later is ever sent", (t) => {
  const { world, writer, sent, fatal } = setup();
  const log = {
    readAll: () => [],
    append: () => {},
    sync: (done: (outcome: { ok: false; error: string }) => void) => world.schedule(1, () => done({ ok: false, error: "disk on fire" })),
    rewrite: () => {},
    discardedTailBytes: 0,
  };
  const failing = new DurableWriter<string, string>({ log, encode: (record) => encoder.encode(record), send: (messages) => sent.push(...messages), fatal: (error) => fatal.push(error) });
  failing.submit({ persist: ["x"], rewrite: null, messages: ["must-not-leave"] });
  failing.submit({ persist: [], rewrite: null, messages: ["nor-this"] });
  world.runFor(5);
  failing.submit({ persist: [], rewrite: null, messages: ["nor-anything-later"] });
  world.runFor(5);
  t.deepEqual(sent, []);
  t.deepEqual(fatal, ["disk on fire"]);
  t.true(failing.isFailed);
  t.is(writer.isFailed, false);
});

test("with deferFlush, every step of a burst shares one durable write, and none of their messages leaves before it", (t) => {
  const { world, writer, sent, synced, deferred, endBurst } = setupDeferred();
  writer.submit({ persist: ["vote-1"], rewrite: null, messages: ["accepted-1"] });
  writer.submit({ persist: [], rewrite: null, messages: ["heartbeat-ack"] });
  writer.submit({ persist: ["vote-2", "vote-2b"], rewrite: null, messages: ["accepted-2"] });
  writer.submit({ persist: ["vote-3"], rewrite: null, messages: ["accepted-3"] });
  t.is(deferred.length, 1, "one flush for the burst");
  t.deepEqual(sent, [], "not even the step without records overtakes");
  world.runFor(10);
  t.deepEqual(synced, [], "no sync started before the burst ended");
  endBurst();
  world.runFor(4);
  t.deepEqual(sent, []);
  world.runFor(1);
  t.deepEqual(synced, [["append", "vote-1", "vote-2", "vote-2b", "vote-3"]]);
  t.deepEqual(sent, ["accepted-1", "heartbeat-ack", "accepted-2", "accepted-3"]);
  t.is(writer.syncCount, 1);
  // Steps during that sync went into the next one, which starts as soon as it completes (nothing to defer to).
  writer.submit({ persist: [], rewrite: null, messages: ["alone"] });
  t.deepEqual(sent.at(-1), "alone", "with nothing pending or deferred, a step without records goes at once");
});

test("with deferFlush, steps submitted during a sync join the next write without waiting for another burst", (t) => {
  const { world, writer, sent, synced, deferred, endBurst } = setupDeferred();
  writer.submit({ persist: ["a"], rewrite: null, messages: ["after-a"] });
  endBurst();
  world.runFor(1);
  writer.submit({ persist: ["b"], rewrite: null, messages: ["after-b"] });
  writer.submit({ persist: ["c"], rewrite: null, messages: ["after-c"] });
  t.is(deferred.length, 0, "a sync is in flight: the next one follows it");
  world.runFor(9);
  t.deepEqual(synced, [["append", "a"], ["append", "b", "c"]]);
  t.deepEqual(sent, ["after-a", "after-b", "after-c"]);
});

test("with deferFlush, a crash after the burst's write and before its replies loses no record, and sends nothing", (t) => {
  const crashedWith: string[][] = [];
  // The writer reports the records durable just before it sends their messages: the node crashes right there.
  const context = setupDeferred(() => {
    context.writer.stop();
    crashedWith.push(context.durable());
  });
  const { world, writer, sent, endBurst } = context;
  writer.submit({ persist: ["vote-1"], rewrite: null, messages: ["accepted-1"] });
  writer.submit({ persist: ["vote-2"], rewrite: null, messages: ["accepted-2"] });
  endBurst();
  world.runFor(20);
  t.deepEqual(crashedWith, [["vote-1", "vote-2"]]);
  t.deepEqual(sent, []);
});

test("with sendsAtOnce, unattested messages leave at submit ahead of pending syncs; the rest keep their order behind them", (t) => {
  const world = new SimWorld({ seed: 1, clusterId: "w", storage: { syncLatencyMs: 5 } });
  let ports: NodePorts | undefined;
  world.addNode("n1", (nodePorts) => {
    ports = nodePorts;
    return { stop: () => {} };
  });
  const sent: string[] = [];
  const syncOptions: unknown[] = [];
  const log = ports!.storage.open("paxos");
  const sync = log.sync.bind(log);
  log.sync = (done, options) => {
    syncOptions.push(options);
    sync(done, options);
  };
  let leading = false;
  const writer = new DurableWriter<string, string>({
    log,
    encode: (record) => encoder.encode(record),
    send: (messages) => sent.push(...messages),
    fatal: () => undefined,
    sendsAtOnce: (message) => message.startsWith("commit") || message.startsWith("accept-"),
    syncInBackground: () => leading,
  });
  writer.submit({ persist: ["vote-1"], rewrite: null, messages: ["accepted-1", "commit-0"] });
  t.deepEqual(sent, ["commit-0"], "the commit attests nothing about this disk: it does not wait for vote-1");
  writer.submit({ persist: [], rewrite: null, messages: ["accept-2", "heartbeat-ack"] });
  t.deepEqual(sent, ["commit-0", "accept-2"], "the ack waits behind vote-1 although its own step wrote nothing");
  world.runFor(5);
  t.deepEqual(sent, ["commit-0", "accept-2", "accepted-1", "heartbeat-ack"]);
  leading = true;
  writer.submit({ persist: ["vote-2"], rewrite: null, messages: ["accepted-2"] });
  world.runFor(5);
  t.deepEqual(syncOptions, [undefined, { background: true }], "the hint follows syncInBackground at each sync");
  t.deepEqual(sent.at(-1), "accepted-2");
});

test("the narrowed rule sends at once exactly the types that attest nothing about the sender's disk", (t) => {
  t.deepEqual([...unattestedMessageTypes].sort(), ["paxos.accept", "paxos.commit", "paxos.fetch", "paxos.fetch-reply", "paxos.heartbeat", "paxos.propose", "paxos.propose-reply", "paxos.snapshot"]);
  for (const attesting of ["paxos.promise", "paxos.accepted", "paxos.reject", "paxos.heartbeat-ack", "paxos.prepare", "paxos.pre-vote", "paxos.pre-vote-reply", "paxos.rejoin-fence", "paxos.rejoin-state"] as const) {
    t.false(unattestedMessageTypes.has(attesting), attesting);
  }
});

/**
 * What the controller process adds around the controller actor, on the real
 * things: group commit over the O_DSYNC file log (one write for the steps of
 * one burst, their messages only after it) and the Paxos connection without
 * echo.
 */
import test from "ava";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DurableWriter } from "../../actors/paxos/durableWriter.ts";
import type { RecordLog } from "../../actors/ports/storage.ts";
import type { NetMessage } from "../../actors/ports/network.ts";
import { FileStorage } from "../../runtime/fileStorage.ts";
import { NatsNetwork } from "../../runtime/natsNetwork.ts";
import { startNatsServer } from "../../runtime/natsServer.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

async function until(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

test("group commit on the file log: the steps of one burst share one durable write, and their messages leave only once it returned", async (t) => {
  const directory = mkdtempSync(join(tmpdir(), "haring-group-commit-"));
  t.teardown(() => rmSync(directory, { recursive: true, force: true }));
  const storage = new FileStorage(directory, { durableWrites: "event-loop" });
  const fileLog = storage.open("paxos");
  let syncCalls = 0;
  const sent: { message: string; durableRecords: number }[] = [];
  const reopenedRecords = (): number => {
    const reopened = new FileStorage(directory);
    const count = reopened.open("paxos").readAll().length;
    void reopened.close();
    return count;
  };
  const log: RecordLog = {
    get discardedTailBytes() {
      return fileLog.discardedTailBytes;
    },
    readAll: () => fileLog.readAll(),
    append: (record) => fileLog.append(record),
    rewrite: (records, done) => fileLog.rewrite(records, done),
    sync: (done) => {
      syncCalls++;
      fileLog.sync(done);
    },
  };
  const writer = new DurableWriter<string, string>({
    log,
    encode: (record) => encoder.encode(record),
    // What a crash right now would leave: a fresh storage reads the file as it is on disk.
    send: (messages) => sent.push(...messages.map((message) => ({ message, durableRecords: reopenedRecords() }))),
    fatal: (error) => t.fail(error),
    deferFlush: queueMicrotask,
  });
  // One mailbox drain: three accepts and a heartbeat, stepped in one go.
  writer.submit({ persist: ["vote-1"], rewrite: null, messages: ["accepted-1"] });
  writer.submit({ persist: ["vote-2"], rewrite: null, messages: ["accepted-2"] });
  writer.submit({ persist: [], rewrite: null, messages: ["heartbeat-ack"] });
  writer.submit({ persist: ["vote-3"], rewrite: null, messages: ["accepted-3"] });
  t.deepEqual(sent, []);
  await until(() => sent.length === 4, "the replies");
  t.is(syncCalls, 1, "one durable write for the burst");
  t.deepEqual(sent, [
    { message: "accepted-1", durableRecords: 3 },
    { message: "accepted-2", durableRecords: 3 },
    { message: "heartbeat-ack", durableRecords: 3 },
    { message: "accepted-3", durableRecords: 3 },
  ]);
  await storage.close();
  const reopened = new FileStorage(directory);
  t.deepEqual(reopened.open("paxos").readAll().map((record) => decoder.decode(record)), ["vote-1", "vote-2", "vote-3"]);
  await reopened.close();
});

test("a connection opened with noEcho never hears its own messages; other connections do", async (t) => {
  const server = await startNatsServer();
  const quiet = await NatsNetwork.connect({ servers: server.url, name: "paxos-no-echo", noEcho: true });
  const plain = await NatsNetwork.connect({ servers: server.url, name: "shared" });
  t.teardown(async () => {
    await quiet.close();
    await plain.close();
    await server.stop();
  });
  const heardByQuiet: NetMessage[] = [];
  const heardByPlain: NetMessage[] = [];
  quiet.subscribe("t.view.commit", (message) => heardByQuiet.push(message));
  plain.subscribe("t.view.commit", (message) => heardByPlain.push(message));
  await quiet.connection.flush();
  await plain.connection.flush();
  quiet.publish("t.view.commit", encoder.encode("from the leader"));
  plain.publish("t.view.commit", encoder.encode("from a peer"));
  await until(() => heardByPlain.length === 2 && heardByQuiet.length === 1, "both deliveries");
  await quiet.connection.flush();
  t.deepEqual(heardByQuiet.map((message) => decoder.decode(message.data)), ["from a peer"]);
  t.deepEqual(heardByPlain.map((message) => decoder.decode(message.data)).sort(), ["from a peer", "from the leader"]);
});

import test from "ava";
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileStorage, logFileSuffix, rewriteTempSuffix } from "../../runtime/fileStorage.ts";
import { frameRecord } from "../../actors/recordFraming.ts";
import type { RecordLog, SyncOutcome } from "../../actors/ports/storage.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const texts = (log: RecordLog) => log.readAll().map((record) => decoder.decode(record));

const directories: string[] = [];
function freshDirectory(): string {
  const directory = mkdtempSync(join(tmpdir(), "haring-storage-"));
  directories.push(directory);
  return directory;
}

test.after.always(() => {
  for (const directory of directories) rmSync(directory, { recursive: true, force: true });
});

function sync(log: RecordLog): Promise<SyncOutcome> {
  return new Promise((resolve) => log.sync(resolve));
}

function rewrite(log: RecordLog, records: string[]): Promise<SyncOutcome> {
  return new Promise((resolve) => log.rewrite(records.map((record) => encoder.encode(record)), resolve));
}

for (const durableWrites of ["thread-pool", "event-loop"] as const) test(`synced records survive a reopen; unsynced ones are lost as in a crash (${durableWrites})`, async (t) => {
  const directory = freshDirectory();
  const storage = new FileStorage(directory, { durableWrites });
  const log = storage.open("acceptor");
  t.is(storage.open("acceptor"), log);
  log.append(encoder.encode("promise 1"));
  log.append(encoder.encode("accept 1:a"));
  let returned = false;
  const synced = new Promise<SyncOutcome>((resolve) =>
    log.sync((outcome) => {
      t.true(returned, "sync completed inside the call");
      resolve(outcome);
    }),
  );
  returned = true;
  t.deepEqual(await synced, { ok: true });
  log.append(encoder.encode("never synced"));
  t.deepEqual(texts(log), ["promise 1", "accept 1:a", "never synced"]);
  await storage.close();

  const reopened = new FileStorage(directory, { durableWrites }).open("acceptor");
  t.deepEqual(texts(reopened), ["promise 1", "accept 1:a"]);
  t.is(reopened.discardedTailBytes, 0);
  reopened.append(encoder.encode("promise 2"));
  t.deepEqual(await sync(reopened), { ok: true });
  // A sync with nothing new completes too (every earlier write was durable when it returned).
  t.deepEqual(await sync(reopened), { ok: true });
  t.deepEqual(texts(new FileStorage(directory).open("acceptor")), ["promise 1", "accept 1:a", "promise 2"]);
});

test("event-loop writes keep their order with a rewrite queued between them", async (t) => {
  const directory = freshDirectory();
  const log = new FileStorage(directory, { durableWrites: "event-loop" }).open("mixed");
  log.append(encoder.encode("a"));
  const first = sync(log);
  const rewritten = rewrite(log, ["snapshot"]);
  log.append(encoder.encode("b"));
  const second = sync(log);
  t.deepEqual(await Promise.all([first, rewritten, second]), [{ ok: true }, { ok: true }, { ok: true }]);
  t.deepEqual(texts(new FileStorage(directory).open("mixed")), ["snapshot", "b"]);
});

test("on an event-loop log a sync with the background hint keeps the order and durability of the syncs around it", async (t) => {
  const directory = freshDirectory();
  const log = new FileStorage(directory, { durableWrites: "event-loop" }).open("leader");
  log.append(encoder.encode("a"));
  const first = sync(log);
  log.append(encoder.encode("b"));
  const second = new Promise<SyncOutcome>((resolve) => log.sync(resolve, { background: true }));
  log.append(encoder.encode("c"));
  const third = sync(log);
  t.deepEqual(await Promise.all([first, second, third]), [{ ok: true }, { ok: true }, { ok: true }]);
  t.deepEqual(texts(new FileStorage(directory).open("leader")), ["a", "b", "c"]);
});

test("a torn tail is cut off on open and new records follow the intact ones", async (t) => {
  const directory = freshDirectory();
  const storage = new FileStorage(directory);
  const log = storage.open("torn");
  log.append(encoder.encode("whole"));
  t.deepEqual(await sync(log), { ok: true });
  await storage.close();

  const path = join(directory, `torn${logFileSuffix}`);
  const intactSize = readFileSync(path).length;
  const half = frameRecord(encoder.encode("half written")).slice(0, 11);
  appendFileSync(path, half);

  const reopened = new FileStorage(directory).open("torn");
  t.deepEqual(texts(reopened), ["whole"]);
  t.is(reopened.discardedTailBytes, half.length);
  t.is(readFileSync(path).length, intactSize);
  reopened.append(encoder.encode("after"));
  t.deepEqual(await sync(reopened), { ok: true });
  const third = new FileStorage(directory).open("torn");
  t.deepEqual(texts(third), ["whole", "after"]);
  t.is(third.discardedTailBytes, 0);
});

test("a corrupt record and everything after it are cut off", async (t) => {
  const directory = freshDirectory();
  const storage = new FileStorage(directory);
  const log = storage.open("corrupt");
  for (const record of ["r1", "r2", "r3"]) log.append(encoder.encode(record));
  t.deepEqual(await sync(log), { ok: true });
  await storage.close();

  const path = join(directory, `corrupt${logFileSuffix}`);
  const bytes = readFileSync(path);
  const secondPayloadOffset = frameRecord(encoder.encode("r1")).length + 8;
  bytes[secondPayloadOffset] = bytes[secondPayloadOffset]! ^ 0xff;
  writeFileSync(path, bytes);

  const reopened = new FileStorage(directory).open("corrupt");
  t.deepEqual(texts(reopened), ["r1"]);
  t.is(reopened.discardedTailBytes, bytes.length - frameRecord(encoder.encode("r1")).length);
});

test("rewrite replaces the log atomically; appends made after it are kept", async (t) => {
  const directory = freshDirectory();
  const storage = new FileStorage(directory);
  const log = storage.open("compacted");
  for (const record of ["a", "b", "c", "d"]) log.append(encoder.encode(record));
  t.deepEqual(await sync(log), { ok: true });
  log.append(encoder.encode("unsynced before rewrite"));

  const rewritten = rewrite(log, ["snapshot"]);
  log.append(encoder.encode("e"));
  t.deepEqual(texts(log), ["snapshot", "e"]);
  t.deepEqual(await rewritten, { ok: true });
  t.deepEqual(await sync(log), { ok: true });
  t.false(existsSync(join(directory, `compacted${rewriteTempSuffix}`)));
  await storage.close();

  t.deepEqual(texts(new FileStorage(directory).open("compacted")), ["snapshot", "e"]);
});

test("a sync queued before a rewrite does not swallow records appended after it", async (t) => {
  const directory = freshDirectory();
  const storage = new FileStorage(directory);
  const log = storage.open("ordering");
  log.append(encoder.encode("old"));
  const first = sync(log);
  const rewritten = rewrite(log, ["base"]);
  log.append(encoder.encode("new"));
  const second = sync(log);
  t.deepEqual(await Promise.all([first, rewritten, second]), [{ ok: true }, { ok: true }, { ok: true }]);
  await storage.close();
  t.deepEqual(texts(new FileStorage(directory).open("ordering")), ["base", "new"]);
});

test("log names are validated", (t) => {
  const storage = new FileStorage(freshDirectory());
  for (const name of ["", "../escape", "a.b", "x".repeat(65), "with space"]) {
    t.throws(() => storage.open(name), { instanceOf: RangeError }, name);
  }
  t.notThrows(() => storage.open("Ok_name-1"));
});

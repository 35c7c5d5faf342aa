import test from "ava";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseControllerConfig, parseControllerConfigText } from "../../runtime/controller/controllerConfig.ts";
import { configPathFromArgs, lockFileName } from "../../runtime/controller/main.ts";
import { dataDirIdentityFileName } from "../../runtime/node/dataDirIdentity.ts";
import { encodeRecord, paxosLogName } from "../../actors/paxos/paxosRecords.ts";
import type { SyncOutcome } from "../../actors/ports/storage.ts";
import { FileStorage } from "../../runtime/fileStorage.ts";
import { startNatsServer } from "../../runtime/natsServer.ts";

const valid = {
  clusterId: "demo",
  nodeId: "c1",
  controllerIds: ["c1", "c2", "c3"],
  natsUrls: ["nats://127.0.0.1:4222"],
  dataDir: "/var/lib/haring/c1",
  bootstrap: true,
  timing: { heartbeatIntervalMs: 40, electionTimeoutMs: 400 },
};

const scratch = mkdtempSync(join(tmpdir(), "haring-controller-config-"));
test.after.always(() => rmSync(scratch, { recursive: true, force: true }));

test("a valid config parses, with defaults for what it leaves out", (t) => {
  const parsed = parseControllerConfig(valid);
  t.true(parsed.ok);
  if (!parsed.ok) return;
  t.is(parsed.config.kvMirror, true);
  t.is(parsed.config.statusIntervalMs, 200);
  t.deepEqual(parsed.paxos.acceptorIds, ["c1", "c2", "c3"]);
  t.is(parsed.paxos.heartbeatIntervalMs, 40);
  t.is(parsed.paxos.leaseDurationMs, 300, "timings not given keep their defaults");
});

test("every wrong field gets its own problem", (t) => {
  const parsed = parseControllerConfig({
    clusterId: "demo.cluster",
    nodeId: "c9",
    controllerIds: ["c1", "c2", "c1"],
    natsUrls: ["http://example.com"],
    dataDir: "relative/path",
    bootstrap: "yes",
    timing: { heartbeatIntervalMs: -5, warpSpeed: 9 },
    statusIntervalMs: 1.5,
    color: "blue",
  });
  t.false(parsed.ok);
  if (parsed.ok) return;
  const text = parsed.problems.join("\n");
  for (const expected of [/unknown field "color"/, /clusterId must be/, /controllerIds contains a duplicate/, /natsUrls must be nats:\/\//, /dataDir must be an absolute path/, /bootstrap must be true or false/, /timing\.heartbeatIntervalMs must be a whole number/, /timing\.warpSpeed is not a Paxos timing/, /statusIntervalMs must be/]) {
    t.regex(text, expected);
  }
  t.is(parsed.problems.length, 9);
});

test("timings that break the lease arithmetic are refused with the reason", (t) => {
  const parsed = parseControllerConfig({ ...valid, timing: { leaseDurationMs: 100, electionTimeoutMs: 50 } });
  t.false(parsed.ok);
  if (!parsed.ok) t.regex(parsed.problems.join("\n"), /electionTimeoutMs below leaseDurationMs/);
  const notMember = parseControllerConfig({ ...valid, nodeId: "c4" });
  t.false(notMember.ok);
  if (!notMember.ok) t.regex(notMember.problems.join("\n"), /nodeId c4 is not in controllerIds/);
  t.false(parseControllerConfigText("{ not json").ok);
  t.false(parseControllerConfigText("[]").ok);
});

test("the command line takes --config FILE and nothing else", (t) => {
  t.deepEqual(configPathFromArgs(["--config", "a.json"]), { ok: true, path: "a.json" });
  t.deepEqual(configPathFromArgs(["--config=b.json"]), { ok: true, path: "b.json" });
  t.false(configPathFromArgs([]).ok);
  t.false(configPathFromArgs(["--config"]).ok);
  t.false(configPathFromArgs(["--config", "a.json", "--verbose"]).ok);
});

function runProcess(args: readonly string[]) {
  return spawnSync(process.execPath, ["--import", "tsx", "runtime/controller/main.ts", ...args], { encoding: "utf8", timeout: 30_000 });
}

test("the process exits 2 with one line per problem for a wrong config, and for a wrong command line", (t) => {
  const path = join(scratch, "bad.json");
  writeFileSync(path, JSON.stringify({ ...valid, dataDir: "nope", extra: 1 }));
  const bad = runProcess(["--config", path]);
  t.is(bad.status, 2);
  t.regex(bad.stderr, /haring node: .*bad\.json: unknown field "extra"/);
  t.regex(bad.stderr, /haring node: .*bad\.json: dataDir must be an absolute path/);
  t.regex(bad.stderr, /hint: haring node --config FILE/);
  const missing = runProcess([]);
  t.is(missing.status, 2);
  t.regex(missing.stderr, /--config FILE is required/);
  const unreadable = runProcess(["--config", join(scratch, "absent.json")]);
  t.is(unreadable.status, 2);
  t.regex(unreadable.stderr, /cannot read/);
});

test("a second controller on a data directory in use refuses to start (exit 1)", (t) => {
  const dataDir = join(scratch, "in-use");
  mkdirSync(dataDir, { recursive: true });
  // This test's own process stands in for a live controller holding the directory.
  writeFileSync(join(dataDir, lockFileName), `${process.pid}\n`);
  const path = join(scratch, "in-use.json");
  writeFileSync(path, JSON.stringify({ ...valid, dataDir }));
  const second = runProcess(["--config", path]);
  t.is(second.status, 1);
  t.regex(second.stderr, new RegExp(`is in use by controller process ${process.pid}`));
});

test("a controller on another controller's data directory refuses to start (exit 1) and leaves it as it was", (t) => {
  const dataDir = join(scratch, "c3-directory");
  mkdirSync(dataDir, { recursive: true });
  // What c3 wrote at its first start; c1's config points here by mistake (an edited copy of c3's config).
  const c3Identity = `${JSON.stringify({ v: 1, clusterId: "demo", nodeId: "c3", role: "controller" })}\n`;
  writeFileSync(join(dataDir, dataDirIdentityFileName), c3Identity);
  const path = join(scratch, "c3-directory.json");
  writeFileSync(path, JSON.stringify({ ...valid, dataDir }));
  const started = runProcess(["--config", path]);
  t.is(started.status, 1);
  t.regex(started.stderr, /belongs to controller c3 of cluster demo, not to controller c1 of cluster demo \(identity\.json\): refusing to start/);
  t.is(readFileSync(join(dataDir, dataDirIdentityFileName), "utf8"), c3Identity);
  t.false(existsSync(join(dataDir, lockFileName)), "the lock is released again");
  t.false(existsSync(join(dataDir, "paxos.log")), "no state was written");
});

test("a controller whose paxos.log was copied from another controller refuses to recover from it (exit 1) over a real nats-server", async (t) => {
  const nats = await startNatsServer();
  try {
    const dataDir = join(scratch, "copied-log");
    // c3's log with a promise and a vote, copied into c1's new directory: c1 claims the directory, then finds the records are c3's.
    const c3Log = new FileStorage(dataDir).open(paxosLogName);
    const ballot = { round: 3, controllerId: "c3" };
    for (const record of [{ kind: "init" }, { kind: "promise", ballot }, { kind: "accept", slot: 0, ballot, value: { kind: "noop" } }] as const) c3Log.append(encodeRecord("c3", record));
    t.deepEqual(await new Promise<SyncOutcome>((done) => c3Log.sync(done)), { ok: true });
    const path = join(scratch, "copied-log.json");
    writeFileSync(path, JSON.stringify({ ...valid, natsUrls: [nats.url], bootstrap: false, dataDir }));
    const started = runProcess(["--config", path]);
    const output = started.stdout + started.stderr;
    t.is(started.status, 1, output);
    t.regex(output, /paxos\.unrecoverable.*record 0 of 3 was written by controller c3, not by c1: this is another controller's log/);
    t.deepEqual(JSON.parse(readFileSync(join(dataDir, dataDirIdentityFileName), "utf8")), { v: 1, clusterId: "demo", nodeId: "c1", role: "controller" });
  } finally {
    await nats.stop();
  }
});

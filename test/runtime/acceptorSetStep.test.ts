import test from "ava";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeRecords, encodeRecord, paxosLogName, type ViewDurableRecord } from "../../actors/paxos/paxosRecords.ts";
import type { SyncOutcome } from "../../actors/ports/storage.ts";
import { acceptorGrowthProblem, acceptorShrinkProblem, recordedAcceptorSet } from "../../machines/paxos/acceptorSet.ts";
import { viewToSnapshot } from "../../machines/view/viewSnapshot.ts";
import { viewStateMachine } from "../../machines/view/viewStateMachine.ts";
import { main } from "../../runtime/cli/main.ts";
import { lockFileName } from "../../runtime/controller/main.ts";
import { FileStorage } from "../../runtime/fileStorage.ts";
import { AcceptorSetStepRefused, growAcceptorSet, shrinkAcceptorSet } from "../../runtime/node/acceptorSetStep.ts";
import { dataDirIdentityFileName } from "../../runtime/node/dataDirIdentity.ts";

const scratch = mkdtempSync(join(tmpdir(), "haring-acceptor-set-step-"));
test.after.always(() => rmSync(scratch, { recursive: true, force: true }));

const three = ["c1", "c2", "c3"];
const five = [...three, "c4", "c5"];
const ballot = { round: 2, controllerId: "c1" };

async function controllerDir(name: string, records: readonly ViewDurableRecord[], nodeId = "c2"): Promise<string> {
  const dataDir = join(scratch, name);
  const log = new FileStorage(dataDir).open(paxosLogName);
  writeFileSync(join(dataDir, dataDirIdentityFileName), `${JSON.stringify({ v: 1, clusterId: "prod", nodeId, role: "controller" })}\n`);
  for (const record of records) log.append(encodeRecord(nodeId, record));
  await new Promise<SyncOutcome>((done) => log.sync(done));
  return dataDir;
}

const logBytes = (dataDir: string) => readFileSync(join(dataDir, "paxos.log"));
function logRecords(dataDir: string, nodeId = "c2"): ViewDurableRecord[] {
  const read = decodeRecords(new FileStorage(dataDir).open(paxosLogName).readAll(), nodeId);
  if (!read.ok) throw new Error(read.error);
  return read.records;
}

test("only a growth the old controllers can fence is allowed", (t) => {
  t.is(acceptorGrowthProblem(three, five, 9), null);
  t.is(acceptorGrowthProblem(three, [...three, "c4"], 9), null);
  t.is(acceptorGrowthProblem(five, [...five, "c6", "c7", "c8", "c9"], 9), null);
  t.is(acceptorGrowthProblem(five, [...five, "c6", "c7", "c8"], 9), null);
  t.is(acceptorGrowthProblem(five, [...five, "c6"], 9), null);
  // 5 → 7: with c5 forgotten on the old set, c6 and c7 could rejoin from c1-c4, and {c1, c2, c6, c7} would miss {c3, c4, c5}.
  t.regex(acceptorGrowthProblem(five, [...five, "c6", "c7"], 9) ?? "", /a majority of the new set can hold only 2 of the old ones/);
  t.regex(acceptorGrowthProblem(["a", "b", "c", "d", "e", "f", "g"], ["a", "b", "c", "d", "e", "f", "g", "h", "i"], 9) ?? "", /can hold only 3 of the old ones/);
  t.regex(acceptorGrowthProblem(["c1"], ["c1", "c2"], 9) ?? "", /a majority of 2 controllers is 2, more than the 1/);
  t.regex(acceptorGrowthProblem(three, ["c1", "c2", "c4"], 9) ?? "", /drops c3: a step either adds or removes controllers/);
  t.regex(acceptorGrowthProblem(three, three, 9) ?? "", /adds no controller/);
  t.regex(acceptorGrowthProblem(three, [...five, "c6", "c7"], 9) ?? "", /a majority of 7 controllers is 4, more than the 3 that have the cluster's state/);
  t.regex(acceptorGrowthProblem(five, [...five, "c6", "c6"], 9) ?? "", /names a controller twice/);
  t.regex(acceptorGrowthProblem(["a", "b", "c", "d", "e", "f", "g", "h", "i"], ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"], 9) ?? "", /more than 9/);
});

test("a stopped controller's log gets an init naming the new set, its fence majority kept; the controller's own recovery reads it", async (t) => {
  const dataDir = await controllerDir("grown", [{ kind: "init", fencedBy: ["c1", "c3"], acceptors: three }, { kind: "promise", ballot }, { kind: "accept", slot: 0, ballot, value: { kind: "noop" } }]);
  const before = logBytes(dataDir);
  const grown = await growAcceptorSet(dataDir, five);
  t.deepEqual(grown, { controllerId: "c2", from: three, to: five });
  t.deepEqual(logBytes(dataDir).subarray(0, before.length), before, "appended, nothing before it changed");
  const records = logRecords(dataDir);
  t.deepEqual(records.at(-1), { kind: "init", fencedBy: ["c1", "c3"], acceptors: five });
  t.deepEqual(recordedAcceptorSet(records), five);
  // Again to the same set: nothing to add.
  await t.throwsAsync(growAcceptorSet(dataDir, five), { instanceOf: AcceptorSetStepRefused, message: /adds no controller/ });
});

test("refusals change nothing: a shrink, too many at once, a log that never voted, an unrecorded set without --from, another controller's directory", async (t) => {
  const voting: ViewDurableRecord[] = [{ kind: "init", acceptors: three }, { kind: "promise", ballot }];
  const cases: { name: string; records: readonly ViewDurableRecord[]; to: readonly string[]; from?: readonly string[]; message: RegExp }[] = [
    { name: "shrink", records: voting, to: ["c1", "c2"], message: /drops c3/ },
    { name: "too-many", records: voting, to: [...five, "c6", "c7"], message: /more than the 3 that have the cluster's state/ },
    { name: "never-voted", records: [{ kind: "promise", ballot }], to: five, message: /never voted here \(no init record\)/ },
    { name: "unrecorded", records: [{ kind: "init" }, { kind: "promise", ballot }], to: five, message: /names no acceptor set .* --from/ },
    { name: "wrong-from", records: voting, to: five, from: ["c1", "c2"], message: /--from c1,c2 is not the set/ },
    { name: "not-named", records: voting, to: ["c1", "c3", "c4", "c5", "c6"], message: /does not name c2/ },
  ];
  for (const { name, records, to, from, message } of cases) {
    const dataDir = await controllerDir(name, records);
    const before = logBytes(dataDir);
    await t.throwsAsync(growAcceptorSet(dataDir, to, from), { instanceOf: AcceptorSetStepRefused, message }, name);
    t.deepEqual(logBytes(dataDir), before, `${name}: the log is unchanged`);
  }
  // A log from before the set was recorded grows with --from.
  const old = await controllerDir("unrecorded-from", [{ kind: "init" }, { kind: "promise", ballot }]);
  t.deepEqual((await growAcceptorSet(old, five, three)).from, three);
  t.deepEqual(recordedAcceptorSet(logRecords(old)), five);
});

test("a running controller's directory is not touched (exit 3); the CLI says what to do next (exit 0) or why not (exit 1)", async (t) => {
  const running = await controllerDir("running", [{ kind: "init", acceptors: three }, { kind: "promise", ballot }]);
  // A live process stands in for the controller holding the directory.
  const holder = spawn("sleep", ["60"], { stdio: "ignore" });
  t.teardown(() => holder.kill("SIGKILL"));
  writeFileSync(join(running, lockFileName), `${holder.pid}\n`);
  const before = logBytes(running);
  const cli = async (...argv: string[]) => {
    let out = "";
    let err = "";
    const code = await main(argv, { out: (text) => (out += text), err: (text) => (err += text) });
    return { code, out, err };
  };
  const inUse = await cli("acceptors", "grow", running, "--to", five.join(","));
  t.is(inUse.code, 3, inUse.err);
  t.regex(inUse.err, /nothing written: .* is in use by controller process/);
  t.deepEqual(logBytes(running), before);

  const stopped = await controllerDir("stopped", [{ kind: "init", acceptors: three }, { kind: "promise", ballot }]);
  const grown = await cli("acceptors", "grow", stopped, "--to", five.join(","));
  t.is(grown.code, 0, grown.err);
  t.regex(grown.out, /^c2: its Paxos log now names the acceptors c1, c2, c3, c4, c5 \(was c1, c2, c3\)\nnext: the same on every other controller/);
  const refused = await cli("acceptors", "grow", stopped, "--to", "c1,c2,c3");
  t.is(refused.code, 1);
  t.regex(refused.err, /nothing written: c2: the new set drops c4, c5/);
});

test("only a removal whose new majorities meet the old ones is allowed: one at a time, two from an even set", (t) => {
  const four = [...three, "c4"];
  t.is(acceptorShrinkProblem(three, ["c1", "c2"]), null);
  t.is(acceptorShrinkProblem(five, four), null);
  t.is(acceptorShrinkProblem(four, three), null);
  t.is(acceptorShrinkProblem(four, ["c1", "c2"]), null);
  t.is(acceptorShrinkProblem([...five, "c6"], four), null);
  t.is(acceptorShrinkProblem(["c1", "c2"], ["c1"]), null);
  // 5 → 3: {c1, c2} of the new set and {c3, c4, c5} of the old are both majorities, and meet nowhere.
  t.regex(acceptorShrinkProblem(five, three) ?? "", /from 5 to 3 controllers, a majority of the new set \(2\) need not meet a majority of the old one \(3\)/);
  t.regex(acceptorShrinkProblem(three, ["c1"]) ?? "", /from 3 to 1 controllers/);
  t.regex(acceptorShrinkProblem([...five, "c6", "c7"], five) ?? "", /from 7 to 5/);
  t.regex(acceptorShrinkProblem(three, ["c1", "c2", "c4"]) ?? "", /adds c4: a step either removes or adds controllers/);
  t.regex(acceptorShrinkProblem(three, three) ?? "", /removes no controller/);
  t.regex(acceptorShrinkProblem(three, ["c1", "c1"]) ?? "", /names a controller twice/);
  t.regex(acceptorShrinkProblem(["c1"], []) ?? "", /names no controller/);
});

test("a shrink appends an init naming the smaller set, fence majority kept; refusals change nothing; the CLI names the next steps", async (t) => {
  const dataDir = await controllerDir("shrunk", [{ kind: "init", fencedBy: ["c1", "c3"], acceptors: five }, { kind: "promise", ballot }, { kind: "accept", slot: 0, ballot, value: { kind: "noop" } }]);
  const before = logBytes(dataDir);
  const four = ["c1", "c2", "c3", "c4"];
  t.deepEqual(await shrinkAcceptorSet(dataDir, four), { controllerId: "c2", from: five, to: four });
  t.deepEqual(logBytes(dataDir).subarray(0, before.length), before, "appended, nothing before it changed");
  const records = logRecords(dataDir);
  t.deepEqual(records.at(-1), { kind: "init", fencedBy: ["c1", "c3"], acceptors: four });
  t.deepEqual(records.at(-2), { kind: "accept", slot: 0, ballot, value: { kind: "noop" } }, "the votes stay");

  const voting: ViewDurableRecord[] = [{ kind: "init", acceptors: five }, { kind: "promise", ballot }];
  const cases: { name: string; to: readonly string[]; from?: readonly string[]; message: RegExp }[] = [
    { name: "shrink-too-many", to: three, message: /from 5 to 3 controllers/ },
    { name: "shrink-growth", to: [...five, "c6"], message: /adds c6/ },
    { name: "shrink-self", to: ["c1", "c3", "c4", "c5"], message: /does not name c2, whose directory this is \(a removed controller is stopped for good/ },
    { name: "shrink-wrong-from", to: four, from: three, message: /--from c1,c2,c3 is not the set/ },
  ];
  for (const { name, to, from, message } of cases) {
    const refusedDir = await controllerDir(name, voting);
    const unchanged = logBytes(refusedDir);
    await t.throwsAsync(shrinkAcceptorSet(refusedDir, to, from), { instanceOf: AcceptorSetStepRefused, message }, name);
    t.deepEqual(logBytes(refusedDir), unchanged, `${name}: the log is unchanged`);
  }
  // A log from before the set was recorded shrinks with --from.
  const old = await controllerDir("shrink-unrecorded", [{ kind: "init" }, { kind: "promise", ballot }]);
  t.deepEqual((await shrinkAcceptorSet(old, ["c1", "c2"], three)).from, three);
  t.deepEqual(recordedAcceptorSet(logRecords(old)), ["c1", "c2"]);

  let out = "";
  let err = "";
  const cliDir = await controllerDir("shrink-cli", voting);
  t.is(await main(["acceptors", "shrink", cliDir, "--to", "c1,c2,c3,c4"], { out: (text) => (out += text), err: (text) => (err += text) }), 0, err);
  t.regex(out, /^c2: its Paxos log now names the acceptors c1, c2, c3, c4 \(was c1, c2, c3, c4, c5\)\nnext: start c2 with "controllerIds": \["c1","c2","c3","c4"\]; .* then stop c5 for good and move its data directory aside/);
  t.is(await main(["acceptors", "shrink", cliDir, "--to", "c2"], { out: (text) => (out += text), err: (text) => (err += text) }), 1);
  t.regex(err, /nothing written: c2: from 4 to 1 controllers, a majority of the new set \(1\) need not meet a majority of the old one \(3\)/);
});

test("a shrink is refused on a controller whose own snapshot does not cover the floor its rejoin adopted, and allowed once it does", async (t) => {
  const rejoined: ViewDurableRecord[] = [{ kind: "init", fencedBy: ["c1", "c3"], acceptors: three }, { kind: "promise", ballot }, { kind: "floor", slot: 5 }];
  const behind = await controllerDir("shrink-behind", rejoined);
  const before = logBytes(behind);
  await t.throwsAsync(shrinkAcceptorSet(behind, ["c1", "c2"]), {
    instanceOf: AcceptorSetStepRefused,
    message: /c2: its log holds no votes below slot 5 \(its rejoin's fences had compacted them\), but its own snapshot covers only the slots below 0: those slots are on other controllers alone/,
  });
  t.deepEqual(logBytes(behind), before, "nothing written");
  // Growing does not remove anybody: the peers holding those slots stay.
  t.deepEqual((await growAcceptorSet(await controllerDir("grow-behind", rejoined), [...three, "c4"])).to, [...three, "c4"]);
  const caughtUp = await controllerDir("shrink-caught-up", [...rejoined, { kind: "snapshot", throughSlot: 5, snapshot: viewToSnapshot(viewStateMachine.initialState) }]);
  t.deepEqual((await shrinkAcceptorSet(caughtUp, ["c1", "c2"])).to, ["c1", "c2"]);
});

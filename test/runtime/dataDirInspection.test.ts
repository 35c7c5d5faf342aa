import test from "ava";
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodeRecord, paxosLogName, type ViewDurableRecord } from "../../actors/paxos/paxosRecords.ts";
import type { SyncOutcome } from "../../actors/ports/storage.ts";
import { frameRecord } from "../../actors/recordFraming.ts";
import { viewToSnapshot } from "../../machines/view/viewSnapshot.ts";
import { viewStateMachine } from "../../machines/view/viewStateMachine.ts";
import { main } from "../../runtime/cli/main.ts";
import { FileStorage } from "../../runtime/fileStorage.ts";
import { fastCrc32 } from "../../runtime/nativeCrc32.ts";
import { claimDataDirIdentity } from "../../runtime/node/dataDirIdentity.ts";
import { inspectDataDir } from "../../runtime/node/dataDirInspection.ts";

const scratch = mkdtempSync(join(tmpdir(), "haring-inspect-"));
test.after.always(() => rmSync(scratch, { recursive: true, force: true }));

const ballot = (round: number, controllerId: string) => ({ round, controllerId });

async function controllerDir(name: string, owner: string, writer: string, records: readonly ViewDurableRecord[]): Promise<string> {
  const dataDir = join(scratch, name);
  mkdirSync(dataDir, { recursive: true });
  claimDataDirIdentity(dataDir, { clusterId: "prod", nodeId: owner, role: "controller" });
  const log = new FileStorage(dataDir).open(paxosLogName);
  for (const record of records) log.append(encodeRecord(writer, record));
  const outcome = await new Promise<SyncOutcome>((done) => log.sync(done));
  if (!outcome.ok) throw new Error(outcome.error);
  return dataDir;
}

function filesOf(dataDir: string): Map<string, string> {
  return new Map(readdirSync(dataDir).map((name) => [name, readFileSync(join(dataDir, name)).toString("base64")]));
}

async function cli(argv: string[]) {
  let out = "";
  let err = "";
  const code = await main(argv, { out: (text) => (out += text), err: (text) => (err += text) });
  return { code, out, err };
}

const snapshot = viewToSnapshot(viewStateMachine.initialState);
// A log that began with a rejoin (its inherited vote), fenced by c1 and c3.
const votingState: ViewDurableRecord[] = [
  { kind: "init", fencedBy: ["c1", "c3"], acceptors: ["c1", "c2", "c3"] },
  { kind: "promise", ballot: ballot(2, "c1") },
  { kind: "accept", slot: 3, ballot: ballot(2, "c1"), value: { kind: "noop" } },
  { kind: "snapshot", throughSlot: 5, snapshot },
  { kind: "floor", slot: 5 },
  { kind: "accept", slot: 5, ballot: ballot(2, "c1"), value: { kind: "noop" } },
  { kind: "inherit", slot: 7, ballot: ballot(3, "c3"), value: { kind: "noop" } },
  { kind: "accept", slot: 6, ballot: ballot(4, "c2"), value: { kind: "noop" } },
  { kind: "round", round: 2 },
  // What it saw of c1 and c3: c3's was forgotten later (a rejoin fence), c1's replaced by a later record.
  { kind: "peer-evidence", peer: "c1", promised: ballot(2, "c1"), votedSlot: 4, votedBallot: ballot(2, "c1"), roundUsed: 2 },
  { kind: "peer-evidence", peer: "c3", promised: ballot(3, "c3"), votedSlot: -1, votedBallot: ballot(0, ""), roundUsed: 3 },
  { kind: "peer-evidence", peer: "c1", promised: ballot(4, "c2"), votedSlot: 6, votedBallot: ballot(4, "c2"), roundUsed: 2 },
  { kind: "peer-evidence", peer: "c3", promised: ballot(0, ""), votedSlot: -1, votedBallot: ballot(0, ""), roundUsed: 0 },
];

test("a controller's own directory: the state its acceptor recovers, without a byte changed", async (t) => {
  const dataDir = await controllerDir("own", "c2", "c2", votingState);
  const before = filesOf(dataDir);
  const inspection = inspectDataDir(dataDir);
  t.deepEqual(filesOf(dataDir), before, "inspection writes nothing");
  t.deepEqual(inspection.identity, { kind: "found", identity: { clusterId: "prod", nodeId: "c2", role: "controller" } });
  t.deepEqual(inspection.paxos, {
    readable: true,
    writers: ["c2"],
    everVoted: true,
    promised: "4.c2",
    // The vote in slot 3 is below the floor: compacted, as recovery drops it.
    votes: { count: 3, inherited: 1, lowestSlot: 5, highestSlot: 7, highestBallot: "4.c2" },
    floorSlot: 5,
    snapshot: { throughSlot: 5, epoch: snapshot.epoch, hosts: 0, vms: 0 },
    proposerRound: 2,
    rejoinFencedBy: ["c1", "c3"],
    acceptors: ["c1", "c2", "c3"],
    keptEvidence: { c1: { promised: "4.c2", votedSlot: 6, votedBallot: "4.c2", roundUsed: 2 } },
  });
  t.false(inspection.refused);
  t.deepEqual(inspection.findings, [
    "c2 has its Paxos state here: it starts voting with promise 4.c2 and 3 votes in slots 5-7, unless a controller it reaches saw it hold more (an old copy); this state began with a rejoin fenced by c1, c3, and only they are asked; only with controllerIds c1, c2, c3 (the acceptor set it was written with)",
  ]);
  const printed = await cli(["inspect", dataDir]);
  t.is(printed.code, 0, printed.err);
  t.regex(printed.out, /^identity: controller c2 of cluster prod$/m);
  t.regex(printed.out, /^paxos: written by c2; voted \(since a rejoin fenced by c1, c3\); acceptors c1, c2, c3; promised 4\.c2; proposer round 2$/m);
  t.regex(printed.out, /^paxos kept of c1: promised 4\.c2, voted in slot 6 at 4\.c2, proposer round 2 \(its disk holds at least this\)$/m);
  t.notRegex(printed.out, /kept of c3/);
  t.regex(printed.out, /^paxos votes: 3 in slots 5-7 \(1 inherited\), highest ballot 4\.c2; floor 5$/m);
  t.regex(printed.out, /^verdict: the node would start on this directory$/m);
  const json = await cli(["inspect", dataDir, "--json"]);
  t.deepEqual(JSON.parse(json.out), JSON.parse(JSON.stringify(inspection)));
});

test("a rejoined log whose own snapshot is under its floor says so: its earlier slots are on other controllers alone", async (t) => {
  const behind = votingState.filter((record) => record.kind !== "snapshot");
  const inspection = inspectDataDir(await controllerDir("behind-floor", "c2", "c2", behind));
  t.false(inspection.refused);
  t.is(inspection.findings.length, 2);
  t.is(
    inspection.findings[1],
    'its own snapshot covers only the slots below 0, under its floor 5 (from its rejoin\'s fences): until it catches up, those slots are on other controllers alone, and "haring acceptors shrink" refuses this log',
  );
});

test("a paxos.log copied from another controller: refused (exit 1), naming who wrote it", async (t) => {
  const dataDir = await controllerDir("copied", "c1", "c3", votingState);
  const inspection = inspectDataDir(dataDir);
  t.true(inspection.refused);
  t.regex(inspection.findings.join("\n"), /paxos\.log was written by c3, but this directory is controller c1 of cluster prod: c1 refuses to start on it/);
  const printed = await cli(["inspect", dataDir]);
  t.is(printed.code, 1);
  t.regex(printed.out, /^verdict: the node would refuse to start on this directory$/m);
});

test("a torn tail is reported and left in place; an unreadable record is refused; a log that never voted starts rejoining", async (t) => {
  const torn = await controllerDir("torn", "c1", "c1", votingState);
  const path = join(torn, `${paxosLogName}.log`);
  const intact = readFileSync(path);
  appendFileSync(path, frameRecord(encodeRecord("c1", { kind: "round", round: 9 }), fastCrc32).subarray(0, 11));
  const tornInspection = inspectDataDir(torn);
  t.deepEqual(tornInspection.logs, [{ name: "paxos.log", bytes: intact.length + 11, records: votingState.length, discardedTailBytes: 11 }]);
  t.regex(tornInspection.findings.join("\n"), new RegExp(`the last 11 bytes are a torn or corrupt tail .* the ${votingState.length} records before them are intact`));
  t.false(tornInspection.refused, "the node cuts a torn tail and starts");
  t.is(readFileSync(path).length, intact.length + 11, "the tail is the node's to cut, not the inspection's");

  const unreadable = await controllerDir("unreadable", "c1", "c1", [{ kind: "init" }]);
  const log = new FileStorage(unreadable).open(paxosLogName);
  log.append(new TextEncoder().encode("a well-framed record that is not one of ours"));
  await new Promise<SyncOutcome>((done) => log.sync(done));
  const refused = inspectDataDir(unreadable);
  t.true(refused.refused);
  t.deepEqual(refused.paxos?.readable, false);
  t.regex(refused.findings.join("\n"), /record 1 of 2 is unreadable .* c1 refuses to start on it/);

  const neverVoted = await controllerDir("never-voted", "c3", "c3", [{ kind: "round", round: 1 }]);
  const rejoins = inspectDataDir(neverVoted);
  t.false(rejoins.refused);
  t.like(rejoins.paxos, { readable: true, everVoted: false, promised: "0." });
  t.regex(rejoins.findings.join("\n"), /c3 never voted here \(no init record\): it starts without Paxos state and rejoins/);
});

test("locks, identities and directories that are not what they should be", async (t) => {
  const bare = join(scratch, "bare");
  mkdirSync(bare);
  writeFileSync(join(bare, "controller.lock"), "999999999\n");
  const unclaimed = inspectDataDir(bare);
  t.deepEqual(unclaimed.identity, { kind: "absent" });
  t.deepEqual(unclaimed.locks, [{ file: "controller.lock", pid: 999_999_999, alive: false }]);
  t.regex(unclaimed.findings.join("\n"), /no identity\.json: the next node to start here claims the directory/);
  t.false(unclaimed.refused);

  writeFileSync(join(bare, "node.lock"), `${process.pid}\n`);
  writeFileSync(join(bare, "identity.json"), "{ not json");
  const held = inspectDataDir(bare);
  t.deepEqual(held.locks.map((lock) => lock.alive), [false, true]);
  t.regex(held.findings.join("\n"), new RegExp(`node\\.lock: process ${process.pid} holds this directory now`));
  t.true(held.refused, "no node starts on an unreadable identity");

  const host = await controllerDir("host-with-paxos", "c1", "c1", votingState);
  writeFileSync(join(host, "identity.json"), JSON.stringify({ v: 1, clusterId: "prod", nodeId: "h1", role: "host" }));
  const mixedUp = inspectDataDir(host);
  t.false(mixedUp.refused, "a host never reads paxos.log");
  t.regex(mixedUp.findings.join("\n"), /paxos\.log is a controller's \(c1\), but this directory is host h1 of cluster prod: it ignores the file, and no controller can start here/);

  const missing = await cli(["inspect", join(scratch, "absent")]);
  t.is(missing.code, 3);
  t.regex(missing.err, /^haring: cannot inspect .*absent: ENOENT/);
  const notDirectory = await cli(["inspect", join(host, "identity.json")]);
  t.is(notDirectory.code, 3);
  t.regex(notDirectory.err, /is not a directory/);
  t.is((await cli(["inspect"])).code, 2);
});

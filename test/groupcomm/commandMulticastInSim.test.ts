import test from "ava";
import { commandMessages, typeHeader } from "../../actors/groupcomm/commandMessages.ts";
import { commandMsgId, commandStreamName } from "../../actors/groupcomm/commandStream.ts";
import { commandsAnsweredFromLedgerMetric, defaultLedgerLogName } from "../../actors/groupcomm/commandMember.ts";
import { clusterSubjects } from "../../actors/subjects.ts";
import { interruptedCommandError } from "../../machines/groupcomm/commandLedger.ts";
import { describeOutcomes, encoder, simCluster } from "./groupcommSimHarness.ts";

const subjects = clusterSubjects("gc");

test("every member applies the command once and the sender gets one outcome per member, in member order", (t) => {
  const cluster = simCluster({ memberIds: ["m1", "m2", "m3"] });
  cluster.world.runFor(100);
  const sent = cluster.send(["m3", "m1", "m2", "m1"], cluster.command("c1", "start vm1"));
  cluster.world.runFor(1_000);
  t.is(sent.doneCalls, 1);
  t.deepEqual(describeOutcomes(sent.outcomes), ["m3 applied m3:start vm1", "m1 applied m1:start vm1", "m2 applied m2:start vm1"]);
  t.is(sent.each.length, 3, "onEach once per member, the repeated m1 counted once");
  t.true(sent.doneAtMs! < 100 + 50, "outcomes arrive in a few virtual milliseconds, not at the timeout");
  t.deepEqual(
    cluster.applications.map((application) => `${application.memberId} ${application.commandId} from ${application.senderId}`).sort(),
    ["m1 c1 from mgr", "m2 c1 from mgr", "m3 c1 from mgr"],
  );
  t.is(cluster.multicaster().sendsInFlight, 0);
  const nobody = cluster.send([], cluster.command("c-empty"));
  cluster.world.runFor(1);
  t.deepEqual(nobody.outcomes, []);
  t.is(nobody.doneCalls, 1);
});

test("a dead member is reported timed out after timeoutMs; the live ones applied", (t) => {
  const cluster = simCluster({ memberIds: ["m1", "m2", "m3"] });
  cluster.world.runFor(100);
  cluster.world.crash("m2");
  const sent = cluster.send(["m1", "m2", "m3"], cluster.command("c1"), 2_000);
  cluster.world.runFor(1_000);
  t.is(sent.doneCalls, 0, "still waiting for m2");
  t.deepEqual(describeOutcomes(sent.each), ["m1 applied m1:c1", "m3 applied m3:c1"]);
  cluster.world.runFor(1_500);
  t.is(sent.doneCalls, 1);
  t.is(sent.doneAtMs, 100 + 2_000);
  t.deepEqual(describeOutcomes(sent.outcomes), ["m1 applied m1:c1", "m2 timed-out", "m3 applied m3:c1"]);
  // The command waits in m2's durable consumer: m2 applies it once when it is back.
  cluster.world.restart("m2");
  cluster.world.runFor(1_000);
  t.is(cluster.appliedCount("m2", "c1"), 1);
});

test("an applier's failure is the member's failed outcome, with its reason", (t) => {
  const cluster = simCluster({ memberIds: ["m1", "m2"] });
  cluster.world.runFor(100);
  const sent = cluster.send(["m1", "m2"], cluster.command("c-fail", "start vm9", "test.fail"));
  cluster.world.runFor(1_000);
  t.deepEqual(describeOutcomes(sent.outcomes), ["m1 failed cannot start vm9 on m1", "m2 failed cannot start vm9 on m2"]);
});

test("a member that crashes after applying but before its ack reaches the server does not apply again on redelivery", (t) => {
  const cluster = simCluster({ memberIds: ["m1", "m2"], applyDelayMs: 20 });
  cluster.world.runFor(100);
  const sent = cluster.send(["m1", "m2"], cluster.command("c1"));
  // m1 is cut off from JetStream while it applies: its ack is lost, the result (core NATS) is not.
  cluster.world.runFor(5);
  cluster.server.setReachable("m1", false);
  cluster.world.runFor(100);
  t.is(cluster.appliedCount("m1", "c1"), 1);
  t.deepEqual(describeOutcomes(sent.outcomes), ["m1 applied m1:c1", "m2 applied m2:c1"]);
  t.is(cluster.server.consumerInfo(commandStreamName("gc"), "cmd-m1")!.ackPending, 1, "the ack never arrived");
  cluster.world.crash("m1");
  cluster.server.setReachable("m1", true);
  cluster.world.restart("m1");
  cluster.world.runFor(2_000);
  t.true(cluster.server.counters.redelivered >= 1, "the server redelivered after ack wait");
  t.is(cluster.appliedCount("m1", "c1"), 1, "the restarted member found c1 in its ledger");
  t.true(cluster.world.metrics("m1").counter(commandsAnsweredFromLedgerMetric) >= 1);
  t.is(cluster.server.consumerInfo(commandStreamName("gc"), "cmd-m1")!.ackPending, 0, "acked from the ledger");
  // Sending c1 again is safe: no new application, the stored result comes back.
  const again = cluster.send(["m1", "m2"], cluster.command("c1"));
  cluster.world.runFor(1_000);
  t.deepEqual(describeOutcomes(again.outcomes), ["m1 applied m1:c1", "m2 applied m2:c1"]);
  t.is(cluster.appliedCount("m1", "c1"), 1);
  t.is(cluster.appliedCount("m2", "c1"), 1);
});

test("a member that crashes while applying never applies that command again: it reports it failed as interrupted", (t) => {
  const cluster = simCluster({ memberIds: ["m1"], applyDelayMs: 200 });
  cluster.world.runFor(100);
  const sent = cluster.send(["m1"], cluster.command("c1"), 10_000);
  cluster.world.runFor(50);
  t.is(cluster.appliedCount("m1", "c1"), 1, "the applier started");
  cluster.world.crash("m1");
  cluster.world.runFor(100);
  cluster.world.restart("m1");
  cluster.world.runFor(2_000);
  t.is(cluster.appliedCount("m1", "c1"), 1);
  t.deepEqual(describeOutcomes(sent.outcomes), [`m1 failed ${interruptedCommandError}`]);
});

test("duplicate sends (concurrent, later, after the dedupe window) apply once; every send gets the stored result", (t) => {
  const cluster = simCluster({ memberIds: ["m1", "m2"], applyDelayMs: 30 });
  cluster.world.runFor(100);
  const first = cluster.send(["m1", "m2"], cluster.command("dup"));
  const concurrent = cluster.send(["m2"], cluster.command("dup"));
  cluster.world.runFor(1_000);
  const later = cluster.send(["m1", "m2"], cluster.command("dup"));
  cluster.world.runFor(1_000);
  t.true(cluster.server.counters.duplicates >= 3, "JetStream refused the duplicate copies");
  cluster.world.runFor(130_000); // past the duplicate window: the next copies are stored again
  const afterWindow = cluster.send(["m1", "m2"], cluster.command("dup"));
  cluster.world.runFor(1_000);
  for (const sent of [first, later, afterWindow]) t.deepEqual(describeOutcomes(sent.outcomes), ["m1 applied m1:dup", "m2 applied m2:dup"]);
  t.deepEqual(describeOutcomes(concurrent.outcomes), ["m2 applied m2:dup"]);
  t.is(cluster.appliedCount("m1", "dup"), 1);
  t.is(cluster.appliedCount("m2", "dup"), 1);
});

test("the ledger survives restarts, stays bounded through compaction, and still knows recent commands", (t) => {
  const member = { maxAckPending: 2, maxDeliver: 3, maxLedgerEntries: 12, ledgerCompactAfterRecords: 30 };
  const cluster = simCluster({ memberIds: ["m1"], member });
  cluster.world.runFor(100);
  for (let index = 0; index < 40; index++) {
    cluster.send(["m1"], cluster.command(`c${index}`));
    cluster.world.runFor(50);
  }
  cluster.world.runFor(1_000);
  t.is(cluster.applications.length, 40);
  t.true(cluster.members.get("m1")!.ledgerSize <= 12);
  cluster.world.crash("m1");
  cluster.world.restart("m1");
  const records = cluster.world.disk("m1").mount(cluster.world.nodeClock("m1")).open(defaultLedgerLogName).readAll().length;
  t.true(records <= 30, `the log was compacted (${records} records)`);
  cluster.world.runFor(100);
  t.is(cluster.members.get("m1")!.ledgerSize, 12);
  const again = cluster.send(["m1"], cluster.command("c39"));
  cluster.world.runFor(1_000);
  t.deepEqual(describeOutcomes(again.outcomes), ["m1 applied m1:c39"]);
  t.is(cluster.appliedCount("m1", "c39"), 1, "a recent command is still in the restored ledger");
});

test("a torn ledger tail is detected and cut on restart; the member keeps working and never applies twice", (t) => {
  const cluster = simCluster({ memberIds: ["m1"] });
  cluster.world.runFor(100);
  const sent = cluster.send(["m1"], cluster.command("c1"));
  cluster.world.runFor(500);
  t.deepEqual(describeOutcomes(sent.outcomes), ["m1 applied m1:c1"]);
  cluster.world.crash("m1");
  t.true(cluster.world.corruptTail("m1", defaultLedgerLogName));
  cluster.world.restart("m1");
  cluster.world.runFor(100);
  t.true(cluster.members.get("m1")!.discardedLedgerTailBytes > 0);
  t.true(cluster.world.transcript().includes("command-ledger.torn-tail"));
  // The lost "done" record leaves c1 begun: answered as interrupted, not applied again.
  const again = cluster.send(["m1"], cluster.command("c1"));
  const next = cluster.send(["m1"], cluster.command("c2"));
  cluster.world.runFor(1_000);
  t.deepEqual(describeOutcomes(again.outcomes), [`m1 failed ${interruptedCommandError}`]);
  t.deepEqual(describeOutcomes(next.outcomes), ["m1 applied m1:c2"]);
  t.is(cluster.appliedCount("m1", "c1"), 1);
});

test("hostile input is counted and refused, never applied, never a crash", (t) => {
  const cluster = simCluster({ memberIds: ["m1", "m2"], bareNodes: ["evil"] });
  cluster.world.runFor(100);
  const evil = cluster.ports.get("evil")!;
  const junk: [Uint8Array, Record<string, string>][] = [
    [encoder.encode("not msgpack at all"), {}],
    [new Uint8Array(300_000), {}], // oversized
    [commandMessages.encode("cmd.result", "evil", "x", { commandId: "x", memberId: "evil", status: "applied", result: new Uint8Array(0), error: "" }), {}],
    [commandMessages.encode("cmd.request", "evil", "c9", { commandId: "c9", kind: "test.do", payload: new Uint8Array(0), repeat: false }), { "Nats-Msg-Id": commandMsgId("other", "m1") }],
  ];
  for (const [data, headers] of junk) evil.stream!.publish(subjects.command("m1"), data, { headers: { ...headers, [typeHeader]: "cmd.request" } }, () => undefined);
  cluster.world.runFor(500);
  t.is(cluster.memberRejections.get("m1")!.rejectedTotal, 4);
  t.is(cluster.applications.length, 0);
  t.is(cluster.members.get("m1")!.status, "consuming");
  t.is(cluster.server.consumerInfo(commandStreamName("gc"), "cmd-m1")!.ackPending, 0, "garbage is terminated, not redelivered");

  // Results that are garbage, or from nodes that are not members, are counted by the sender.
  const sent = cluster.send(["m1", "m2"], cluster.command("c1"));
  evil.network.publish(subjects.commandResult("c1"), encoder.encode("garbage"));
  evil.network.publish(
    subjects.commandResult("c1"),
    commandMessages.encode("cmd.result", "evil", "c1", { commandId: "c1", memberId: "evil", status: "failed", result: new Uint8Array(0), error: "no" }),
  );
  evil.network.publish(
    subjects.commandResult("c1"),
    commandMessages.encode("cmd.result", "evil", "c1", { commandId: "c1", memberId: "m2", status: "failed", result: new Uint8Array(0), error: "forged" }),
  );
  cluster.world.runFor(1_000);
  t.is(cluster.senderRejections().rejectedTotal, 3);
  t.deepEqual(describeOutcomes(sent.outcomes), ["m1 applied m1:c1", "m2 applied m2:c1"]);

  // Bad calls are failed outcomes, reported later, not exceptions.
  const badId = cluster.send(["m1"], cluster.command("bad id!"));
  const badMember = cluster.send(["m1", "no.such member"], cluster.command("c2"));
  const badKind = cluster.send(["m1"], cluster.command("c3", "x", "Not A Kind"));
  t.is(badId.doneCalls, 0, "never inside send()");
  cluster.world.runFor(1_000);
  t.regex(describeOutcomes(badId.outcomes)[0]!, /^m1 failed invalid command id/);
  t.regex(describeOutcomes(badKind.outcomes)[0]!, /^m1 failed invalid command kind/);
  t.deepEqual(describeOutcomes(badMember.outcomes)[0], "m1 applied m1:c2");
  t.regex(describeOutcomes(badMember.outcomes)[1]!, /^no\.such member failed invalid member id/);
});

test("the same seed replays the same run byte for byte", (t) => {
  const run = (seed: number) => {
    const cluster = simCluster({ seed, memberIds: ["m1", "m2", "m3"], applyDelayMs: 7 });
    cluster.world.setLoss(0.05);
    cluster.world.runFor(100);
    const results: string[] = [];
    for (let index = 0; index < 10; index++) {
      const sent = cluster.send(["m1", "m2", "m3"], cluster.command(`c${index}`), 300);
      cluster.world.runFor(400);
      results.push(describeOutcomes(sent.outcomes).join(","));
    }
    return `${cluster.world.transcript()}\n${results.join("\n")}`;
  };
  t.is(run(5), run(5));
});

test("under random crashes, restarts, JetStream cut-offs and 5% loss, no member applies a command twice, and after healing every command is answered", (t) => {
  let crashes = 0;
  let redeliveries = 0;
  let answeredFromLedger = 0;
  for (const seed of [11, 12, 13]) {
    const memberIds = ["m1", "m2", "m3", "m4"];
    const cluster = simCluster({ seed, memberIds, applyDelayMs: 15 });
    const faults = cluster.world.forkRandom("faults");
    cluster.world.setLoss(0.05);
    cluster.world.runFor(100);
    const commands = Array.from({ length: 30 }, (_, index) => `c${index}`);
    for (const commandId of commands) {
      cluster.send(memberIds, cluster.command(commandId), 400);
      const victim = memberIds[faults.int(memberIds.length)]!;
      const roll = faults.int(10);
      if (roll === 0 && cluster.world.nodeState(victim) === "up") {
        cluster.world.crash(victim);
        crashes++;
      } else if (roll === 1 && cluster.world.nodeState(victim) === "crashed") cluster.world.restart(victim);
      else if (roll === 2) cluster.server.setReachable(victim, !cluster.server.isReachable(victim));
      cluster.world.runFor(5 + faults.int(60));
    }
    cluster.world.setLoss(0);
    for (const memberId of memberIds) {
      cluster.server.setReachable(memberId, true);
      if (cluster.world.nodeState(memberId) === "crashed") cluster.world.restart(memberId);
    }
    cluster.world.runFor(3_000);
    const finals = commands.map((commandId) => cluster.send(memberIds, cluster.command(commandId), 10_000));
    cluster.world.runFor(12_000);
    for (const memberId of memberIds) {
      for (const commandId of commands) {
        t.is(cluster.appliedCount(memberId, commandId), 1, `seed ${seed}: ${memberId} applied ${commandId} once`);
      }
    }
    for (const final of finals) {
      for (const line of describeOutcomes(final.outcomes)) {
        t.regex(line, new RegExp(`^m\\d (applied m\\d:c\\d+|failed ${interruptedCommandError.slice(0, 20)})`), `seed ${seed}`);
      }
    }
    redeliveries += cluster.server.counters.redelivered;
    for (const memberId of memberIds) answeredFromLedger += cluster.world.metrics(memberId).counter(commandsAnsweredFromLedgerMetric);
  }
  t.true(crashes >= 3 && redeliveries > 0 && answeredFromLedger > 0, `faults happened: ${crashes} crashes, ${redeliveries} redeliveries, ${answeredFromLedger} ledger answers`);
});

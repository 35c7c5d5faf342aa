import test from "ava";
import { CommandLedger, interruptedCommandError, type LedgerRecord } from "../../machines/groupcomm/commandLedger.ts";
import { checkSelector, parseSelector, resolveLabelSelector } from "../../machines/groupcomm/labelSelector.ts";
import { OutcomeCollector } from "../../machines/groupcomm/memberOutcomes.ts";

const ok = (text: string) => ({ ok: true as const, result: new TextEncoder().encode(text) });

test("ledger: a restored log finishes interrupted commands as failed and keeps done ones", (t) => {
  const records: LedgerRecord[] = [
    { type: "begin", commandId: "a", senderId: "s", kind: "k" },
    { type: "done", commandId: "a", senderId: "s", kind: "k", outcome: ok("ra") },
    { type: "begin", commandId: "b", senderId: "s", kind: "k" },
  ];
  const ledger = new CommandLedger({ maxEntries: 10, compactAfterRecords: 20 });
  const finishing = ledger.restore(records);
  t.deepEqual(finishing, [{ type: "done", commandId: "b", senderId: "s", kind: "k", outcome: { ok: false, error: interruptedCommandError } }]);
  t.is(ledger.lookup("a")?.state, "done");
  t.is(ledger.lookup("b")?.state, "done");
  t.is(ledger.recordsInLog, 4);
  t.throws(() => ledger.begin({ commandId: "a", senderId: "s", kind: "k" }));
});

test("ledger: bounded by forgetting the oldest finished entries, never one in flight; compaction keeps one record per entry", (t) => {
  const ledger = new CommandLedger({ maxEntries: 3, compactAfterRecords: 8 });
  ledger.begin({ commandId: "slow", senderId: "s", kind: "k" });
  for (const id of ["a", "b", "c", "d"]) {
    ledger.begin({ commandId: id, senderId: "s", kind: "k" });
    ledger.finish(id, ok(id));
  }
  t.is(ledger.lookup("slow")?.state, "begun");
  t.is(ledger.lookup("a"), undefined);
  t.is(ledger.lookup("b"), undefined);
  t.is(ledger.forgottenEntries, 2);
  t.true(ledger.needsCompaction);
  const image = ledger.compactedRecords();
  ledger.markCompacted();
  t.deepEqual(image.map((record) => `${record.type} ${record.commandId}`), ["begin slow", "done c", "done d"]);
  t.false(ledger.needsCompaction);
  const replayed = new CommandLedger({ maxEntries: 3, compactAfterRecords: 8 });
  t.is(replayed.restore(image).length, 1, "the begun one is interrupted on replay");
  t.throws(() => new CommandLedger({ maxEntries: 3, compactAfterRecords: 3 }));
});

test("outcomes: each member settles once, first word wins, non-members refused, the rest time out in member order", (t) => {
  const collector = new OutcomeCollector(["b", "a", "b", "c"]);
  t.deepEqual(collector.memberIds, ["b", "a", "c"]);
  t.is(collector.settle({ memberId: "a", status: "failed", error: "x" }), "accepted");
  t.is(collector.settle({ memberId: "a", status: "applied", result: new Uint8Array() }), "already-settled");
  t.is(collector.settle({ memberId: "z", status: "timed-out" }), "not-a-member");
  t.false(collector.complete);
  t.deepEqual(collector.timeOutRest().map((outcome) => outcome.memberId), ["b", "c"]);
  t.true(collector.complete);
  t.deepEqual(collector.outcomes().map((outcome) => `${outcome.memberId}:${outcome.status}`), ["b:timed-out", "a:failed", "c:timed-out"]);
});

test("label selectors: every pair must match, list order kept, bad selectors refused with a reason", (t) => {
  const nodes = [
    { id: "h1", labels: { role: "host", rack: "r1" } },
    { id: "h2", labels: { role: "host", rack: "r2" } },
    { id: "c1", labels: { role: "controller", rack: "r1" } },
    { id: "h1", labels: { role: "host", rack: "r1" } },
  ];
  t.deepEqual(resolveLabelSelector({ role: "host" }, nodes), ["h1", "h2"]);
  t.deepEqual(resolveLabelSelector({ rack: "r1" }, nodes), ["h1", "c1"]);
  t.deepEqual(resolveLabelSelector({ role: "host", rack: "r2" }, nodes), ["h2"]);
  t.deepEqual(resolveLabelSelector({}, nodes), ["h1", "h2", "c1"]);
  t.deepEqual(resolveLabelSelector({ toString: "x" }, nodes), [], "inherited properties never match");
  const parsed = parseSelector(" role=host , rack=r1");
  t.deepEqual(parsed, { ok: true, selector: { role: "host", rack: "r1" } });
  t.false(parseSelector("role").ok);
  t.false(parseSelector("role=host,role=controller").ok);
  t.false(parseSelector("ro le=host").ok);
  t.false(checkSelector({ role: 7 as unknown as string }).ok);
  t.false(checkSelector(Object.fromEntries(Array.from({ length: 17 }, (_, index) => [`k${index}`, "v"]))).ok);
});

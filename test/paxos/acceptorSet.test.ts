import test from "ava";
import { acceptorSetChange, peerAcceptorSetDifference, recordedAcceptorSet, viewControllerSetDifference } from "../../machines/paxos/acceptorSet.ts";
import { acceptorRecords, recoverAcceptor } from "../../machines/paxos/acceptor.ts";
import { createPaxosConfig } from "../../machines/paxos/config.ts";
import type { DurableRecord } from "../../machines/paxos/records.ts";
import type { CommandEnvelope } from "../../machines/paxos/values.ts";

type Records = DurableRecord<CommandEnvelope>[];
const promise: Records[number] = { kind: "promise", ballot: { round: 2, controllerId: "c2" } };

test("the set is the last init record's; a log without one, or from before the set was kept, names none", (t) => {
  t.is(recordedAcceptorSet([]), null);
  t.is(recordedAcceptorSet([promise]), null);
  t.is(recordedAcceptorSet([{ kind: "init" }, promise]), null);
  t.deepEqual(recordedAcceptorSet([{ kind: "init", acceptors: ["c1", "c2", "c3"] }, promise]), ["c1", "c2", "c3"]);
  // A compacting rewrite or a rejoin writes a later init: it speaks for the log.
  t.deepEqual(recordedAcceptorSet([{ kind: "init" }, promise, { kind: "init", fencedBy: ["c2", "c3"], acceptors: ["c1", "c2", "c3"] }]), ["c1", "c2", "c3"]);
});

test("any added or dropped controller is a change, named; order and an unrecorded set are not", (t) => {
  t.is(acceptorSetChange(null, ["c1", "c2", "c3"]), null);
  t.is(acceptorSetChange(["c1", "c2", "c3"], ["c1", "c2", "c3"]), null);
  t.is(acceptorSetChange(["c1", "c2", "c3"], ["c3", "c2", "c1"]), null);
  t.is(acceptorSetChange(["c1", "c2", "c3"], ["c1", "c2"]), "its Paxos log was written with the acceptors c1, c2, c3, but its config lists c1, c2 (it drops c3)");
  t.is(acceptorSetChange(["c1", "c2", "c3"], ["c1", "c2", "c3", "c4", "c5"]), "its Paxos log was written with the acceptors c1, c2, c3, but its config lists c1, c2, c3, c4, c5 (it adds c4, c5)");
  t.is(acceptorSetChange(["c1", "c2", "c3"], ["c1", "c2", "c4"]), "its Paxos log was written with the acceptors c1, c2, c3, but its config lists c1, c2, c4 (it adds c4 and drops c3)");
  // A typo is a change too: c1 alone would be its own majority.
  t.regex(acceptorSetChange(["c1", "c2", "c3"], ["c1"]) ?? "", /drops c2, c3/);
});

test("every init the acceptor writes names its set: at bootstrap, in a compacting rewrite, after a rejoin", (t) => {
  const config = createPaxosConfig(["c1", "c2", "c3"]);
  const booted = recoverAcceptor({ acceptorId: "c1", config, records: [], nowMs: 0, bootstrap: true });
  t.deepEqual(recordedAcceptorSet(booted.persist), ["c1", "c2", "c3"]);
  // A log from before the set was kept gets it with its next rewrite.
  const old = recoverAcceptor({ acceptorId: "c1", config, records: [{ kind: "init" }, promise], nowMs: 0, bootstrap: false });
  t.deepEqual(recordedAcceptorSet(acceptorRecords(old.state)), ["c1", "c2", "c3"]);
  t.deepEqual(recordedAcceptorSet(acceptorRecords({ ...old.state, fencedBy: ["c2", "c3"] })), ["c1", "c2", "c3"]);
});

test("a peer's list and the view's list are compared the same way; a view that names none yet agrees with any config", (t) => {
  t.is(peerAcceptorSetDifference("c2", ["c1", "c2", "c3"], ["c3", "c1", "c2"]), null);
  t.is(peerAcceptorSetDifference("c2", ["c1", "c2", "c3"], ["c1", "c2"]), "c2 lists the controllers c1, c2, c3, but this controller's config lists c1, c2 (it drops c3)");
  t.is(viewControllerSetDifference([], ["c1"]), null);
  t.is(viewControllerSetDifference(["c1", "c2", "c3"], ["c1", "c2", "c3"]), null);
  t.is(viewControllerSetDifference(["c1", "c2", "c3"], ["c1", "c2"]), "the view names the controllers c1, c2, c3, but this node's config lists c1, c2 (it drops c3)");
});

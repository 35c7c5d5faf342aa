/**
 * A controller recognises the echo of its own commit broadcasts by their bytes
 * (actors/paxos/paxosTransport.ts), so a leader spends no decode on them; any
 * other bytes on view.commit are decoded and checked as before.
 */
import test from "ava";
import { encodePaxosMessage, type ViewPaxosMessage } from "../../actors/paxos/paxosMessages.ts";
import { maxRememberedOwnBroadcastBytes, maxRememberedOwnBroadcasts, PaxosTransport } from "../../actors/paxos/paxosTransport.ts";
import type { Network } from "../../actors/ports/network.ts";
import { clusterSubjects } from "../../actors/subjects.ts";
import { learnerBroadcast } from "../../machines/paxos/messages.ts";
import type { ViewCommand } from "../../machines/view/viewCommands.ts";
import { recordingTelemetry } from "../codec/recordingTelemetry.ts";

const subjects = clusterSubjects("t");

function transportWithRecordedPublishes() {
  const published: { subject: string; data: Uint8Array }[] = [];
  const network: Network = {
    publish: (subject, data) => void published.push({ subject, data }),
    subscribe: () => ({ unsubscribe: () => undefined }),
    request: () => undefined,
  };
  const { log, metrics } = recordingTelemetry();
  const transport = new PaxosTransport({ nodeId: "c1", clusterId: "t", network, log, metrics }, () => undefined);
  return { transport, published };
}

function command(index: number, padding = 0): ViewCommand {
  const antiAffinity = Array.from({ length: Math.ceil(padding / 60) }, (_, part) => `${String.fromCharCode(97 + (part % 26))}${part}-${"p".repeat(56)}`);
  return { id: `cmd-${index}`, type: "vm.add", vmId: `vm-${index}`, resources: { cpu: 1, memoryMiB: 512 }, priority: "medium", rules: { affinity: [], antiAffinity }, desiredState: "running" } as ViewCommand;
}

function commit(slot: number, from = "c1", padding = 0): ViewPaxosMessage {
  return { type: "paxos.commit", from, to: learnerBroadcast, entries: [{ slot, value: { kind: "commands", commands: [command(slot, padding)] } }], commitIndex: slot + 1 };
}

/** What the network hands a subscriber: equal bytes in a buffer of its own. */
const copyOf = (bytes: Uint8Array) => new Uint8Array(bytes);

test("the echo of each own broadcast is recognised once, in the order sent", (t) => {
  const { transport, published } = transportWithRecordedPublishes();
  transport.send(commit(1));
  transport.send(commit(2));
  t.deepEqual(published.map((entry) => entry.subject), [subjects.viewCommit, subjects.viewCommit]);
  t.true(transport.isOwnBroadcastEcho(copyOf(published[0]!.data)));
  t.true(transport.isOwnBroadcastEcho(copyOf(published[1]!.data)));
  // A second copy (a duplicate from the network) is not taken for an echo: it is decoded and dropped as before.
  t.false(transport.isOwnBroadcastEcho(copyOf(published[1]!.data)));
});

test("bytes that are not our own broadcast are never taken for an echo", (t) => {
  const { transport, published } = transportWithRecordedPublishes();
  transport.send(commit(1));
  const own = published[0]!.data;
  t.false(transport.isOwnBroadcastEcho(encodePaxosMessage(commit(1, "c2"))));
  t.false(transport.isOwnBroadcastEcho(encodePaxosMessage(commit(2))));
  const flipped = copyOf(own);
  flipped[flipped.length - 1] = flipped[flipped.length - 1]! ^ 1;
  t.false(transport.isOwnBroadcastEcho(flipped));
  t.false(transport.isOwnBroadcastEcho(own.subarray(0, own.length - 1)));
  t.true(transport.isOwnBroadcastEcho(copyOf(own)));
});

test("a lost echo is forgotten once a later one comes back", (t) => {
  const { transport, published } = transportWithRecordedPublishes();
  for (let slot = 1; slot <= 3; slot++) transport.send(commit(slot));
  t.true(transport.isOwnBroadcastEcho(copyOf(published[2]!.data)));
  t.false(transport.isOwnBroadcastEcho(copyOf(published[0]!.data)));
  t.false(transport.isOwnBroadcastEcho(copyOf(published[1]!.data)));
});

test("remembered broadcasts are bounded in number and size", (t) => {
  const { transport, published } = transportWithRecordedPublishes();
  for (let slot = 0; slot < maxRememberedOwnBroadcasts + 1; slot++) transport.send(commit(slot));
  // The first one was forgotten to keep the bound; the rest are still recognised.
  t.false(transport.isOwnBroadcastEcho(copyOf(published[0]!.data)));
  t.true(transport.isOwnBroadcastEcho(copyOf(published[1]!.data)));
  const manySlots = Array.from({ length: 8 }, (_, index) => commit(1_000 + index, "c1", 3_000));
  transport.send({ ...manySlots[0]!, entries: manySlots.flatMap((message) => (message.type === "paxos.commit" ? message.entries : [])) } as ViewPaxosMessage);
  const large = published[published.length - 1]!.data;
  t.true(large.length > maxRememberedOwnBroadcastBytes);
  t.false(transport.isOwnBroadcastEcho(copyOf(large)));
});

test("messages to a single node are not remembered", (t) => {
  const { transport, published } = transportWithRecordedPublishes();
  transport.send({ type: "paxos.accepted", from: "c1", to: "c2", ballot: { round: 1, controllerId: "c2" }, slot: 4 });
  t.is(published[0]!.subject, subjects.paxos("c2"));
  t.false(transport.isOwnBroadcastEcho(copyOf(published[0]!.data)));
});

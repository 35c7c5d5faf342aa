/**
 * The transport's chunked path on the simulated network: a promise reporting
 * more votes than one NATS message holds reaches its proposer whole, and
 * what cannot be moved even in chunks is counted, not sent.
 */
import test from "ava";
import { createRejectionCounter } from "../../actors/codec/rejectionCounter.ts";
import { ChunkedTransfer, paxosTransfersMetric } from "../../actors/paxos/chunkedTransfer.ts";
import { encodePaxosMessage, type ViewPaxosMessage } from "../../actors/paxos/paxosMessages.ts";
import { PaxosTransport, paxosUnsendableMetric } from "../../actors/paxos/paxosTransport.ts";
import type { NodePorts } from "../../actors/ports/nodePorts.ts";
import { clusterSubjects } from "../../actors/subjects.ts";
import { defaultTransferLimits, type TransferLimits } from "../../machines/paxos/chunkTransfer.ts";
import type { ReportedVote } from "../../machines/paxos/messages.ts";
import type { ViewCommand } from "../../machines/view/viewCommands.ts";
import { SimWorld } from "../../sim/world.ts";
import { fastCrc32 } from "../../runtime/nativeCrc32.ts";
import { largeViewVm } from "./largeViewFixture.ts";

function twoNodes(seed: number, limits?: TransferLimits) {
  const world = new SimWorld({ seed, clusterId: "t", transcriptLevel: "warn" });
  const received = new Map<string, ViewPaxosMessage[]>();
  const transports = new Map<string, PaxosTransport>();
  for (const id of ["c1", "c2"]) {
    received.set(id, []);
    world.addNode(id, (ports: NodePorts) => {
      const rejections = createRejectionCounter(ports);
      const chunked = new ChunkedTransfer(ports, { accepts: ["paxos.promise", "paxos.snapshot"], deliver: (message) => received.get(id)!.push(message), rejections, ...(limits ? { limits } : {}) });
      const transport = new PaxosTransport(ports, () => undefined, chunked);
      transports.set(id, transport);
      const subscription = ports.network.subscribe(clusterSubjects("t").paxos(id), (netMessage) => {
        const message = transport.receiveOwn(netMessage, ["paxos.promise", "paxos.snapshot"], rejections);
        if (message) received.get(id)!.push(message);
      });
      return { stop: () => (subscription.unsubscribe(), chunked.stop()) };
    });
  }
  return { world, received, transport: (id: string) => transports.get(id)! };
}

function promiseWithVotes(count: number): ViewPaxosMessage {
  const votes: ReportedVote<ViewCommand>[] = [];
  for (let slot = 0; slot < count; slot++) {
    votes.push({ slot: 100 + slot, ballot: { round: 3, controllerId: "c2" }, value: { kind: "commands", commands: [0, 1, 2, 3].map((k) => largeViewVm(slot * 4 + k)) } });
  }
  return { type: "paxos.promise", from: "c1", to: "c2", ballot: { round: 4, controllerId: "c2" }, floorSlot: 100, votes };
}

test("a promise too large for one message reaches the proposer whole, through loss, duplication and reordering", (t) => {
  const { world, received, transport } = twoNodes(5);
  const promise = promiseWithVotes(2_000);
  t.throws(() => encodePaxosMessage(promise), { message: /exceeds maxMessageBytes/ });
  world.setLoss(0.1);
  world.setDuplication(0.2);
  world.setReorder({ fraction: 0.3, maxExtraDelayMs: 10 });
  transport("c1").send(promise);
  world.runFor(5_000);
  t.is(received.get("c2")!.length, 1);
  t.deepEqual(received.get("c2")![0], promise);
  t.is(world.metrics("c2").counter(paxosTransfersMetric, { event: "completed", carries: "paxos.promise" }), 1);
});

test("a message beyond even the chunked limit is counted as unsendable, and nothing leaves", (t) => {
  const { world, received, transport } = twoNodes(6, { ...defaultTransferLimits, maxTransferBytes: 1_048_576 });
  transport("c1").send(promiseWithVotes(2_000));
  world.runFor(1_000);
  t.is(received.get("c2")!.length, 0);
  t.is(world.metrics("c1").counter(paxosUnsendableMetric, { type: "paxos.promise", reason: "too-large-for-chunks" }), 1);
});

test("chunked transfers checksum with the node's checksum port when it has one (zlib's in a node process), at both ends", (t) => {
  const world = new SimWorld({ seed: 9, clusterId: "t", transcriptLevel: "warn" });
  const checksummed = new Map<string, number>([["c1", 0], ["c2", 0]]);
  const received: ViewPaxosMessage[] = [];
  const transports = new Map<string, PaxosTransport>();
  for (const id of ["c1", "c2"]) {
    world.addNode(id, (simPorts: NodePorts) => {
      const ports: NodePorts = { ...simPorts, checksum: (bytes) => (checksummed.set(id, checksummed.get(id)! + bytes.length), fastCrc32(bytes)) };
      const rejections = createRejectionCounter(ports);
      const chunked = new ChunkedTransfer(ports, { accepts: ["paxos.promise"], deliver: (message) => received.push(message), rejections });
      const transport = new PaxosTransport(ports, () => undefined, chunked);
      transports.set(id, transport);
      const subscription = ports.network.subscribe(clusterSubjects("t").paxos(id), (netMessage) => void transport.receiveOwn(netMessage, ["paxos.promise"], rejections));
      return { stop: () => (subscription.unsubscribe(), chunked.stop()) };
    });
  }
  transports.get("c1")!.send(promiseWithVotes(2_000));
  world.runFor(5_000);
  t.is(received.length, 1, "the transfer completed and its checksum matched");
  t.true(checksummed.get("c1")! > defaultTransferLimits.chunkBytes, "the sender checksummed the whole message through the port");
  t.is(checksummed.get("c2"), checksummed.get("c1"), "the receiver checked the same bytes through its port");
});

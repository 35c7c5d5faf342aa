import test from "ava";
import { join } from "node:path";
import { startCommandMember, type CommandApplier, type CommandMember } from "../../actors/groupcomm/commandMember.ts";
import { startCommandMulticaster, type CommandMulticaster, type MemberOutcome } from "../../actors/groupcomm/commandMulticast.ts";
import { createRejectionCounter } from "../../actors/codec/rejectionCounter.ts";
import { clusterSubjects } from "../../actors/subjects.ts";
import { startNatsServer, type NatsServer } from "../../runtime/natsServer.ts";
import { describeOutcomes } from "./groupcommSimHarness.ts";
import { connectRealNode, streamErrors, tempDirectory, until, type RealNode } from "./realNodes.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const memberConfig = { ackWaitMs: 500, maxDeliver: 10, maxAckPending: 16 };

let server: NatsServer;
let data: ReturnType<typeof tempDirectory>;
const nodes: RealNode[] = [];
const actors: { stop(): void }[] = [];
let sender: RealNode;
let multicaster: CommandMulticaster;
const applications: string[] = [];

test.before(async () => {
  server = await startNatsServer();
  data = tempDirectory("haring-groupcomm-");
  sender = await connectRealNode("mgr", server.url, join(data.path, "mgr"));
  nodes.push(sender);
  multicaster = startCommandMulticaster(sender.ports);
});

test.after.always(async () => {
  multicaster?.dispose();
  for (const actor of actors) actor.stop();
  for (const node of nodes) await node.close().catch(() => undefined);
  await server?.stop();
  data?.remove();
});

const echoApplier =
  (memberId: string): CommandApplier =>
  (command, done) => {
    applications.push(`${memberId} ${command.commandId}`);
    const payload = decoder.decode(command.payload);
    if (command.kind === "test.fail") done({ ok: false, error: `refused ${payload}` });
    else done({ ok: true, result: encoder.encode(`${memberId}:${payload}`) });
  };

async function startMember(memberId: string, applier: CommandApplier = echoApplier(memberId)): Promise<{ node: RealNode; member: CommandMember }> {
  const node = await connectRealNode(memberId, server.url, join(data.path, memberId));
  nodes.push(node);
  const member = startCommandMember(node.ports, applier, memberConfig);
  actors.push(member);
  await until(() => member.status === "consuming", `${memberId} consuming`);
  return { node, member };
}

function send(members: readonly string[], commandId: string, kind = "test.do", timeoutMs = 5_000): Promise<readonly MemberOutcome[]> {
  return new Promise((resolve) => multicaster.send(members, { commandId, kind, payload: encoder.encode(commandId) }, { timeoutMs }, resolve));
}

test.serial("over real JetStream: per-member outcomes, applied, failed, and timed out for a member that is gone", async (t) => {
  const members = await Promise.all(["m1", "m2", "m3"].map((id) => startMember(id)));
  t.deepEqual(describeOutcomes(await send(["m1", "m2", "m3"], "c1")), ["m1 applied m1:c1", "m2 applied m2:c1", "m3 applied m3:c1"]);
  t.deepEqual(describeOutcomes(await send(["m1", "m2"], "c2", "test.fail")), ["m1 failed refused c2", "m2 failed refused c2"]);
  members[2]!.member.stop();
  await members[2]!.node.close();
  const started = performance.now();
  const outcomes = await send(["m1", "m2", "m3"], "c3", "test.do", 1_000);
  t.true(performance.now() - started >= 1_000);
  t.deepEqual(describeOutcomes(outcomes), ["m1 applied m1:c3", "m2 applied m2:c3", "m3 timed-out"]);
  t.deepEqual(applications.filter((line) => line.endsWith(" c1")).sort(), ["m1 c1", "m2 c1", "m3 c1"]);
});

test.serial("over real JetStream: a member that dies after applying, before acking, answers from its ledger after restart and applies once", async (t) => {
  let incarnation = 1;
  const firstIncarnation: { current?: { node: RealNode; member: CommandMember } } = {};
  const crashingApplier: CommandApplier = (command, done) => {
    applications.push(`m4 ${command.commandId}`);
    done({ ok: true, result: encoder.encode(`m4:${decoder.decode(command.payload)}`) });
    if (incarnation === 1) {
      // The done record is being synced; the member dies before it can ack or publish the result.
      firstIncarnation.current!.member.stop();
      void firstIncarnation.current!.node.close();
    }
  };
  firstIncarnation.current = await startMember("m4", crashingApplier);
  const pending = send(["m4"], "c4", "test.do", 8_000);
  await until(() => applications.includes("m4 c4"), "m4 applied c4");
  await new Promise((resolve) => setTimeout(resolve, 300));
  incarnation = 2;
  await startMember("m4", crashingApplier);
  const outcomes = await pending;
  t.deepEqual(describeOutcomes(outcomes), ["m4 applied m4:c4"]);
  t.is(applications.filter((line) => line === "m4 c4").length, 1);
  // And a later resend of the same command is answered from the ledger too.
  t.deepEqual(describeOutcomes(await send(["m4"], "c4")), ["m4 applied m4:c4"]);
  t.is(applications.filter((line) => line === "m4 c4").length, 1);
});

test.serial("over real JetStream: garbage on a member's subject is counted and terminated", async (t) => {
  const node = await connectRealNode("m5", server.url, join(data.path, "m5"));
  nodes.push(node);
  const rejections = createRejectionCounter(node.ports);
  const member = startCommandMember(node.ports, echoApplier("m5"), { ...memberConfig, rejections });
  actors.push(member);
  await until(() => member.status === "consuming", "m5 consuming");
  await new Promise<void>((resolve) => sender.stream.publish(clusterSubjects("gc").command("m5"), encoder.encode("junk"), {}, () => resolve()));
  await until(() => rejections.rejectedTotal === 1, "the rejection counted");
  t.deepEqual(describeOutcomes(await send(["m5"], "c5")), ["m5 applied m5:c5"]);
  t.deepEqual(streamErrors, []);
});

/**
 * Real processes over a real nats-server: a view of 6,000 VMs (more than
 * 1 MiB, even as msgpack), a controller killed before the load and restarted
 * after it (over 1,024 slots behind, so only a snapshot can catch it up), a
 * learner that joins after the load, the same controller losing its disk
 * (it rejoins, catches up again and is then needed for a majority), and the
 * KV mirror of the view, which must be read back identical from its parts.
 */
import test from "ava";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defaultViewKvMirrorOptions } from "../../actors/view/viewKvMirror.ts";
import { readMirroredValue, type MirrorReadResult } from "../../actors/view/viewKvLayout.ts";
import { createPaxosConfig } from "../../machines/paxos/config.ts";
import { largeViewVm, largeViewVmCount } from "../paxos/largeViewFixture.ts";
import { canonicalViewJson } from "../../machines/view/viewSnapshot.ts";
import { startLocalControllers, type LocalControllers } from "../../runtime/controller/localControllers.ts";
import { connectViewClient, type ViewClient } from "../../runtime/controller/viewClient.ts";
import { NatsStream } from "../../runtime/natsStream.ts";
import { startNatsServer, type NatsServer } from "../../runtime/natsServer.ts";
import { waitForLeaderAndEveryVote } from "./realControllerTestKit.ts";

const controllerIds = ["c1", "c2", "c3"];
const vmCount = largeViewVmCount;
const inFlight = 128;
/**
 * Four commands per slot: 6,000 commands take 1,500 slots, more than the 1,024 a peer retains. Peers serve
 * their newest snapshot, so snapshots are frequent here: the one served holds nearly all 6,000 VMs, more
 * than one message carries. (Controller processes retain 2,048 slots by default; this test keeps 1,024.)
 */
const timing = { maxCommandsPerBatch: 4, snapshotEverySlots: 128, maxRetainedSlots: 1_024 };

const resources: { nats?: NatsServer; cluster?: LocalControllers; clients: ViewClient[]; baseDir?: string } = { clients: [] };

test.after.always(async () => {
  for (const client of resources.clients) await client.close().catch(() => undefined);
  await resources.cluster?.stopAll();
  await resources.nats?.stop();
  if (resources.baseDir) rmSync(resources.baseDir, { recursive: true, force: true });
});


test("a controller and a learner more than 1,024 slots behind a 6,000-VM view catch up over real NATS, also from an empty disk; the KV mirror reads back identical", async (t) => {
  const nats = (resources.nats = await startNatsServer());
  const baseDir = (resources.baseDir = mkdtempSync(join(tmpdir(), "haring-paxos-large-")));
  // Paxos alone: with the HA manager its F enters the view, and admission control then refuses these running VMs (no hosts).
  const cluster = (resources.cluster = startLocalControllers({ clusterId: "large", controllerIds, natsUrls: [nats.url], baseDir, timing, statusIntervalMs: 50, manager: false }));
  await waitForLeaderAndEveryVote(cluster, controllerIds);
  const paxos = createPaxosConfig(controllerIds, timing);
  const connect = async (nodeId: string) => {
    const client = await connectViewClient({ clusterId: "large", nodeId, natsUrls: [nats.url], paxos, clientLimits: { maxOutstandingProposals: 1_024, retryAfterMs: 200, maxRetryDelayMs: 1_000, maxProposeAttempts: 40 } });
    resources.clients.push(client);
    return client;
  };
  const writer = await connect("loader");
  const laggard = cluster.members.find((member) => member !== cluster.leader())!;
  await laggard.kill("SIGKILL");

  let next = 0;
  const failures: string[] = [];
  const worker = async () => {
    while (next < vmCount) {
      const command = largeViewVm(next++);
      const outcome = await writer.propose(command);
      if (outcome.kind !== "committed") failures.push(`${command.id}: ${outcome.kind}`);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  t.deepEqual(failures.slice(0, 5), []);
  const target = writer.appliedSlots();
  t.true(target > 1_024 + 200, `${target} slots went by while ${laggard.id} was down`);
  t.true(canonicalViewJson(writer.view()).length > 1_048_576, "the view's JSON is over 1 MiB");

  laggard.start();
  const latecomer = await connect("latecomer");
  await cluster.waitFor(
    `${laggard.id} to catch up to slot ${target}`,
    (statuses) => controllerIds.every((id) => (statuses.get(id)?.appliedSlots ?? -1) >= target && statuses.get(id)?.pid === cluster.member(id).pid),
    60_000,
  );
  const deadline = performance.now() + 30_000;
  while (latecomer.appliedSlots() < target && performance.now() < deadline) await new Promise((done) => setTimeout(done, 50));
  t.true(latecomer.appliedSlots() >= target, `the latecomer applied ${latecomer.appliedSlots()} of ${target} slots`);
  t.is(canonicalViewJson(latecomer.view()), canonicalViewJson(writer.view()));

  // The laggard loses its disk: it restarts empty, rejoins (quarantine, fence) and catches up again by a
  // chunked snapshot; then, with another follower down, commits need its vote.
  await laggard.kill("SIGKILL");
  laggard.wipeData();
  laggard.start();
  await cluster.waitFor(
    `${laggard.id} to rejoin from an empty disk and catch up`,
    (statuses) => (statuses.get(laggard.id)?.appliedSlots ?? -1) >= target && statuses.get(laggard.id)?.pid === laggard.pid && laggard.outputTail().includes('"paxos.rejoined"'),
    60_000,
  );
  const other = cluster.members.find((member) => member !== laggard && member !== cluster.leader())!;
  await other.kill("SIGKILL");
  for (let index = vmCount; index < vmCount + 20; index++) {
    const outcome = await writer.propose(largeViewVm(index));
    t.is(outcome.kind, "committed", `with ${other.id} down, ${largeViewVm(index).id} commits through the rejoined ${laggard.id}`);
  }
  other.start();
  const finalTarget = writer.appliedSlots();
  await cluster.waitFor(`all at slot ${finalTarget}`, (statuses) => controllerIds.every((id) => (statuses.get(id)?.appliedSlots ?? -1) >= finalTarget && statuses.get(id)?.pid === cluster.member(id).pid), 60_000);

  // The leader mirrors the final view in parts; read it back until it reaches the final slot.
  const stream = new NatsStream(writer.runtime.network.connection, { onError: () => undefined });
  let mirrored: MirrorReadResult | undefined;
  const mirrorDeadline = performance.now() + 30_000;
  while (performance.now() < mirrorDeadline) {
    mirrored = await new Promise<MirrorReadResult>((done) => readMirroredValue(stream, defaultViewKvMirrorOptions.bucket, "large", done));
    if (mirrored.ok && mirrored.slot >= finalTarget) break;
    await new Promise((done) => setTimeout(done, 200));
  }
  await cluster.stopAll();
  t.deepEqual(cluster.members.map((member) => member.exitCode), [0, 0, 0], "clean stops");
  const finals = cluster.members.map((member) => member.finalView()!);
  t.is(new Set(finals.map((final) => JSON.stringify(final.view))).size, 1, "identical views");
  t.is(finals[0]!.text.slice(finals[0]!.text.indexOf('"view":') + 7, -1), canonicalViewJson(writer.view()));
  t.true(mirrored?.ok === true && mirrored.value !== undefined, `the mirror was read: ${mirrored && !mirrored.ok ? mirrored.error : "empty"}`);
  if (mirrored?.ok && mirrored.value) {
    const text = new TextDecoder().decode(mirrored.value);
    t.true(text.length > 1_048_576);
    t.is(text.slice(text.indexOf('"view":') + 7, -1), canonicalViewJson(writer.view()), "the mirror holds the final view");
  }
});

import test from "ava";
import { join } from "node:path";
import { dataBucketName, dataKvHistory, startDataMulticast, type DataMulticast, type DataReadOutcome, type DataRestoreOutcome, type DataWriteOutcome } from "../../actors/groupcomm/dataMulticast.ts";
import { maxDataValueBytes } from "../../actors/groupcomm/dataMessages.ts";
import { startNatsCluster, type NatsCluster, type NatsServer } from "../../runtime/natsServer.ts";
import { connectRealNode, tempDirectory, type RealNode } from "./realNodes.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const nodeIds = ["h1", "h2", "h3", "h4"];

let cluster: NatsCluster;
let data: ReturnType<typeof tempDirectory>;
const nodes = new Map<string, RealNode>();
const replicators = new Map<string, DataMulticast>();

/** Leaders of the KV stream and of the JetStream meta group: losing either stalls JetStream for an election. */
async function leaders(): Promise<{ kv: string | undefined; meta: string | undefined }> {
  for (const server of cluster.servers) {
    if (!server.running) continue;
    const info = (await (await fetch(`${server.monitorUrl}/jsz?streams=true`)).json()) as {
      meta_cluster?: { leader?: string };
      account_details?: { stream_detail?: { name: string; cluster?: { leader?: string } }[] }[];
    };
    const detail = info.account_details?.flatMap((account) => account.stream_detail ?? []).find((entry) => entry.name === `KV_${dataBucketName("gc")}`);
    if (detail?.cluster?.leader) return { kv: detail.cluster.leader, meta: info.meta_cluster?.leader };
  }
  return { kv: undefined, meta: undefined };
}

/** The server to lose first (leads nothing), and the server every node is connected to (not the first victim). */
let victim: NatsServer;
let home: NatsServer;

test.before(async () => {
  cluster = await startNatsCluster();
  data = tempDirectory("haring-data-");
  // Create the bucket first (as the nodes would), to see where its leader is.
  const bootstrap = await connectRealNode("boot", cluster.urls, join(data.path, "boot"));
  const created = await new Promise<{ ok: boolean }>((resolve) =>
    bootstrap.stream.ensureKv({ bucket: dataBucketName("gc"), replicas: 3, history: dataKvHistory, maxValueBytes: maxDataValueBytes }, resolve),
  );
  await bootstrap.close();
  if (!created.ok) throw new Error("could not create the R=3 bucket");
  const { kv, meta } = await leaders();
  victim = cluster.servers.find((server) => server.name !== kv && server.name !== meta)!;
  home = cluster.servers.find((server) => server !== victim)!;
  for (const nodeId of nodeIds) {
    const node = await connectRealNode(nodeId, home.url, join(data.path, nodeId));
    nodes.set(nodeId, node);
    const replicator = startDataMulticast(node.ports, {
      kvReplicas: 3,
      backupCount: 2,
      requestTimeoutMs: 1_000,
      writeAttempts: 12,
      writeRetryBaseMs: 250,
      writeRetryMaxMs: 1_000,
      restoreKvAttempts: 1, // the no-quorum test waits out one KV timeout, not two
    });
    replicator.setLiveNodes(nodeIds);
    replicators.set(nodeId, replicator);
  }
});

test.after.always(async () => {
  for (const replicator of replicators.values()) replicator.stop();
  for (const node of nodes.values()) await node.close().catch(() => undefined);
  await cluster?.stop();
  data?.remove();
});

const call = <T>(start: (done: (outcome: T) => void) => void) => new Promise<T>((resolve) => start(resolve));
const write = (nodeId: string, key: string, value: string, expectedVersion: number) =>
  call<DataWriteOutcome>((done) => replicators.get(nodeId)!.write(key, encoder.encode(value), expectedVersion, done));
const read = (nodeId: string, ownerId: string, key: string) => call<DataReadOutcome>((done) => replicators.get(nodeId)!.read(ownerId, key, done));
const restore = (nodeId: string, ownerId: string) => call<DataRestoreOutcome>((done) => replicators.get(nodeId)!.restore(ownerId, done));

/**
 * The lost server leads neither the KV stream nor the meta group and no node
 * is connected to it: losing a leader stalls JetStream for an election
 * (about 7 s measured here, see docs/group-communication.md), too slow for
 * this file; the writer's bounded retries cover that window.
 */
test.serial("R=3 KV: the data survives losing a server, writes continue, stale writes are still refused", async (t) => {
  const first = await write("h1", "vm-1", "v1", 0);
  t.true(first.ok, first.ok ? "" : first.error);
  if (!first.ok) return;
  t.is(first.backedUpBy.length, 2);
  await victim.kill();

  const second = await write("h1", "vm-1", "v2", first.version);
  t.true(second.ok, second.ok ? "" : second.error);
  if (!second.ok) return;
  const fromOther = await read("h2", "h1", "vm-1");
  t.true(fromOther.ok && fromOther.entry !== undefined && decoder.decode(fromOther.entry.value) === "v2" && fromOther.entry.version === second.version);
  t.true((await write("h2", "vm-9", "other", 0)).ok);
  const stale = await write("h1", "vm-1", "late", first.version);
  t.false(stale.ok);
  if (!stale.ok) t.is(stale.currentVersion, second.version);
});

test.serial("with the KV out of quorum (two of three servers down) a failed node's data comes back from its backup peers", async (t) => {
  // On a loaded machine a KV listing may time out (and the restore then uses the backups): three in a row did
  // in one CI run, right after the previous test lost a server. Ask again until the KV answers, within a bound.
  const kvAnswersWithinMs = 20_000;
  const askUntil = performance.now() + kvAnswersWithinMs;
  let before = await restore("h3", "h1");
  while (!(before.ok && before.source === "kv") && performance.now() < askUntil) {
    await new Promise((settle) => setTimeout(settle, 250));
    before = await restore("h3", "h1");
  }
  t.true(before.ok && before.source === "kv" && before.entries.length === 1, JSON.stringify(before));
  const second = cluster.servers.find((server) => server.running && server !== home)!;
  await second.kill();
  t.is(cluster.servers.filter((server) => server.running).length, 1);
  replicators.get("h1")!.stop();
  for (const nodeId of ["h2", "h3", "h4"]) replicators.get(nodeId)!.setLiveNodes(["h2", "h3", "h4"]);
  const restored = await restore("h3", "h1");
  t.true(restored.ok, restored.ok ? "" : restored.error);
  if (!restored.ok) return;
  t.is(restored.source, "backups");
  t.deepEqual(
    restored.entries.map((entry) => `${entry.key}=${decoder.decode(entry.value)}`),
    ["vm-1=v2"],
  );
});

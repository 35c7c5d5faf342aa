import test from "ava";
import { NatsNetwork } from "../../runtime/natsNetwork.ts";
import { NatsStream } from "../../runtime/natsStream.ts";
import { startNatsCluster, type NatsCluster } from "../../runtime/natsServer.ts";
import type { StreamFailure } from "../../actors/ports/stream.ts";

let cluster: NatsCluster | undefined;
let network: NatsNetwork | undefined;
let stream: NatsStream | undefined;

test.after.always(async () => {
  await stream?.close();
  await network?.close();
  await cluster?.stop();
});

function call<T>(start: (done: (outcome: T) => void) => void): Promise<T> {
  return new Promise((resolve) => start(resolve));
}

test("a 3-server cluster takes R=3 streams and KV buckets", async (t) => {
  cluster = await startNatsCluster();
  t.is(cluster.servers.length, 3);
  t.is(new Set(cluster.servers.flatMap((server) => [server.port, server.httpPort, server.clusterPort])).size, 9);

  network = await NatsNetwork.connect({ servers: cluster.urls, name: "cluster-test" });
  stream = new NatsStream(network.connection, { onError: () => undefined });
  const target = stream;
  const ensured = await call<{ ok: true } | StreamFailure>((done) =>
    target.ensureStream({ name: "REPL", subjects: ["repl.>"], duplicateWindowMs: 60_000, replicas: 3, maxMessages: 100, maxBytes: 1 << 20 }, done),
  );
  t.deepEqual(ensured, { ok: true });
  const published = await call((done: Parameters<NatsStream["publish"]>[3]) => target.publish("repl.a", new TextEncoder().encode("x"), { msgId: "r-1" }, done));
  t.deepEqual(published, { ok: true, stream: "REPL", sequence: 1, duplicate: false });

  const info = (await (await fetch(`${cluster.servers[0]!.monitorUrl}/jsz?streams=true`)).json()) as {
    account_details?: { stream_detail?: { name: string; cluster?: { replicas?: unknown[] } }[] }[];
  };
  const detail = info.account_details?.flatMap((account) => account.stream_detail ?? []).find((entry) => entry.name === "REPL");
  t.is(detail?.cluster?.replicas?.length, 2, "a leader plus two replicas");

  const kv = await call<{ ok: true } | StreamFailure>((done) => target.ensureKv({ bucket: "replview", replicas: 3, history: 1, maxValueBytes: 1024 }, done));
  t.deepEqual(kv, { ok: true });
  const created = await call<{ ok: true; value: number } | StreamFailure>((done) => target.kvUpdate("replview", "epoch", new Uint8Array([1]), 0, done));
  t.deepEqual(created, { ok: true, value: 1 });
});

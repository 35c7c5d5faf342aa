import test from "ava";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createPaxosConfig } from "../../machines/paxos/config.ts";
import { connectViewClient, type ViewClient } from "../../runtime/controller/viewClient.ts";
import { localControllerIds, startLocalCluster, type LocalCluster } from "../../runtime/node/localCluster.ts";
import type { HostStatus } from "../../runtime/node/hostNode.ts";

const directory = mkdtempSync(join(tmpdir(), "haring-up-test-"));
let cluster: LocalCluster | undefined;
let viewClient: ViewClient | undefined;

test.after.always(async () => {
  await viewClient?.close().catch(() => undefined);
  await cluster?.stop();
  rmSync(directory, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (condition()) return true;
    await sleep(50);
  }
  return condition();
}

test("haring up's cluster: nats-server, three controllers and a host as processes; the host comes up in the view, runs its VMs, and everything stops in order", async (t) => {
  cluster = await startLocalCluster({ directory, clusterId: "uptest", hosts: 1, vmsPerHost: 2 });
  await cluster.ready;
  viewClient = await connectViewClient({ clusterId: "uptest", nodeId: "up-test", natsUrls: [cluster.natsUrl], paxos: createPaxosConfig([...localControllerIds]) });
  t.true(await waitFor(() => viewClient!.view().hosts.get("h1")?.state === "up", 20_000), "h1 registered itself and is up in the view");
  const host = cluster.hosts[0]!;
  t.true(
    await waitFor(() => {
      const vms = host.status<HostStatus>()?.vms;
      return vms?.["h1-vm1"] === "running" && vms["h1-vm2"] === "running";
    }, 5_000),
    "its two sim VMs run once it holds a lease",
  );
  t.true(existsSync(join(directory, "h1.log")), "node logs go to files");
  await viewClient.close();
  viewClient = undefined;

  await cluster.stop();
  t.true(host.logs.some((line) => line.event === "host.stopping-vms" && line.vms === 2), "the host fenced itself on stop");
  t.is(await host.exited, 0);
  for (const controller of cluster.controllers) t.is(await controller.exited, 0);
  const finalView = JSON.parse(readFileSync(join(directory, "c1", "view.json"), "utf8")) as { view: { hosts: Record<string, { state: string }> } };
  t.truthy(finalView.view.hosts.h1, "the final view written on stop holds the host");
});

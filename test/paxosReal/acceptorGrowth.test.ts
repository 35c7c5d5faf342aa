/**
 * Adding two controllers to a running three-controller cluster, over a real
 * nats-server and real controller processes (docs/paxos.md, "Adding
 * controllers"): each old controller in turn is stopped, its log grown with
 * `haring acceptors grow`, its config given the five ids, and started again;
 * then the two new ones start on empty directories and rejoin. The proof that
 * they hold the cluster's state: with two of the old controllers killed, the
 * remaining one and the two new ones elect a leader and commit, and every
 * command committed before is in their view.
 */
import test from "ava";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createPaxosConfig } from "../../machines/paxos/config.ts";
import type { ControllerStatusFile } from "../../runtime/controller/main.ts";
import { LocalController } from "../../runtime/controller/localControllers.ts";
import { connectViewClient, type ViewClient } from "../../runtime/controller/viewClient.ts";
import { growAcceptorSet } from "../../runtime/node/acceptorSetStep.ts";
import { waitFor } from "../node/nodeProcessHarness.ts";
import { addSmallVm, logEvents, releaseRealCluster, startRealClusterWithClient, type RealClusterResources } from "./realControllerTestKit.ts";

const oldIds = ["c1", "c2", "c3"];
const newIds = [...oldIds, "c4", "c5"];
const resources: RealClusterResources = {};
const added: LocalController[] = [];
let grownClient: ViewClient | undefined;

test.after.always(async () => {
  await grownClient?.close().catch(() => undefined);
  await Promise.all(added.map((controller) => controller.stop()));
  await releaseRealCluster(resources);
});

test("two controllers added to a running cluster, one old controller at a time: the new ones rejoin, vote, and carry the cluster with one old controller", async (t) => {
  const { cluster, client } = await startRealClusterWithClient(resources, { clusterId: "grow", dirPrefix: "haring-acceptor-growth-", controllerIds: oldIds, maxProposeAttempts: 120, spec: { detector: false } });
  const before = Array.from({ length: 5 }, (_, index) => `before-${index}`);
  for (const id of before) t.is((await client.propose(addSmallVm(id))).kind, "committed");

  // Rolling: each old controller is stopped, grown, reconfigured and started; the others keep the cluster going.
  for (const member of cluster.members) {
    await member.stop();
    const grown = await growAcceptorSet(member.dataDir, newIds);
    t.deepEqual(grown.from, oldIds);
    writeFileSync(member.configPath, JSON.stringify({ ...JSON.parse(readFileSync(member.configPath, "utf8")), controllerIds: newIds }));
    member.start();
    t.true(await waitFor(() => member.status()?.acceptorMode === "voting", 30_000), `${member.id} voting again`);
  }
  // The new ones: empty directories, the same config but their own id (bootstrap left on, as operators do: the gate says the cluster exists).
  const template = JSON.parse(readFileSync(cluster.members[0]!.configPath, "utf8")) as Record<string, unknown>;
  for (const id of ["c4", "c5"]) {
    const directory = join(resources.baseDir!, id);
    mkdirSync(directory, { recursive: true });
    const configPath = join(directory, "controller.json");
    const dataDir = join(directory, "data");
    writeFileSync(configPath, JSON.stringify({ ...template, nodeId: id, dataDir, bootstrap: true }));
    const controller = new LocalController(id, configPath, dataDir);
    added.push(controller);
    controller.start();
    t.true(await waitFor(() => controller.status()?.acceptorMode === "voting", 30_000), `${id} to rejoin`);
    t.is(logEvents(controller.outputTail(), "paxos.rejoined").length, 1, controller.outputTail());
    // The next one starts only once this one holds the whole view (docs/paxos.md, "Adding controllers").
    t.true(await waitFor(() => logEvents(controller.outputTail(), "paxos.caught-up").length === 1, 30_000), controller.outputTail());
  }
  const all = [...cluster.members, ...added];
  const statuses = () => all.map((controller) => (controller.running ? controller.status() : undefined)).filter((status): status is ControllerStatusFile => status !== undefined);

  // Clients and hosts take the five ids too (a learner drops commit broadcasts from controllers it does not know).
  grownClient = await connectViewClient({ clusterId: "grow", nodeId: "grown-client", natsUrls: [resources.nats!.url], paxos: createPaxosConfig(newIds), clientLimits: { retryAfterMs: 100, maxRetryDelayMs: 400, maxProposeAttempts: 120 } });
  t.is((await grownClient.propose(addSmallVm("after-growth"))).kind, "committed");
  t.true(await waitFor(() => grownClient!.view().controllerIds.join(",") === newIds.join(","), 30_000), "the view to name the five controllers");

  // Two of the old three gone: c3, c4 and c5 are a majority of five only if c4 and c5 really vote.
  await cluster.member("c1").kill("SIGKILL");
  await cluster.member("c2").kill("SIGKILL");
  t.is((await grownClient.propose(addSmallVm("without-c1-c2"))).kind, "committed");
  t.true(await waitFor(() => statuses().some((status) => status.role === "leader" && status.holdsLease), 30_000), "a leader among c3, c4, c5");
  const view = grownClient.view();
  for (const id of [...before, "after-growth", "without-c1-c2"]) t.true(view.vms.has(id), `${id} is in the view`);
  const survivors = all.filter((controller) => controller.running);
  t.true(await waitFor(() => survivors.every((controller) => (controller.status()?.appliedSlots ?? 0) >= grownClient!.appliedSlots()), 30_000), "every survivor to apply it all");
});

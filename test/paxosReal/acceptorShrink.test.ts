/**
 * Replacing a controller by one with another id, over a real nats-server and
 * real controller processes (docs/paxos.md, "Removing controllers"): while c3
 * still runs with the old set, c1 and c2 in turn are stopped, their logs
 * shrunk to {c1, c2} with `haring acceptors shrink`, their configs changed,
 * and started again, a command committing after each step; then c3 is
 * stopped for good, and the set grows to {c1, c2, c4} the same way and c4
 * rejoins on an empty directory. The proof that the new set holds the
 * cluster's state: with c1 killed too, c2 and c4 elect a leader and commit,
 * and every command committed before, during and after the change is in
 * their view.
 */
import test from "ava";
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createPaxosConfig } from "../../machines/paxos/config.ts";
import type { ControllerStatusFile } from "../../runtime/controller/main.ts";
import { LocalController } from "../../runtime/controller/localControllers.ts";
import { connectViewClient, type ViewClient } from "../../runtime/controller/viewClient.ts";
import { growAcceptorSet, shrinkAcceptorSet } from "../../runtime/node/acceptorSetStep.ts";
import { waitFor } from "../node/nodeProcessHarness.ts";
import { addSmallVm, logEvents, releaseRealCluster, startRealClusterWithClient, type RealClusterResources } from "./realControllerTestKit.ts";

const resources: RealClusterResources = {};
const added: LocalController[] = [];
const clients: ViewClient[] = [];

test.after.always(async () => {
  await Promise.all(clients.map((client) => client.close().catch(() => undefined)));
  await Promise.all(added.map((controller) => controller.stop()));
  await releaseRealCluster(resources);
});

test("a controller replaced by a new id: the set shrinks to two, one at a time while the removed one still runs, then grows by the new one, which carries the cluster with one of them", async (t) => {
  const { cluster, client } = await startRealClusterWithClient(resources, { clusterId: "shrink", dirPrefix: "haring-acceptor-shrink-", controllerIds: ["c1", "c2", "c3"], maxProposeAttempts: 120, spec: { detector: false } });
  const committed: string[] = [];
  const commit = async (viewClient: ViewClient, id: string) => {
    t.is((await viewClient.propose(addSmallVm(id))).kind, "committed", id);
    committed.push(id);
  };
  for (let index = 0; index < 5; index++) await commit(client, `before-${index}`);

  const c3 = cluster.member("c3");
  const restep = async (member: LocalController, to: readonly string[], step: typeof shrinkAcceptorSet) => {
    await member.stop();
    const done = await step(member.dataDir, to);
    t.deepEqual(done.to, to);
    writeFileSync(member.configPath, JSON.stringify({ ...JSON.parse(readFileSync(member.configPath, "utf8")), controllerIds: to }));
    member.start();
    t.true(await waitFor(() => member.status()?.acceptorMode === "voting", 30_000), `${member.id} voting again with ${to.join(", ")}`);
  };
  const survivors = [cluster.member("c1"), cluster.member("c2")];
  for (const member of survivors) {
    await restep(member, ["c1", "c2"], shrinkAcceptorSet);
    // Mixed sets: c3 still counts majorities of three, the stepped ones of two, and every majority meets.
    await commit(client, `after-${member.id}-stepped`);
  }
  // c3 runs on outside their set: both name it in their status and their log, the check the procedure ends with.
  const namingC3 = () => survivors.every((member) => member.status()?.outsideControllers.join(",") === "c3");
  t.true(await waitFor(namingC3, 30_000), "c1 and c2 to name c3 as a controller outside their set that still runs");
  for (const member of survivors) {
    t.true(logEvents(member.outputTail(), "paxos.outside-controller-running").some((event) => event.controller === "c3"), member.outputTail());
  }
  // Then c3 is stopped for good, its directory moved aside as the procedure says (kept for forensics, never started again).
  await c3.stop();
  renameSync(c3.dataDir, `${c3.dataDir}.removed`);
  t.true(await waitFor(() => survivors.every((member) => member.status()?.outsideControllers.length === 0), 30_000), "c1 and c2 to list nobody outside once c3 stopped");
  await commit(client, "without-c3");
  const twoClient = await connectViewClient({ clusterId: "shrink", nodeId: "two-client", natsUrls: [resources.nats!.url], paxos: createPaxosConfig(["c1", "c2"]), clientLimits: { retryAfterMs: 100, maxRetryDelayMs: 400, maxProposeAttempts: 120 } });
  clients.push(twoClient);
  await commit(twoClient, "after-shrink");
  t.true(await waitFor(() => twoClient.view().controllerIds.join(",") === "c1,c2", 30_000), "the view to name c1 and c2");

  // The new machine, c4: the two grow their logs, then it rejoins from both.
  const three = ["c1", "c2", "c4"];
  for (const member of survivors) await restep(member, three, growAcceptorSet);
  const template = JSON.parse(readFileSync(survivors[0]!.configPath, "utf8")) as Record<string, unknown>;
  const directory = join(resources.baseDir!, "c4");
  mkdirSync(directory, { recursive: true });
  const configPath = join(directory, "controller.json");
  const dataDir = join(directory, "data");
  writeFileSync(configPath, JSON.stringify({ ...template, nodeId: "c4", dataDir, bootstrap: true }));
  const c4 = new LocalController("c4", configPath, dataDir);
  added.push(c4);
  c4.start();
  t.true(await waitFor(() => c4.status()?.acceptorMode === "voting", 30_000), "c4 to rejoin");
  t.is(logEvents(c4.outputTail(), "paxos.rejoined").length, 1, c4.outputTail());
  // Its own view covers the floor its fences gave it: the operator's signal that it counts as a controller with state.
  t.true(await waitFor(() => logEvents(c4.outputTail(), "paxos.caught-up").length === 1, 30_000), c4.outputTail());

  const threeClient = await connectViewClient({ clusterId: "shrink", nodeId: "three-client", natsUrls: [resources.nats!.url], paxos: createPaxosConfig(three), clientLimits: { retryAfterMs: 100, maxRetryDelayMs: 400, maxProposeAttempts: 120 } });
  clients.push(threeClient);
  await commit(threeClient, "after-growth");
  t.true(await waitFor(() => threeClient.view().controllerIds.join(",") === three.join(","), 30_000), "the view to name c1, c2 and c4");

  // c2 and c4 are a majority of the new set only if c4 really holds the state.
  await cluster.member("c1").kill("SIGKILL");
  await commit(threeClient, "without-c1");
  const alive = [cluster.member("c2"), c4];
  const statuses = () => alive.map((controller) => controller.status()).filter((status): status is ControllerStatusFile => status !== undefined);
  t.true(await waitFor(() => statuses().some((status) => status.role === "leader" && status.holdsLease), 30_000), "a leader among c2 and c4");
  const view = threeClient.view();
  for (const id of committed) t.true(view.vms.has(id), `${id} is in the view`);
  t.true(await waitFor(() => alive.every((controller) => (controller.status()?.appliedSlots ?? 0) >= threeClient.appliedSlots()), 30_000), "c2 and c4 to apply it all");
});

/**
 * Two of three controllers start without their Paxos state, over a real
 * nats-server and real controller processes: c3's disk is lost and c2 comes
 * up on an empty data directory (its disk not mounted). Neither can be
 * fenced, since each needs two voting others: Paxos rightly stops, and every
 * controller must say why (log line, status file) instead of only retrying.
 * Then the operator does what docs/paxos.md says for this case: c2 is started
 * again on its real data, votes at once, c3 rejoins, and the cluster commits.
 */
import test from "ava";
import { renameSync, rmSync } from "node:fs";
import { inspectDataDir } from "../../runtime/node/dataDirInspection.ts";
import type { ControllerStatusFile } from "../../runtime/controller/main.ts";
import { addSmallVm, logEvents, releaseRealCluster, startRealClusterWithClient, type RealClusterResources } from "./realControllerTestKit.ts";

const controllerIds = ["c1", "c2", "c3"];
const resources: RealClusterResources = {};

test.after.always(() => releaseRealCluster(resources));



test("two of three controllers without their state: all three report a majority without state; c2 back on its real disk clears it, c3 rejoins, commits resume", async (t) => {
  const { cluster, client } = await startRealClusterWithClient(resources, { clusterId: "mws", dirPrefix: "haring-majority-without-state-", controllerIds, maxProposeAttempts: 40, spec: { detector: false } });
  for (let index = 0; index < 3; index++) t.is((await client.propose(addSmallVm(`before-${index}`))).kind, "committed");
  await cluster.waitFor("every controller applied the three commands", (statuses) => controllerIds.every((id) => (statuses.get(id)?.appliedSlots ?? 0) >= 4), 30_000);

  const c1 = cluster.member("c1");
  const c2 = cluster.member("c2");
  const c3 = cluster.member("c3");
  await c2.kill("SIGKILL");
  await c3.kill("SIGKILL");
  const c2Disk = `${c2.dataDir}.unmounted`;
  renameSync(c2.dataDir, c2Disk);
  c3.wipeData();
  // Every controller's status, written by its current process (not one left by the process before a restart), says so.
  const everyCurrentStatus = (statuses: ReadonlyMap<string, ControllerStatusFile | undefined>, check: (status: ControllerStatusFile) => boolean) =>
    controllerIds.every((id) => {
      const status = statuses.get(id);
      return status !== undefined && status.pid === cluster.member(id).pid && check(status);
    });
  const marks = new Map(controllerIds.map((id) => [id, cluster.member(id).outputTail().length]));
  const since = (id: string) => cluster.member(id).outputTail().slice(marks.get(id));
  c2.start();
  c3.start();

  await cluster.waitFor(
    "every controller to report that c2 and c3 are rejoining, a majority without state",
    (statuses) => everyCurrentStatus(statuses, (status) => status.majorityWithoutState && status.rejoiningAcceptors.join(",") === "c2,c3"),
    30_000,
  );
  t.is(c1.status()?.acceptorMode, "voting");
  t.is(c2.status()?.acceptorMode, "rejoining");
  t.is(c3.status()?.acceptorMode, "rejoining");
  for (const id of controllerIds) {
    const reported = logEvents(since(id), "paxos.majority-without-state");
    t.is(reported.length, 1, `${id} says it once (the reminder is a minute apart)`);
    t.is(reported[0]?.rejoining, "c2,c3");
    t.is(reported[0]?.level, "error");
  }
  // A rejoiner also says who answered its fences: c1 does, c2 cannot (it is rejoining itself).
  await cluster.waitFor("c3 to say its rejoin is waiting", () => logEvents(since("c3"), "paxos.rejoin-waiting").length > 0, 30_000);
  const waiting = logEvents(since("c3"), "paxos.rejoin-waiting")[0];
  t.is(waiting?.answeredBy, "c1");
  t.is(waiting?.needed, 2);
  t.is(c1.status()?.role === "leader" && c1.status()?.holdsLease, false, "nobody leads: c1 alone is no majority");

  // The operator's fix for the common case: c2's real disk was only not mounted. `haring inspect` tells the two directories apart.
  const running = inspectDataDir(c2.dataDir);
  t.like(running.identity, { kind: "found", identity: { clusterId: "mws", nodeId: "c2", role: "controller" } });
  t.regex(running.findings.join("\n"), /c2 (never voted here|starts without Paxos state)/);
  const unmounted = inspectDataDir(c2Disk);
  t.like(unmounted.identity, { kind: "found", identity: { clusterId: "mws", nodeId: "c2", role: "controller" } });
  t.like(unmounted.paxos, { readable: true, writers: ["c2"], everVoted: true });
  t.false(unmounted.refused);
  t.regex(unmounted.findings.join("\n"), /c2 has its Paxos state here: it starts voting/);
  // Started on its real disk, c2 votes at once.
  await c2.kill("SIGKILL");
  rmSync(c2.dataDir, { recursive: true, force: true });
  renameSync(c2Disk, c2.dataDir);
  c2.start();
  await cluster.waitFor(
    "c2 voting on its real disk, c3 rejoined, and nobody reporting a majority without state",
    (statuses) => everyCurrentStatus(statuses, (status) => !status.majorityWithoutState && status.acceptorMode === "voting"),
    60_000,
  );
  t.is(logEvents(since("c1"), "paxos.majority-without-state-cleared").length, 1, "c1 says it cleared");
  t.is(logEvents(since("c3"), "paxos.rejoined").length, 1);
  t.is((await client.propose(addSmallVm("after"))).kind, "committed");
  await cluster.waitFor("c3 caught up past every command", (statuses) => (statuses.get("c3")?.appliedSlots ?? 0) >= 5, 30_000);
});

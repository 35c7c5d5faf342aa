/**
 * `bootstrap: true` left in every controller's config for good, over a real
 * nats-server and real controller processes: the first start creates the
 * cluster once (a majority hears "fresh" from the others; one started after
 * they elected a leader hears "exists" and rejoins); a controller whose
 * disk is lost and that starts again with the same config neither bootstraps
 * nor votes while nobody can tell it whether the cluster ran, then learns that
 * it did, rejoins (fencing first), catches up, and its vote is needed for a
 * commit.
 */
import test from "ava";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createPaxosConfig } from "../../machines/paxos/config.ts";
import { maxCapturedControllerOutputChars, startLocalControllers } from "../../runtime/controller/localControllers.ts";
import { connectViewClient } from "../../runtime/controller/viewClient.ts";
import { startNatsServer } from "../../runtime/natsServer.ts";
import { addSmallVm, logEvents, releaseRealCluster, waitForLeaderAndEveryVote, type RealClusterResources } from "./realControllerTestKit.ts";

const controllerIds = ["c1", "c2", "c3"];
const resources: RealClusterResources = {};

test.after.always(() => releaseRealCluster(resources));



test("bootstrap kept in the config: a new cluster is created once; a controller back on an empty disk rejoins instead", async (t) => {
  const nats = (resources.nats = await startNatsServer());
  const baseDir = (resources.baseDir = mkdtempSync(join(tmpdir(), "haring-bootstrap-gate-")));
  const cluster = (resources.cluster = startLocalControllers({ clusterId: "gate", controllerIds, natsUrls: [nats.url], baseDir, statusIntervalMs: 50, keepBootstrap: true, manager: false, detector: false }));
  await cluster.waitFor("a leader holding the lease", () => cluster.leader() !== undefined, 30_000);
  // Which controllers create the cluster depends on when each process got to its gate. Each needs `fresh` from
  // both others, and the others answer `fresh` until one of them has voted, promised another or led; a controller
  // that starts so much later that the first two have already elected a leader hears `exists` and rejoins,
  // fencing first (docs/paxos.md): safe, and what a loaded CI machine did once. What must hold: each decides once,
  // a majority creates the cluster (a lone bootstrapper cannot elect, so the others still hear `fresh` from it),
  // and one that rejoins was told so by a controller that created it. A controller that reached its gate late
  // decides only after its quarantine, possibly after the others elected a leader: wait for every decision.
  await cluster.waitFor("every controller to decide at its gate", () => controllerIds.every((id) => logEvents(cluster.member(id).outputTail(), "paxos.bootstrap-decided").length > 0), 30_000);
  const decisions = controllerIds.map((id) => {
    const decided = logEvents(cluster.member(id).outputTail(), "paxos.bootstrap-decided");
    t.is(decided.length, 1, `${id} decided once`);
    return { id, decided: decided[0] };
  });
  const bootstrapped = decisions.filter(({ decided }) => decided?.decision === "bootstrap").map(({ id }) => id);
  t.true(bootstrapped.length >= 2, `a majority created the cluster: ${bootstrapped.join(", ")}`);
  for (const { id, decided } of decisions) {
    if (decided?.decision === "bootstrap") continue;
    t.is(decided?.decision, "rejoin", `${id}: bootstrap or rejoin, nothing else`);
    t.true(bootstrapped.includes(String(decided?.clusterExistsAt)), `${id} rejoined a cluster one of ${bootstrapped.join(", ")} created`);
  }
  const client = (resources.client = await connectViewClient({
    clusterId: "gate",
    nodeId: "test-client",
    natsUrls: [nats.url],
    paxos: createPaxosConfig(controllerIds),
    clientLimits: { retryAfterMs: 100, maxRetryDelayMs: 400, maxProposeAttempts: 40 },
  }));
  for (let index = 0; index < 5; index++) t.is((await client.propose(addSmallVm(`before-${index}`))).kind, "committed");
  // The disk loss below must come after every earlier one has healed (docs/paxos.md: each rejoins before the next
  // loses its disk). One that took the rejoin path at the first start stays quarantined for rejoinQuarantineMs with
  // nothing on its disk; killed then, it comes back as a second empty disk beside c3's, and two of three is a lost
  // majority, which no Paxos survives: c1 alone cannot fence either (a loaded CI machine got there once).
  await waitForLeaderAndEveryVote(cluster, controllerIds);

  // c3's disk is lost while every other controller is down too: nobody can tell it whether the cluster ran.
  const lost = cluster.member("c3");
  await lost.kill("SIGKILL");
  await cluster.member("c1").kill("SIGKILL");
  await cluster.member("c2").kill("SIGKILL");
  lost.wipeData();
  // Its output tail still holds the first run; only what comes after this mark is the new process's.
  const mark = lost.outputTail().length;
  t.true(mark < maxCapturedControllerOutputChars, "the first run's output is still whole in the tail");
  const newRun = () => lost.outputTail().slice(mark);
  lost.start();
  // Past its quarantine (2 s) it asks every 500 ms and gets no answer.
  await new Promise((done) => setTimeout(done, 4_000));
  t.true(lost.running);
  t.is(logEvents(newRun(), "paxos.bootstrap-decided").length, 0, "it waits: no answers, no decision");
  t.is(logEvents(newRun(), "controller.started").length, 0, "and runs no acceptor meanwhile");
  t.is(lost.status(), undefined);

  // c1 comes back: it says the cluster exists, so c3 rejoins (fencing once a majority of the others answers).
  cluster.member("c1").start();
  await cluster.waitFor("c3 to hear that the cluster exists", () => logEvents(newRun(), "controller.bootstrap-refused").length === 1 && logEvents(newRun(), "paxos.recovered").length === 1, 30_000);
  const decided = logEvents(newRun(), "paxos.bootstrap-decided");
  t.is(decided[0]?.decision, "rejoin");
  t.is(decided[0]?.clusterExistsAt, "c1");
  t.deepEqual(
    logEvents(newRun(), "paxos.recovered").map((line) => line.mode),
    ["rejoining"],
    "started without bootstrapping: its acceptor is quarantined until fenced",
  );
  cluster.member("c2").start();
  // Caught up means the slots chosen before its disk was lost (6) too: c1, just restarted itself, may report fewer
  // applied slots than that until a leader's commit index reaches it, which a loaded CI machine showed once.
  await cluster.waitFor(
    "c3 to rejoin and catch up",
    (statuses) =>
      newRun().includes('"paxos.rejoined"') &&
      (statuses.get("c3")?.appliedSlots ?? -1) >= Math.max(6, statuses.get("c1")?.appliedSlots ?? Infinity) &&
      statuses.get("c3")?.pid === lost.pid,
    60_000,
  );
  t.true((lost.status()?.appliedSlots ?? 0) >= 6, "it caught up with the slots chosen before its disk was lost");

  // Its vote is real again: with c1 down, c2 and c3 commit.
  await cluster.member("c1").kill("SIGKILL");
  const outcome = await client.propose(addSmallVm("with-c3-vote"));
  t.is(outcome.kind, "committed");
  await cluster.waitFor("c3 applied it", (statuses) => (statuses.get("c3")?.appliedSlots ?? -1) >= (statuses.get("c2")?.appliedSlots ?? Infinity), 30_000);
});

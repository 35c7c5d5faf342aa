/**
 * A controller restarted on an old copy of its own data directory (a restored
 * backup or VM snapshot), over a real nats-server and real controller
 * processes. Its identity and the writer of every record are its own, so only
 * its peers can tell: the leader saw it promise a ballot the copy never
 * promised. It must refuse to vote with the copy, name the evidence, and leave
 * the copy as it was; started on an empty directory instead, it rejoins.
 */
import test from "ava";
import { cpSync, readFileSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { peerEvidenceKeepIntervalMs } from "../../actors/paxos/peerEvidenceKeeper.ts";
import { inspectDataDir } from "../../runtime/node/dataDirInspection.ts";
import { addSmallVm, logEvents, releaseRealCluster, startRealClusterWithClient, waitForLeaderAndEveryVote, type RealClusterResources } from "./realControllerTestKit.ts";

const controllerIds = ["c1", "c2", "c3"];
const resources: RealClusterResources = {};

test.after.always(() => releaseRealCluster(resources));

test("a controller restarted on an old copy of its data directory refuses to vote with it, naming what a peer saw; on an empty directory it rejoins", async (t) => {
  const { cluster, client } = await startRealClusterWithClient(resources, { clusterId: "oldcopy", dirPrefix: "haring-old-copy-", controllerIds, maxProposeAttempts: 60, spec: { detector: false } });
  t.is((await client.propose(addSmallVm("before-copy"))).kind, "committed");

  const firstLeader = cluster.leader()!;
  const copied = cluster.members.find((member) => member !== firstLeader)!;
  // The backup: taken while the controller is down, as a VM snapshot or a file-level backup would be.
  await copied.kill("SIGKILL");
  const backup = `${copied.dataDir}.backup`;
  cpSync(copied.dataDir, backup, { recursive: true });
  let mark = copied.outputTail().length;
  copied.start();
  await waitForLeaderAndEveryVote(cluster, controllerIds);
  // A restart on its own, current log passes the recall: both peers answered and neither saw more than the log holds.
  await cluster.waitFor("the copied controller's recall", () => logEvents(copied.outputTail().slice(mark), "paxos.recall-consistent").length > 0, 30_000);
  // Both peers run, so both are asked; each answers unless this loaded machine holds it past the recall's wait.
  const consistent = logEvents(copied.outputTail().slice(mark), "paxos.recall-consistent")[0]!;
  const asked = [...String(consistent.answered).split(","), ...String(consistent.unanswered).split(",")].filter((id) => id !== "");
  t.deepEqual(asked.sort(), controllerIds.filter((id) => id !== copied.id));
  t.not(consistent.answered, "", "a peer answered");

  // A new leader: the copied controller promises (and acks) a ballot its backup never saw, or leads with a round it never used.
  await firstLeader.kill("SIGKILL");
  await cluster.waitFor("a new leader", () => cluster.leader() !== undefined && cluster.leader() !== firstLeader, 30_000);
  const secondLeader = cluster.leader()!;
  firstLeader.start();
  await waitForLeaderAndEveryVote(cluster, controllerIds);
  t.is((await client.propose(addSmallVm("after-copy"))).kind, "committed");
  await cluster.waitFor("the copied controller applied the new command", (statuses) => (statuses.get(copied.id)?.appliedSlots ?? 0) >= (statuses.get(secondLeader.id)?.appliedSlots ?? 0), 30_000);

  // The operator restores the backup.
  await copied.kill("SIGKILL");
  rmSync(copied.dataDir, { recursive: true, force: true });
  renameSync(backup, copied.dataDir);
  const restoredLog = readFileSync(join(copied.dataDir, "paxos.log"));
  mark = copied.outputTail().length;
  copied.start();
  await cluster.waitFor("the controller on the old copy to exit", () => !copied.running, 30_000);
  t.is(copied.exitCode, 1);
  const output = copied.outputTail().slice(mark);
  const refusals = logEvents(output, "paxos.log-rolled-back");
  t.is(refusals.length, 1, output);
  t.is(refusals[0]?.level, "error");
  // Whoever answered first with more than the copy holds: the leader it acked (or a controller whose pre-vote it answered)
  // saw a promise above the copy's; if it led itself meanwhile, the others saw a round of its own the copy never used.
  t.true(controllerIds.filter((id) => id !== copied.id).includes(String(refusals[0]?.peer)));
  t.regex(String(refusals[0]?.shortfall), /^it (promised ballot \d+\.c\d, the log only \d+\.c\d|proposed in round \d+, the log knows rounds only up to \d+ \(it could use round \d+ again\))$/);
  t.regex(output, /haring node: refusing to start: its Paxos log holds less than c\d saw it vote/);
  t.deepEqual(readFileSync(join(copied.dataDir, "paxos.log")), restoredLog, "the copy is left as it was, for the operator");
  t.is(logEvents(output, "controller.started").length, 0, "it never ran its acceptor");

  // The fix docs/paxos.md gives: move the copy aside and start on an empty directory; the controller rejoins.
  renameSync(copied.dataDir, `${copied.dataDir}.old-copy`);
  mark = copied.outputTail().length;
  copied.start();
  await cluster.waitFor("the controller to rejoin and vote", (statuses) => statuses.get(copied.id)?.pid === copied.pid && statuses.get(copied.id)?.acceptorMode === "voting", 60_000);
  t.is(logEvents(copied.outputTail().slice(mark), "paxos.rejoined").length, 1);
  t.is((await client.propose(addSmallVm("after-rejoin"))).kind, "committed");

  // Its new log names the controllers whose fences it counted (both others: three controllers); a restart on it asks them.
  const others = controllerIds.filter((id) => id !== copied.id);
  const rejoinedLog = inspectDataDir(copied.dataDir).paxos;
  t.deepEqual(rejoinedLog?.readable ? rejoinedLog.rejoinFencedBy : undefined, others);
  await copied.kill("SIGKILL");
  mark = copied.outputTail().length;
  copied.start();
  await cluster.waitFor("the rejoined controller's recall", () => logEvents(copied.outputTail().slice(mark), "paxos.recall-consistent").length > 0, 30_000);
  const afterRejoin = logEvents(copied.outputTail().slice(mark), "paxos.recall-consistent")[0]!;
  t.deepEqual([...String(afterRejoin.answered).split(","), ...String(afterRejoin.unanswered).split(",")].filter((id) => id !== "").sort(), others);
  t.is(afterRejoin.notAsked, undefined, "with three controllers a rejoin is fenced by both others");
  await waitForLeaderAndEveryVote(cluster, controllerIds);
  t.is((await client.propose(addSmallVm("after-restart"))).kind, "committed");

  // Kept on disk: a backup restored after the whole cluster restarted (a power cut) is refused too.
  const leaderBeforeBackup = cluster.leader()!;
  await copied.kill("SIGKILL");
  const secondBackup = `${copied.dataDir}.backup2`;
  cpSync(copied.dataDir, secondBackup, { recursive: true });
  copied.start();
  await waitForLeaderAndEveryVote(cluster, controllerIds);
  // A leader change, so the controller promises a ballot its backup never saw; then commands over more than the
  // interval at which the others keep what they saw with their own writes (peerEvidenceKeepIntervalMs).
  await leaderBeforeBackup.kill("SIGKILL");
  await cluster.waitFor("another leader", () => cluster.leader() !== undefined && cluster.leader() !== leaderBeforeBackup, 30_000);
  leaderBeforeBackup.start();
  await waitForLeaderAndEveryVote(cluster, controllerIds);
  for (let round = 0; round < 3; round++) {
    t.is((await client.propose(addSmallVm(`kept-${round}`))).kind, "committed");
    await new Promise((resolve) => setTimeout(resolve, peerEvidenceKeepIntervalMs / 2 + 100));
  }
  for (const member of cluster.members) await member.kill("SIGKILL");
  rmSync(copied.dataDir, { recursive: true, force: true });
  renameSync(secondBackup, copied.dataDir);
  mark = copied.outputTail().length;
  for (const member of cluster.members) member.start();
  await cluster.waitFor("the controller on the second old copy to exit", () => !copied.running, 30_000);
  t.is(copied.exitCode, 1);
  const afterPowerCut = logEvents(copied.outputTail().slice(mark), "paxos.log-rolled-back");
  t.is(afterPowerCut.length, 1, copied.outputTail().slice(mark));
  t.true(others.includes(String(afterPowerCut[0]?.peer)));
  // The two others run on: a leader among them commits without it.
  await cluster.waitFor("a leader of the two", () => cluster.leader() !== undefined && cluster.leader() !== copied, 30_000);
  t.is((await client.propose(addSmallVm("after-power-cut"))).kind, "committed");
});

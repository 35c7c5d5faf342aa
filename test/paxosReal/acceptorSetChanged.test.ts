/**
 * A controller restarted with another `controllerIds` than its Paxos log was
 * written with, over a real nats-server and real controller processes: the
 * usual way an operator tries to add a controller, or mistypes one. It must
 * refuse to start and name the change, leave its log as it was, and vote again
 * once the config names the log's set.
 */
import test from "ava";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { inspectDataDir } from "../../runtime/node/dataDirInspection.ts";
import { addSmallVm, logEvents, releaseRealCluster, startRealClusterWithClient, waitForLeaderAndEveryVote, type RealClusterResources } from "./realControllerTestKit.ts";

const controllerIds = ["c1", "c2", "c3"];
const resources: RealClusterResources = {};

test.after.always(() => releaseRealCluster(resources));

test("a controller restarted with an acceptor set its log was not written with refuses to start (exit 1), naming the change; with its set back it votes again", async (t) => {
  const { cluster, client } = await startRealClusterWithClient(resources, { clusterId: "acceptorset", dirPrefix: "haring-acceptor-set-", controllerIds, maxProposeAttempts: 60, spec: { detector: false } });
  t.is((await client.propose(addSmallVm("before"))).kind, "committed");

  const changed = cluster.members.find((member) => member !== cluster.leader())!;
  await changed.stop();
  const logPath = join(changed.dataDir, "paxos.log");
  const logBefore = readFileSync(logPath);
  const inspected = inspectDataDir(changed.dataDir).paxos;
  t.deepEqual(inspected?.readable ? inspected.acceptors : undefined, controllerIds, "the bootstrapped log names its acceptor set");

  const configText = readFileSync(changed.configPath, "utf8");
  for (const [listed, change] of [
    [[...controllerIds, "c4", "c5"], "adds c4, c5"],
    [controllerIds.filter((id) => id === changed.id), `drops ${controllerIds.filter((id) => id !== changed.id).join(", ")}`],
  ] as const) {
    writeFileSync(changed.configPath, JSON.stringify({ ...JSON.parse(configText), controllerIds: listed }));
    const mark = changed.outputTail().length;
    changed.start();
    await cluster.waitFor(`the controller listing ${listed.join(",")} to exit`, () => !changed.running, 30_000);
    const output = changed.outputTail().slice(mark);
    t.is(changed.exitCode, 1, output);
    const [event] = logEvents(output, "paxos.acceptor-set-changed");
    t.truthy(event, output);
    t.is(event?.error, `its Paxos log was written with the acceptors c1, c2, c3, but its config lists ${listed.join(", ")} (it ${change})`);
    t.regex(output, /refusing to start: its Paxos log was written with the acceptors c1, c2, c3.*not supported/);
    t.deepEqual(readFileSync(logPath), logBefore, "the log is left as it was");
  }
  // Meanwhile the other two carry on.
  t.is((await client.propose(addSmallVm("while-refused"))).kind, "committed");

  writeFileSync(changed.configPath, configText);
  changed.start();
  await waitForLeaderAndEveryVote(cluster, controllerIds);
  t.is((await client.propose(addSmallVm("after"))).kind, "committed");
  await cluster.waitFor("the restored controller applied every command", (statuses) => (statuses.get(changed.id)?.appliedSlots ?? 0) >= client.appliedSlots(), 30_000);
});

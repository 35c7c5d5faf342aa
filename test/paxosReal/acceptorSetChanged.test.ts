/**
 * A controller restarted with another `controllerIds` than its Paxos log was
 * written with, over a real nats-server and real controller processes: the
 * usual way an operator tries to add a controller, or mistypes one. It must
 * refuse to start and name the change, leave its log as it was, and vote again
 * once the config names the log's set. And a new cluster whose controllers
 * list different sets is not created at all.
 */
import test from "ava";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startLocalControllers } from "../../runtime/controller/localControllers.ts";
import { startNatsServer } from "../../runtime/natsServer.ts";
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
    t.regex(output, /refusing to start: its Paxos log was written with the acceptors c1, c2, c3.*haring acceptors grow/);
    t.deepEqual(readFileSync(logPath), logBefore, "the log is left as it was");
  }
  // Meanwhile the other two carry on.
  t.is((await client.propose(addSmallVm("while-refused"))).kind, "committed");

  writeFileSync(changed.configPath, configText);
  changed.start();
  await waitForLeaderAndEveryVote(cluster, controllerIds);
  t.is((await client.propose(addSmallVm("after"))).kind, "committed");
  await cluster.waitFor("the restored controller applied every command", (statuses) => (statuses.get(changed.id)?.appliedSlots ?? 0) >= client.appliedSlots(), 30_000);

  // A lost disk has no log to name the set: before it rejoins, the others it asks must list the same one.
  await changed.kill("SIGKILL");
  changed.wipeData();
  const dropped = controllerIds.find((id) => id !== changed.id)!;
  const shrunk = controllerIds.filter((id) => id !== dropped);
  writeFileSync(changed.configPath, JSON.stringify({ ...JSON.parse(configText), bootstrap: false, controllerIds: shrunk }));
  const mark = changed.outputTail().length;
  changed.start();
  await cluster.waitFor("the empty controller with a shrunk set to exit", () => !changed.running, 30_000);
  const output = changed.outputTail().slice(mark);
  t.is(changed.exitCode, 1, output);
  t.regex(output, new RegExp(`refusing to start: c\\d lists the controllers c1, c2, c3, but this controller's config lists ${shrunk.join(", ")} \\(it drops ${dropped}\\)`));
  t.is(logEvents(output, "paxos.recovered").length, 0, "no acceptor ran");

  writeFileSync(changed.configPath, JSON.stringify({ ...JSON.parse(configText), bootstrap: false }));
  changed.start();
  await waitForLeaderAndEveryVote(cluster, controllerIds);
  t.is((await client.propose(addSmallVm("after-rejoin"))).kind, "committed");
  const rejoined = inspectDataDir(changed.dataDir).paxos;
  t.deepEqual(rejoined?.readable ? rejoined.acceptors : undefined, controllerIds, "the rejoin's log names the set too");
});

test("a new cluster whose controllers list different sets is not created: whoever hears another set first refuses (exit 1), nobody bootstraps", async (t) => {
  const nats = await startNatsServer();
  const baseDir = mkdtempSync(join(tmpdir(), "haring-acceptor-set-gate-"));
  const cluster = startLocalControllers({ clusterId: "gatesets", controllerIds, natsUrls: [nats.url], baseDir, statusIntervalMs: 50, manager: false, detector: false, keepBootstrap: true });
  try {
    // c3's config was edited to add two controllers before the first start.
    const edited = cluster.member("c3");
    await edited.kill("SIGKILL");
    writeFileSync(edited.configPath, JSON.stringify({ ...JSON.parse(readFileSync(edited.configPath, "utf8")), controllerIds: [...controllerIds, "c4", "c5"] }));
    edited.start();
    // Each gate asks after its quarantine (2 s); which side asks first depends on start times, and that side refuses.
    await cluster.waitFor("a controller to refuse at its gate", () => cluster.members.some((member) => !member.running), 30_000);
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const refused = cluster.members.filter((member) => !member.running);
    t.true(refused.length >= 1);
    for (const member of cluster.members) {
      const output = member.outputTail();
      t.is(logEvents(output, "paxos.bootstrap-decided").length, 0, `${member.id} created nothing: ${output}`);
      t.false(existsSync(join(member.dataDir, "paxos.log")) && readFileSync(join(member.dataDir, "paxos.log")).length > 0, `${member.id} wrote no Paxos state`);
      if (member.running) continue;
      t.is(member.exitCode, 1, output);
      t.regex(
        output,
        member.id === "c3"
          ? /refusing to start: c[12] lists the controllers c1, c2, c3, but this controller's config lists c1, c2, c3, c4, c5 \(it adds c4, c5\)/
          : /refusing to start: c3 lists the controllers c1, c2, c3, c4, c5, but this controller's config lists c1, c2, c3 \(it drops c4, c5\)/,
      );
    }
  } finally {
    await cluster.stopAll();
    await nats.stop();
    rmSync(baseDir, { recursive: true, force: true });
  }
});

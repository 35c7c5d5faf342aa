import test from "ava";
import { releaseRealCluster, startRealClusterWithClient, type RealClusterResources } from "./realControllerTestKit.ts";
import type { ProposalOutcome } from "../../machines/paxos/proposalClient.ts";
import type { ViewCommand } from "../../machines/view/viewCommands.ts";
import { canonicalViewJson } from "../../machines/view/viewSnapshot.ts";

const controllerIds = ["c1", "c2", "c3"];
const commandCount = 300;
const inFlight = 16;
const killAfterCommitted = 100;

const resources: RealClusterResources = {};

test.after.always(() => releaseRealCluster(resources));

const addVm = (index: number): ViewCommand => ({
  id: `load-${index}`,
  type: "vm.add",
  vmId: `vm-${index}`,
  resources: { cpu: 1, memoryMiB: 256 },
  priority: "medium",
  rules: { affinity: [], antiAffinity: [] },
  desiredState: "running",
});

test("three controller processes over real NATS: kill -9 the leader mid-load, restart it; no committed command is lost or applied twice, and every view is the same", async (t) => {
  // Paxos alone (the kit leaves the HA manager out: its F would enter the view and admission control refuse these VMs).
  const { cluster, client } = await startRealClusterWithClient(resources, { clusterId: "real", dirPrefix: "haring-paxos-real-", controllerIds, maxProposeAttempts: 40 });

  const outcomes = new Map<string, ProposalOutcome>();
  let killed: { id: string; atCommitted: number } | undefined;
  let committedAfterKill = 0;
  let next = 0;
  const worker = async () => {
    while (next < commandCount) {
      const command = addVm(next++);
      const outcome = await client.propose(command);
      outcomes.set(command.id, outcome);
      if (killed && outcome.kind === "committed") committedAfterKill++;
      const committed = [...outcomes.values()].filter((item) => item.kind === "committed").length;
      if (!killed && committed >= killAfterCommitted) {
        const leader = cluster.leader();
        if (leader) {
          killed = { id: leader.id, atCommitted: committed };
          await leader.kill("SIGKILL");
        }
      }
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));

  t.truthy(killed, "the leader was killed during the load");
  t.true(killed!.atCommitted < commandCount && committedAfterKill > 100, `${committedAfterKill} commands committed after the kill`);
  const committed = [...outcomes].filter(([, outcome]) => outcome.kind === "committed");
  const notCommitted = [...outcomes].filter(([, outcome]) => outcome.kind !== "committed");
  t.deepEqual(notCommitted, [], "every command got a committed outcome (unique VMs, generous retries)");

  // A survivor's log says why it campaigned: its election timer ran out on the killed leader.
  const survivorsLogs = cluster.members.filter((member) => member.id !== killed!.id).map((member) => member.outputTail()).join("\n");
  t.regex(survivorsLogs, new RegExp(`"event":"paxos\\.election-started","stage":"pre-vote","ballot":"\\d+\\.c\\d","lastLeader":"${killed!.id}"`));

  const victim = cluster.member(killed!.id);
  victim.start();
  const target = client.appliedSlots();
  await cluster.waitFor(
    `every controller (${killed!.id} restarted) to apply ${target} slots`,
    (statuses) => controllerIds.every((id) => (statuses.get(id)?.appliedSlots ?? -1) >= target && statuses.get(id)?.pid === cluster.member(id).pid),
    30_000,
  );
  await cluster.stopAll();
  t.deepEqual(cluster.members.map((member) => member.exitCode), [0, 0, 0], "clean stops");

  const finals = cluster.members.map((member) => member.finalView()!);
  const slots = new Set(finals.map((final) => final.slot));
  t.is(slots.size, 1, `every controller stopped at the same slot: ${[...slots].join(", ")}`);
  const viewTexts = new Set(finals.map((final) => JSON.stringify(final.view)));
  t.is(viewTexts.size, 1, "identical views");
  t.is(finals[0]!.slot, client.appliedSlots());
  t.is(finals[0]!.text.slice(finals[0]!.text.indexOf('"view":') + 7, -1), canonicalViewJson(client.view()), "the client's learner holds the same canonical view");

  const view = finals[0]!.view as { recentCommands: Array<{ commandId: string; slot: number; outcome: { kind: string } }>; vms: Record<string, unknown> };
  for (const [commandId, outcome] of committed) {
    const entries = view.recentCommands.filter((entry) => entry.commandId === commandId);
    t.is(entries.length, 1, `${commandId} is in the final view exactly once`);
    t.is(entries[0]?.slot, outcome.kind === "committed" ? outcome.slot : -1, `${commandId} at the slot the client was told`);
    t.is(entries[0]?.outcome.kind, "committed");
  }
  t.is(Object.keys(view.vms).length, commandCount, "one VM per command, none twice");
});

import test from "ava";
import { createActor } from "xstate";
import { defaultManagerConfig } from "../../machines/manager/managerConfig.ts";
import { managerMachine } from "../../machines/manager/managerMachine.ts";
import type { HostCommand } from "../../machines/manager/recoveryPlanner.ts";
import type { ViewCommand } from "../../machines/view/viewCommands.ts";
import { addVm, apply, cluster, placeOn } from "./viewBuilder.ts";

test("the machine turns planner outputs into named actions, in order", (t) => {
  const proposed: ViewCommand[] = [];
  const sent: HostCommand[] = [];
  const notes: string[] = [];
  const machine = managerMachine.provide({
    actions: {
      proposeViewCommand: (_, params) => void proposed.push(params.command),
      sendHostCommand: (_, params) => void sent.push(params.command),
      note: (_, params) => void notes.push(params.note),
    },
  });
  const actor = createActor(machine, { input: { config: { ...defaultManagerConfig, undeclaredFailureWaitMs: 0 } } });
  actor.start();
  // A view configured with the manager's F, so the only proposals are the recovery's.
  let view = cluster([["h1", 16, 65_536], ["h2", 16, 65_536]], { type: "cluster.configure", hostFailuresToTolerate: defaultManagerConfig.hostFailuresToTolerate, expectedHostFailuresToTolerate: null }, addVm("a"));
  view = apply(view, placeOn(view, "a", "h1"), { type: "host.failed", hostId: "h1", incarnation: 0 });
  actor.send({ type: "view", nowMs: 1, view });
  t.deepEqual(proposed, [], "inactive until leader");
  actor.send({ type: "leadership", nowMs: 2, isLeader: true, leaseValidUntilMs: 10_000 });
  t.deepEqual(proposed.map((c) => c.type === "vm.place" && c.hostId), ["h2"]);
  view = apply(view, proposed[0]!);
  actor.send({ type: "view", nowMs: 3, view });
  t.deepEqual(sent.map((c) => [c.action, c.hostId]), [["start", "h2"]]);
  t.deepEqual(notes.slice(0, 3), ["activated", "placement-proposed", "placed"]);
  actor.stop();
});

/**
 * The view is a function of the log alone: a learner that installed a
 * snapshot (or restarted from one) must reach the same outcomes and the same
 * view as one that applied every command, although its maps were built in
 * another order. Random workloads over every kind of host and VM command,
 * restored from a snapshot at random points, compared command by command.
 */
import test from "ava";
import { createSeededRandom } from "../../actors/seededRandom.ts";
import type { Random } from "../../actors/ports/random.ts";
import { applyViewCommands } from "../../machines/view/applyViewCommands.ts";
import { recoveryKinds } from "../../machines/view/viewTypes.ts";
import type { ViewCommand } from "../../machines/view/viewCommands.ts";
import { canonicalViewJson, viewFromSnapshot, viewToSnapshot } from "../../machines/view/viewSnapshot.ts";
import { emptyView, type View } from "../../machines/view/viewTypes.ts";

const hostCount = 8;
const vmCount = 40;
const seeds = 60;
const commandsPerSeed = 400;

function pick<T>(random: Random, items: readonly T[]): T {
  return items[random.int(items.length)]!;
}

/** A command against the current view: mostly with the epochs and incarnations it holds, so most commands commit. */
function nextCommand(random: Random, view: View, id: string): ViewCommand {
  const upHosts = [...view.hosts.values()].filter((candidate) => candidate.state === "up").map((candidate) => candidate.hostId);
  const anyHost = `h${random.int(hostCount)}`;
  const hostId = upHosts.length > 0 && random.int(4) !== 0 ? pick(random, upHosts) : anyHost;
  const anyVm = `vm${String(random.int(vmCount)).padStart(2, "0")}`;
  const vmId = view.vms.size > 0 && random.int(4) !== 0 ? pick(random, [...view.vms.keys()]) : anyVm;
  const host = view.hosts.get(hostId);
  const vm = view.vms.get(vmId);
  const incarnation = (host?.incarnation ?? 0) + (random.int(10) === 0 ? 1 : 0);
  const placementEpoch = random.int(8) === 0 ? random.int(3) : (vm?.placement?.epoch ?? 0);
  const someVms = () => Array.from({ length: random.int(4) }, () => `vm${String(random.int(vmCount)).padStart(2, "0")}`).filter((other) => other !== vmId);
  switch (random.int(20)) {
    case 0:
      return { id, type: "host.register", hostId: anyHost, capacity: { cpu: 8 + random.int(24), memoryMiB: 8_192 * (1 + random.int(4)) } };
    case 1:
    case 2:
      return { id, type: "host.up", hostId: anyHost, incarnation: (view.hosts.get(anyHost)?.incarnation ?? 0) + (random.int(10) === 0 ? 1 : 0) };
    case 3:
      return { id, type: pick(random, ["host.suspect", "host.failed", "host.fenced", "host.rejoin"] as const), hostId, incarnation };
    case 4:
      return { id, type: pick(random, ["host.maintenance-enter", "host.maintenance-exit", "host.remove"] as const), hostId };
    case 5:
    case 6:
      return {
        id,
        type: "vm.add",
        vmId: anyVm,
        resources: { cpu: 1 + random.int(3), memoryMiB: 512 * (1 + random.int(4)) },
        priority: pick(random, ["high", "medium", "low"] as const),
        rules: { affinity: random.int(6) === 0 ? someVms().slice(0, 1) : [], antiAffinity: someVms() },
        desiredState: random.int(5) === 0 ? "stopped" : "running",
      };
    case 7:
      return { id, type: "vm.remove", vmId };
    case 8:
      return { id, type: "vm.set-desired", vmId, desiredState: random.int(2) === 0 ? "running" : "stopped" };
    case 9:
    case 10:
    case 11:
    case 12:
      return { id, type: "vm.place", vmId, hostId, expectedPlacementEpoch: placementEpoch };
    case 13:
      return { id, type: "vm.unplace", vmId, expectedPlacementEpoch: placementEpoch };
    case 14:
      return { id, type: "vm.migrate", vmId, toHostId: hostId, expectedPlacementEpoch: Math.max(1, placementEpoch) };
    case 15:
      return { id, type: pick(random, ["vm.migrate-done", "vm.migrate-abort"] as const), vmId, expectedPlacementEpoch: placementEpoch };
    case 16: {
      const leaving = vm?.leavingFrom?.[0];
      return leaving !== undefined && random.int(4) !== 0
        ? { id, type: "vm.left", vmId, hostId: leaving.hostId, incarnation: leaving.incarnation, placementEpoch: leaving.placementEpoch }
        : { id, type: "vm.left", vmId, hostId, incarnation, placementEpoch: Math.max(1, placementEpoch) };
    }
    case 17:
      return { id, type: "vm.record-recovery", vmId, kind: pick(random, recoveryKinds), atMs: random.int(1_000_000) };
    case 18:
      return random.int(4) === 0
        ? { id, type: "cluster.configure", hostFailuresToTolerate: random.int(2), expectedHostFailuresToTolerate: view.hostFailuresToTolerate }
        : { id, type: "vm.place", vmId, hostId, expectedPlacementEpoch: placementEpoch };
    default:
      // An id seen before: its remembered outcome must be the same on both.
      return { id: `s${random.int(Number(id.slice(id.indexOf("-") + 1)) + 1)}-${random.int(3)}`, type: "host.up", hostId, incarnation };
  }
}

function restored(view: View): View {
  const parsed = viewFromSnapshot(JSON.parse(JSON.stringify(viewToSnapshot(view))));
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.state;
}

test(`a view restored from a snapshot at random points decides every later command as the applied one does (${seeds} seeds × ${commandsPerSeed} commands)`, (t) => {
  let committed = 0;
  let rejected = 0;
  let restores = 0;
  for (let seed = 1; seed <= seeds; seed++) {
    const random = createSeededRandom(seed);
    let applied = emptyView;
    let fromSnapshot = emptyView;
    for (let index = 0; index < commandsPerSeed; index++) {
      if (random.int(25) === 0) {
        fromSnapshot = restored(applied);
        restores++;
      }
      const slot = index + 1;
      const commands = Array.from({ length: 1 + random.int(3) }, (_, part) => nextCommand(random, applied, `s${seed}-${index * 3 + part}`));
      const one = applyViewCommands(applied, slot, commands);
      const other = applyViewCommands(fromSnapshot, slot, commands);
      if (JSON.stringify(one.outcomes) !== JSON.stringify(other.outcomes)) {
        return t.fail(`seed ${seed}, slot ${slot}: ${JSON.stringify(commands)} → applied ${JSON.stringify(one.outcomes)}, restored ${JSON.stringify(other.outcomes)}`);
      }
      for (const outcome of one.outcomes) {
        if (outcome.kind === "committed") committed++;
        else if (outcome.kind === "rejected") rejected++;
      }
      applied = one.view;
      fromSnapshot = other.view;
    }
    t.is(canonicalViewJson(fromSnapshot), canonicalViewJson(applied), `seed ${seed}: the final views`);
  }
  // The workload did something on both sides of the comparison.
  t.log(`${committed} committed, ${rejected} rejected, ${restores} restores`);
  t.true(committed > seeds * commandsPerSeed * 0.4, `${committed} committed`);
  t.true(rejected > seeds * commandsPerSeed * 0.2, `${rejected} rejected`);
  t.true(restores > seeds * 10, `${restores} restores`);
});

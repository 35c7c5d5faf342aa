import test from "ava";
import { pack } from "msgpackr";
import type { HostApplyResult } from "../../actors/hostCommands/hostCommandExecutor.ts";
import { ManagerCluster } from "./managerCluster.ts";

const liveHosts = [
  { id: "h1", liveMigration: true },
  { id: "h2", liveMigration: true },
  { id: "h3", liveMigration: true },
];
const vms = [{ id: "a" }, { id: "b" }, { id: "c" }, { id: "d" }, { id: "e" }, { id: "f" }];

function started(seed: number): ManagerCluster {
  const cluster = new ManagerCluster({ seed, hosts: liveHosts, vms });
  const at = cluster.runUntil(() => cluster.allRunning(), 10_000);
  if (at === undefined) throw new Error(`VMs not all running after 10 s: ${cluster.world.transcript().slice(-3_000)}`);
  // Past the detector's first term start, and past a capabilities report from every host.
  cluster.world.runUntil(Math.max(cluster.world.now(), 6_000));
  return cluster;
}

function hostOf(cluster: ManagerCluster, vmId: string): string {
  const hosts = cluster.activeHosts(vmId);
  if (hosts.length !== 1) throw new Error(`vm ${vmId} runs on ${hosts.join(",") || "no host"}`);
  return hosts[0]!;
}

test("maintenance with live migration: every VM moves without a stop (the registry shows migrate-out then migrate-in), never on two hosts; markers cleared, the host drained", (t) => {
  const cluster = started(31);
  const host = hostOf(cluster, "a");
  const leaving = vms.map((vm) => vm.id).filter((vmId) => cluster.activeHosts(vmId).includes(host));
  const sinceMs = cluster.world.now();
  cluster.managers.get(cluster.leaderId()!)!.manager.propose({ id: `maintenance-${host}`, type: "host.maintenance-enter", hostId: host }, () => undefined);
  const drained = cluster.runUntil(() => cluster.notesOf("host-drained").some((note) => note.fields.hostId === host), 20_000);
  t.truthy(drained);
  for (const vmId of leaving) {
    const records = cluster.hypervisors.registry.history().filter((record) => record.vmId === vmId && record.atMs >= sinceMs);
    t.deepEqual(records.map((record) => `${record.active ? "+" : "-"}${record.cause}`), ["-migrate-out", "+migrate-in"], `${vmId} moved by one migration`);
    t.not(hostOf(cluster, vmId), host);
    const placement = cluster.view().vms.get(vmId)!.placement!;
    t.is(placement.migratingFrom, undefined);
    t.is(placement.hostId, hostOf(cluster, vmId));
  }
  t.true(cluster.notesOf("started").filter((note) => note.fields.reason === "migrate").length >= leaving.length);
  t.deepEqual(cluster.hypervisors.registry.overlaps(), []);
});

test("host executor: a migrate command without the view's marker is refused; a migration marked in the view by someone else (an earlier leader) is carried out by the manager", (t) => {
  const cluster = started(32);
  const host = hostOf(cluster, "a");
  const other = cluster.hostIds.find((id) => id !== host)!;
  const view = cluster.view();
  const epoch = view.vms.get("a")!.placement!.epoch;
  const incarnation = view.hosts.get(host)!.incarnation;
  const executor = cluster.hostNodes.get(host)!.executor;
  const results: string[] = [];
  const record = (result: HostApplyResult): void => void results.push(result.ok ? "applied" : result.error);
  executor.apply({ commandId: "no-marker", kind: "vm.migrate", payload: pack({ vmId: "a", placementEpoch: epoch, hostIncarnation: incarnation, targetHostId: other }), senderId: "c1" }, record);
  cluster.world.runFor(3_000);
  t.deepEqual(results, [`migrate refused: vm a is placed on host ${host}, not ${other}`]);
  t.deepEqual(cluster.activeHosts("a"), [host], "untouched");
  const committed: string[] = [];
  cluster.controllers.get(cluster.leaderId()!)!.propose({ id: "operator-migrate-a", type: "vm.migrate", vmId: "a", toHostId: other, expectedPlacementEpoch: epoch }, (outcome) => committed.push(outcome.kind));
  const moved = cluster.runUntil(() => cluster.activeHosts("a")[0] === other && cluster.view().vms.get("a")!.placement!.migratingFrom === undefined, 10_000);
  t.deepEqual(committed, ["committed"]);
  t.truthy(moved, "migrated and the marker cleared");
  t.is(cluster.view().vms.get("a")!.placement!.hostId, other);
  t.deepEqual(cluster.hypervisors.registry.overlaps(), []);
});

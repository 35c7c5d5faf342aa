import test from "ava";
import { pack } from "msgpackr";
import { ManagerCluster, type ManagerClusterOptions } from "./managerCluster.ts";

const threeHosts = [{ id: "h1" }, { id: "h2" }, { id: "h3" }];
const fourVms = [{ id: "a" }, { id: "b" }, { id: "c" }, { id: "d" }];

/** A cluster with every VM running once, by the hypervisors' record. */
function started(options: Partial<ManagerClusterOptions> & { seed: number }): ManagerCluster {
  const cluster = new ManagerCluster({ hosts: threeHosts, vms: fourVms, ...options });
  const at = cluster.runUntil(() => cluster.allRunning(), 10_000);
  if (at === undefined) throw new Error(`VMs not all running after 10 s: ${cluster.world.transcript().slice(-3_000)}`);
  // Past the detector's first term start, so failures are declared at the normal pace.
  cluster.world.runUntil(Math.max(cluster.world.now(), 4_000));
  return cluster;
}

function hostOf(cluster: ManagerCluster, vmId: string): string {
  const hosts = cluster.activeHosts(vmId);
  if (hosts.length !== 1) throw new Error(`vm ${vmId} runs on ${hosts.join(",") || "no host"}`);
  return hosts[0]!;
}

function vmsOn(cluster: ManagerCluster, hostId: string): string[] {
  return cluster.options.vms.map((vm) => vm.id).filter((vmId) => cluster.activeHosts(vmId).includes(hostId));
}

test("host crash: its VMs run on other hosts, each started only after the crashed host's lease surely ran out; never on two hosts", (t) => {
  const cluster = started({ seed: 11 });
  const victim = hostOf(cluster, "a");
  const moved = vmsOn(cluster, victim);
  const crashAt = cluster.world.now();
  cluster.world.crash(victim);
  const recoveredAt = cluster.runUntil(() => moved.every((vmId) => cluster.activeHosts(vmId).length === 1), 10_000);
  t.truthy(recoveredAt, "every VM of the crashed host runs again");
  const leaseEnd = cluster.leaseUntilGlobalMs.get(victim)!;
  t.true(leaseEnd > crashAt - 2_000, "the victim held a lease shortly before the crash");
  for (const vmId of moved) {
    const elsewhere = cluster.activationsElsewhere(vmId, victim, crashAt);
    t.is(elsewhere.length, 1, `${vmId} started once elsewhere`);
    t.true(elsewhere[0]!.atMs >= leaseEnd, `${vmId} started at ${elsewhere[0]!.atMs}, after the lease end ${leaseEnd}`);
  }
  t.true(recoveredAt! - crashAt < 5_000, `recovered ${recoveredAt! - crashAt} ms after the crash`);
  t.deepEqual(cluster.hypervisors.registry.overlaps(), []);
  t.true(cluster.view().hosts.get(victim)!.state === "failed");
});

test("leader crash during recovery: the new leader's manager finishes it; no VM on two hosts", (t) => {
  const cluster = started({ seed: 12 });
  const oldLeader = cluster.leaderId()!;
  const victim = hostOf(cluster, "b");
  const moved = vmsOn(cluster, victim);
  const crashAt = cluster.world.now();
  cluster.world.crash(victim);
  // Crash the leader as soon as its manager has begun: the failure is committed and it waits for the lease or proposes placements.
  const begunAt = cluster.runUntil(
    () => cluster.notes.some((note) => note.atMs >= crashAt && note.controllerId === oldLeader && (note.note === "waiting-for-lease" || note.note === "placement-proposed")),
    10_000,
    5,
  );
  t.truthy(begunAt, "the old leader began the recovery");
  cluster.world.crash(oldLeader);
  const recoveredAt = cluster.runUntil(() => moved.every((vmId) => cluster.activeHosts(vmId).length === 1), 20_000);
  t.truthy(recoveredAt, "the VMs of the crashed host run again");
  const newLeader = cluster.leaderId();
  t.truthy(newLeader);
  t.not(newLeader, oldLeader);
  // The VMs run before their start results reach the manager (a network hop later): wait for that, not longer.
  const startedByNewLeader = () => cluster.notesOf("started").some((note) => note.controllerId === newLeader && moved.includes(String(note.fields.vmId)));
  t.truthy(cluster.runUntil(startedByNewLeader, 1_000, 5), "the new leader's manager started them");
  for (const vmId of moved) t.true(cluster.activationsElsewhere(vmId, victim, crashAt).every((record) => record.atMs >= cluster.leaseUntilGlobalMs.get(victim)!));
  t.deepEqual(cluster.hypervisors.registry.overlaps(), []);
});

test("VM crash: restarted in place", (t) => {
  const cluster = started({ seed: 13 });
  const host = hostOf(cluster, "c");
  const crashAt = cluster.world.now();
  cluster.hypervisors.crashVm(host, "c");
  const back = cluster.runUntil(() => cluster.activeHosts("c").length === 1 && cluster.world.now() > crashAt, 5_000, 20);
  t.truthy(back);
  t.deepEqual(cluster.activeHosts("c"), [host]);
  t.true(back! - crashAt <= 1_500, `restarted ${back! - crashAt} ms after the crash`);
  t.true(cluster.notesOf("restart-in-place").some((note) => note.fields.vmId === "c" && note.fields.hostId === host));
});

test("VM crash loop: three restarts in place, the fourth crash relocates it", (t) => {
  const cluster = started({ seed: 14 });
  const host = hostOf(cluster, "d");
  for (let crash = 1; crash <= 4; crash++) {
    const crashAt = cluster.world.now();
    cluster.hypervisors.crashVm(cluster.activeHosts("d")[0]!, "d");
    const back = cluster.runUntil(() => cluster.activeHosts("d").length === 1, 10_000, 20);
    t.truthy(back, `back after crash ${crash}`);
    if (crash < 4) t.deepEqual(cluster.activeHosts("d"), [host], `crash ${crash}: in place`);
    t.true(cluster.world.now() > crashAt);
  }
  t.notDeepEqual(cluster.activeHosts("d"), [host], "relocated after the fourth crash");
  t.is(cluster.notesOf("restart-in-place").filter((note) => note.fields.vmId === "d").length, 3);
  t.is(cluster.notesOf("crash-loop-relocate").filter((note) => note.fields.vmId === "d").length, 1);
  t.deepEqual(cluster.hypervisors.registry.overlaps(), []);
});

test("guest hang: the VM is reset after the grace period and its guest runs again", (t) => {
  const cluster = started({ seed: 15, guests: true, vms: [{ id: "a" }, { id: "b" }] });
  cluster.world.runFor(1_000);
  const host = hostOf(cluster, "a");
  const hangAt = cluster.world.now();
  cluster.hypervisors.hangGuest(host, "a");
  const resetAt = cluster.runUntil(() => cluster.notesOf("reset").some((note) => note.fields.vmId === "a"), 10_000, 20);
  t.truthy(resetAt, "reset");
  t.true(resetAt! - hangAt <= 5_000, `reset ${resetAt! - hangAt} ms after the hang`);
  const recovered = cluster.runUntil(() => cluster.hypervisors.vm(host, "a")?.guestHung === false, 2_000, 20);
  t.truthy(recovered, "the reset cleared the guest hang");
  t.deepEqual(cluster.activeHosts("a"), [host]);
});

test("maintenance: the host's VMs are evacuated (stop, then start elsewhere), then it is drained", (t) => {
  const cluster = started({ seed: 16 });
  const host = hostOf(cluster, "a");
  const evacuated = vmsOn(cluster, host);
  const leader = cluster.leaderId()!;
  let outcome: string | undefined;
  cluster.managers.get(leader)!.manager.propose({ id: `maintenance-${host}`, type: "host.maintenance-enter", hostId: host }, (result) => {
    outcome = result.ok ? result.outcome.kind : result.error;
  });
  const drained = cluster.runUntil(() => cluster.notesOf("host-drained").some((note) => note.fields.hostId === host) && evacuated.every((vmId) => cluster.activeHosts(vmId).length === 1 && cluster.activeHosts(vmId)[0] !== host), 15_000);
  t.is(outcome, "committed");
  t.truthy(drained);
  t.is(cluster.view().hosts.get(host)!.state, "maintenance");
  t.deepEqual(vmsOn(cluster, host), []);
  t.deepEqual(cluster.hypervisors.registry.overlaps(), []);
});

test("admission control: a vm.add that would leave no room for one host failure is refused naming the shortfall; one that fits commits", (t) => {
  const cluster = started({ seed: 17, manager: { hostFailuresToTolerate: 1 } });
  const manager = cluster.managers.get(cluster.leaderId()!)!.manager;
  // 3 hosts × 16 vCPU, the largest held back: 32 usable; 4 × 2 in use.
  const results: string[] = [];
  manager.propose(cluster.vmAddCommand({ id: "big", cpu: 26 }), (result) => results.push(result.ok ? result.outcome.kind : result.error));
  cluster.world.runFor(500);
  t.is(results.length, 1);
  t.regex(results[0]!, /^vm big refused: needs 2 vCPU more to keep room for 1 host failure/);
  manager.propose(cluster.vmAddCommand({ id: "fits", cpu: 24 }), (result) => results.push(result.ok ? result.outcome.kind : result.error));
  cluster.world.runFor(500);
  t.is(results[1], "committed");
  // The admitted one now counts: one more vCPU is too many.
  manager.propose(cluster.vmAddCommand({ id: "one-more", cpu: 1 }), (result) => results.push(result.ok ? result.outcome.kind : result.error));
  cluster.world.runFor(500);
  t.regex(results[2]!, /^vm one-more refused: needs 1 vCPU more/);
  t.false(cluster.view().vms.has("big"));
  t.false(cluster.view().vms.has("one-more"));
  // A follower's manager refuses and names the leader.
  const follower = cluster.controllerIds.find((id) => id !== cluster.leaderId())!;
  cluster.managers.get(follower)!.manager.propose(cluster.vmAddCommand({ id: "x" }), (result) => results.push(result.ok ? "ok" : result.error));
  cluster.world.runFor(10);
  t.regex(results[3]!, /is not the leader/);
});

test("admission in the view: the manager puts its F into the view, and a vm.add proposed straight to Paxos (not through the manager) is refused by the view", (t) => {
  const cluster = started({ seed: 19, manager: { hostFailuresToTolerate: 1 } });
  t.truthy(
    cluster.runUntil(() => cluster.view().hostFailuresToTolerate === 1, 2_000),
    "the active manager proposed its configured F for a view without one",
  );
  t.true(cluster.notes.some((note) => note.note === "configure-proposed" && note.fields.hostFailuresToTolerate === 1));
  const leader = cluster.controllers.get(cluster.leaderId()!)!;
  // 3 hosts × 16 vCPU, the largest held back: 32 usable; 4 × 2 in use. Past the manager's gate, the view still refuses.
  const outcomes: string[] = [];
  const submitted = leader.propose(cluster.vmAddCommand({ id: "direct", cpu: 26 }), (outcome) => outcomes.push(outcome.kind === "rejected" ? outcome.reason : outcome.kind));
  t.true(submitted.ok);
  cluster.world.runFor(500);
  t.is(outcomes.length, 1);
  t.regex(outcomes[0]!, /^vm direct refused: needs 2 vCPU more to keep room for 1 host failure \(3 up hosts have 48 vCPU/);
  t.false(cluster.view().vms.has("direct"));
  // One that fits commits the same way.
  leader.propose(cluster.vmAddCommand({ id: "small", cpu: 2 }), (outcome) => outcomes.push(outcome.kind));
  cluster.world.runFor(500);
  t.is(outcomes[1], "committed");
  t.true(cluster.view().vms.has("small"));
});

test("rejoin: a host isolated by a partition is failed, its VMs move; after it rejoins, a start at the old placement epoch is refused", (t) => {
  const cluster = started({ seed: 18 });
  const host = hostOf(cluster, "a");
  const oldEpoch = cluster.view().vms.get("a")!.placement!.epoch;
  const oldIncarnation = cluster.view().hosts.get(host)!.incarnation;
  const moved = vmsOn(cluster, host);
  const cutAt = cluster.world.now();
  cluster.world.partition([[host]]);
  const isolatedAt = cluster.runUntil(() => cluster.senders.get(host)!.getSnapshot()?.context.phase !== "leased", 5_000, 20);
  t.truthy(isolatedAt, "the cut-off host lost its lease");
  const whileIsolated: string[] = [];
  const currentStart = pack({ vmId: "a", placementEpoch: oldEpoch, hostIncarnation: oldIncarnation, attempt: 1, virtualization: "full", vcpus: 2, memoryMiB: 4096 });
  cluster.hostNodes.get(host)!.executor.apply({ commandId: "isolated-start", kind: "vm.start", payload: currentStart, senderId: "c1" }, (result) => whileIsolated.push(result.ok ? "applied" : result.error));
  const movedAt = cluster.runUntil(() => moved.every((vmId) => cluster.activationsElsewhere(vmId, host, cutAt).length > 0 && cluster.activeHosts(vmId).length === 1), 15_000);
  t.truthy(movedAt, "moved while the host is cut off");
  // A host that is joining again is given a moment for its first lease; cut off, it gets none.
  cluster.world.runFor(1_500);
  t.is(whileIsolated.length, 1);
  t.regex(whileIsolated[0]!, /^start refused: host h\d holds no lease/, "nothing starts on an isolated host, even at the epoch its view still names");
  cluster.world.heal();
  const rejoinedAt = cluster.runUntil(() => {
    const record = cluster.view().hosts.get(host)!;
    return record.state === "up" && cluster.truth.committed.some((entry) => entry.hostId === host && entry.state === "failed");
  }, 15_000, 1);
  t.truthy(rejoinedAt, "rejoined with a new incarnation");
  const results: string[] = [];
  const stalePayload = pack({ vmId: "a", placementEpoch: oldEpoch, hostIncarnation: oldIncarnation, attempt: 1, virtualization: "full", vcpus: 2, memoryMiB: 4096 });
  const executor = cluster.hostNodes.get(host)!.executor;
  // At once: the host's own view may still be the one from before the cut (it names the old incarnation) or the new one.
  executor.apply({ commandId: "stale-start-1", kind: "vm.start", payload: stalePayload, senderId: "c1" }, (result) => results.push(result.ok ? "applied" : result.error));
  executor.apply({ commandId: "garbage", kind: "vm.start", payload: new Uint8Array([0xc1, 0xff, 0x00]), senderId: "c1" }, (result) => results.push(result.ok ? "applied" : result.error));
  cluster.world.runFor(3_000);
  // Now the host's view has caught up: the old placement epoch itself is what refuses it.
  t.is(cluster.learners.get(host)!.view().hosts.get(host)!.incarnation, cluster.view().hosts.get(host)!.incarnation);
  executor.apply({ commandId: "stale-start-2", kind: "vm.start", payload: stalePayload, senderId: "c1" }, (result) => results.push(result.ok ? "applied" : result.error));
  cluster.world.runFor(1_000);
  t.is(results.length, 3);
  t.regex(results.find((result) => result.startsWith("malformed")) ?? "", /^malformed command/);
  const [first, second] = results.filter((result) => !result.startsWith("malformed"));
  t.regex(first!, /^start refused: (host h\d runs incarnation \d+, this host's view names incarnation \d+|vm a is placed on host h\d)/);
  t.regex(second!, /^start refused: vm a is placed on host h\d/);
  t.true(cluster.world.metrics(host).counterTotal("haring_host_commands_rejected_total") >= 1);
  t.not(cluster.activeHosts("a")[0], host);
  t.deepEqual(cluster.hypervisors.registry.overlaps(), []);
});

test("host executor: a start made for another incarnation of the host is refused; a stop is refused while the view still places the VM there; a migration is refused (this sim host does not migrate live); both counted as refused, the VM untouched", (t) => {
  const cluster = started({ seed: 19 });
  const host = hostOf(cluster, "b");
  const epoch = cluster.view().vms.get("b")!.placement!.epoch;
  const incarnation = cluster.view().hosts.get(host)!.incarnation;
  const executor = cluster.hostNodes.get(host)!.executor;
  const results: string[] = [];
  // Right VM, host and epoch, but made for another incarnation of this host (delayed past a failure and rejoin): refused.
  const otherIncarnation = pack({ vmId: "b", placementEpoch: epoch, hostIncarnation: incarnation + 1, attempt: 1, virtualization: "full", vcpus: 2, memoryMiB: 4096 });
  executor.apply({ commandId: "other-incarnation", kind: "vm.start", payload: otherIncarnation, senderId: "c1" }, (result) => results.push(result.ok ? "applied" : result.error));
  cluster.world.runFor(3_000);
  executor.apply({ commandId: "bad-stop", kind: "vm.stop", payload: pack({ vmId: "b", placementEpoch: epoch, hostIncarnation: incarnation }), senderId: "c1" }, (result) => results.push(result.ok ? "applied" : result.error));
  executor.apply({ commandId: "migrate", kind: "vm.migrate", payload: pack({ vmId: "b", placementEpoch: epoch, hostIncarnation: incarnation, targetHostId: "h1" }), senderId: "c1" }, (result) => results.push(result.ok ? "applied" : result.error));
  cluster.world.runFor(500);
  t.deepEqual(results, [
    `start refused: the command was for incarnation ${incarnation + 1} of host ${host}, the view now names incarnation ${incarnation}`,
    `stop refused: vm b is placed on this host at epoch ${epoch}`,
    `migrate refused: the sim hypervisor of host ${host} does not migrate live`,
  ]);
  t.deepEqual(cluster.activeHosts("b"), [host]);
  t.is(cluster.world.metrics(host).counter("haring_host_commands_total", { kind: "vm.stop", outcome: "failed" }), 1);
});

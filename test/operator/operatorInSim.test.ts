import test from "ava";
import { requestOperator, type OperatorClientResult } from "../../actors/operator/operatorClient.ts";
import type { OperatorRequest } from "../../actors/operator/operatorMessages.ts";
import type { NodePorts } from "../../actors/ports/nodePorts.ts";
import { ManagerCluster } from "../manager/managerCluster.ts";

/**
 * The operator endpoint as every controller runs it (started by
 * managerOnController.ts) in the simulated cluster of the manager tests:
 * real Paxos controllers and managers, hosts with command executors and
 * simulated hypervisors; an operator node asks with the operator client.
 */
function startedWithOperator(seed: number) {
  const cluster = new ManagerCluster({ seed, hosts: [{ id: "h1" }, { id: "h2" }, { id: "h3" }], vms: [{ id: "a" }, { id: "b" }, { id: "c" }, { id: "d" }], manager: { hostFailuresToTolerate: 1 } });
  let operator!: NodePorts;
  cluster.world.addNode("ops", (ports) => {
    operator = ports;
    return { stop: () => undefined };
  });
  if (cluster.runUntil(() => cluster.allRunning(), 10_000) === undefined) throw new Error("VMs not all running after 10 s");
  cluster.world.runUntil(Math.max(cluster.world.now(), 4_000));
  const ask = (request: OperatorRequest, runMs = 15_000): OperatorClientResult | undefined => {
    let result: OperatorClientResult | undefined;
    requestOperator(operator, request, (outcome) => (result = outcome));
    cluster.runUntil(() => result !== undefined, runMs);
    return result;
  };
  return { cluster, ask };
}

const vmAdd = (requestId: string, vmId: string, cpu: number): OperatorRequest => ({ op: "vm.add", requestId, vmId, cpu, memoryMiB: 1_024, priority: "medium", desiredState: "running", affinity: [], antiAffinity: [] });

test("through the operator endpoint: an add past the room for one host failure is refused naming the shortfall, one that fits runs, asking again changes nothing", (t) => {
  const { cluster, ask } = startedWithOperator(31);
  const leader = cluster.leaderId();
  // 3 hosts x 16 vCPU, the largest held back: 32 usable, 4 x 2 meant to run.
  const refused = ask(vmAdd("big", "big", 26));
  t.like(refused, { ok: true, controllerId: leader });
  const reply = refused?.ok === true ? refused.reply : undefined;
  t.true(reply?.kind === "refused" || reply?.kind === "rejected", JSON.stringify(reply));
  t.regex((reply as { reason: string }).reason, /^vm big refused: needs 2 vCPU more to keep room for 1 host failure/);
  t.false(cluster.view().vms.has("big"));
  const added = ask(vmAdd("fits", "fits", 4));
  t.like(added, { ok: true, reply: { kind: "committed", commandId: "op-ops-fits" } });
  t.truthy(cluster.runUntil(() => cluster.activeHosts("fits").length === 1, 10_000), "the added VM runs");
  const slot = added?.ok === true && added.reply.kind === "committed" ? added.reply.slot : -1;
  t.like(ask(vmAdd("fits", "fits", 4)), { ok: true, reply: { kind: "committed", slot } }, "the same request again: the first outcome, nothing applied twice");
  t.is(cluster.activeHosts("fits").length, 1);
});

test("through the operator endpoint: maintenance moves the host's VMs off, never on two hosts; out of maintenance it is up", (t) => {
  const { cluster, ask } = startedWithOperator(32);
  const host = cluster.activeHosts("a")[0]!;
  const onHost = ["a", "b", "c", "d"].filter((vmId) => cluster.activeHosts(vmId).includes(host));
  t.like(ask({ op: "host.maintenance-enter", requestId: "m-in", hostId: host }), { ok: true, reply: { kind: "committed" } });
  const drained = cluster.runUntil(() => onHost.every((vmId) => cluster.activeHosts(vmId).length === 1 && cluster.activeHosts(vmId)[0] !== host), 15_000);
  t.truthy(drained, `VMs of ${host} run elsewhere`);
  t.is(cluster.view().hosts.get(host)?.state, "maintenance");
  t.deepEqual(cluster.hypervisors.registry.overlaps(), []);
  t.like(ask({ op: "host.maintenance-exit", requestId: "m-out", hostId: host }), { ok: true, reply: { kind: "committed" } });
  t.is(cluster.view().hosts.get(host)?.state, "up");
  t.like(ask({ op: "host.maintenance-exit", requestId: "m-out-again", hostId: host }), { ok: true, reply: { kind: "rejected", reason: `host ${host} is up, not maintenance` } });
});

test("through the operator endpoint: with the leader crashed, the client finds the next one", (t) => {
  const { cluster, ask } = startedWithOperator(33);
  const oldLeader = cluster.leaderId()!;
  cluster.world.crash(oldLeader);
  const result = ask({ op: "vm.set-desired", requestId: "stop-a", vmId: "a", desiredState: "stopped" }, 30_000);
  t.like(result, { ok: true, reply: { kind: "committed" } });
  t.not(result?.ok === true ? result.controllerId : oldLeader, oldLeader);
  t.is(cluster.view().vms.get("a")?.desiredState, "stopped");
  t.truthy(cluster.runUntil(() => cluster.activeHosts("a").length === 0, 10_000), "the host stopped the VM");
});

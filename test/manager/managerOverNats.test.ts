import test from "ava";
import { join } from "node:path";
import { createRejectionCounter } from "../../actors/codec/rejectionCounter.ts";
import { startHostCommandNode, type HostCommandNode } from "../../actors/hostCommands/hostCommandNode.ts";
import { startManagerOnController, type ManagerOnController } from "../../actors/manager/managerOnController.ts";
import { startControllerActor, type ControllerActor } from "../../actors/paxos/controllerActor.ts";
import { startLearnerActor, type LearnerActor } from "../../actors/paxos/learnerActor.ts";
import type { Hypervisor, HypervisorEvent, HypervisorOutcome, VmDefinition, VmStatus } from "../../actors/ports/hypervisor.ts";
import type { ManagerNoteParams } from "../../machines/manager/managerMachine.ts";
import { createPaxosConfig } from "../../machines/paxos/config.ts";
import { startNatsServer, type NatsServer } from "../../runtime/natsServer.ts";
import { connectRealNode, tempDirectory, until, type RealNode } from "../groupcomm/realNodes.ts";

/** An in-memory hypervisor driver on real timers: what the host executor sees of libvirt, minus libvirt. */
class MemoryHypervisor implements Hypervisor {
  readonly driver = "memory";
  readonly supportsLiveMigration = false;
  readonly vms = new Map<string, { definition: VmDefinition; state: VmStatus["state"] }>();
  private readonly handlers = new Set<(event: HypervisorEvent) => void>();
  private later<T>(done: (outcome: HypervisorOutcome<T>) => void, outcome: HypervisorOutcome<T>): void {
    setTimeout(() => done(outcome), 1);
  }
  private status_(vmId: string): VmStatus | undefined {
    const vm = this.vms.get(vmId);
    return vm && { vmId, state: vm.state, virtualization: vm.definition.virtualization, cpuTimeMs: 0 };
  }
  private set(vmId: string, state: VmStatus["state"], event: HypervisorEvent["type"]): void {
    this.vms.get(vmId)!.state = state;
    for (const handler of this.handlers) setTimeout(() => handler({ type: event, vmId } as HypervisorEvent), 1);
  }
  list(done: (outcome: HypervisorOutcome<readonly VmStatus[]>) => void): void {
    this.later(done, { ok: true, value: [...this.vms.keys()].map((vmId) => this.status_(vmId)!) });
  }
  status(vmId: string, done: (outcome: HypervisorOutcome<VmStatus | undefined>) => void): void {
    this.later(done, { ok: true, value: this.status_(vmId) });
  }
  define(definition: VmDefinition, done: (outcome: HypervisorOutcome<void>) => void): void {
    if (!this.vms.has(definition.vmId)) this.vms.set(definition.vmId, { definition, state: "shutoff" });
    this.later(done, { ok: true, value: undefined });
  }
  start(vmId: string, done: (outcome: HypervisorOutcome<void>) => void): void {
    if (!this.vms.has(vmId)) return this.later(done, { ok: false, reason: "not-found", error: `no vm ${vmId}` });
    this.set(vmId, "running", "started");
    this.later(done, { ok: true, value: undefined });
  }
  stop(vmId: string, _force: boolean, done: (outcome: HypervisorOutcome<void>) => void): void {
    if (!this.vms.has(vmId)) return this.later(done, { ok: false, reason: "not-found", error: `no vm ${vmId}` });
    this.set(vmId, "shutoff", "stopped");
    this.later(done, { ok: true, value: undefined });
  }
  reset(vmId: string, done: (outcome: HypervisorOutcome<void>) => void): void {
    this.later(done, this.vms.has(vmId) ? { ok: true, value: undefined } : { ok: false, reason: "not-found", error: `no vm ${vmId}` });
  }
  pause(_vmId: string, done: (outcome: HypervisorOutcome<void>) => void): void {
    this.later(done, { ok: false, reason: "unsupported", error: "no pause" });
  }
  resume(_vmId: string, done: (outcome: HypervisorOutcome<void>) => void): void {
    this.later(done, { ok: false, reason: "unsupported", error: "no resume" });
  }
  guestPing(_vmId: string, _timeoutMs: number, done: (outcome: HypervisorOutcome<void>) => void): void {
    this.later(done, { ok: false, reason: "unsupported", error: "no guest channel" });
  }
  onEvent(handler: (event: HypervisorEvent) => void): { unsubscribe(): void } {
    this.handlers.add(handler);
    return { unsubscribe: () => void this.handlers.delete(handler) };
  }
}

let server: NatsServer;
let data: ReturnType<typeof tempDirectory>;
const nodes: RealNode[] = [];
const actors: { stop(): void }[] = [];

test.before(async () => {
  server = await startNatsServer();
  data = tempDirectory("haring-manager-");
});

test.after.always(async () => {
  for (const actor of actors.reverse()) actor.stop();
  for (const node of nodes) await node.close().catch(() => undefined);
  await server?.stop();
  data?.remove();
});

test("over a real nats-server: the leader's manager places a VM and starts it through command multicast on the host's executor", async (t) => {
  const controllerNode = await connectRealNode("c1", server.url, join(data.path, "c1"), "mgr");
  const hostNode = await connectRealNode("h1", server.url, join(data.path, "h1"), "mgr");
  nodes.push(controllerNode, hostNode);
  const config = createPaxosConfig(["c1"]);
  const controller: ControllerActor = startControllerActor(controllerNode.ports, { config, bootstrap: true, rejections: createRejectionCounter(controllerNode.ports), kvMirror: false });
  actors.push(controller);
  const notes: ManagerNoteParams[] = [];
  // One host cannot keep room for a host failure: F = 0, or the view (configured by this manager) refuses the VM.
  const manager: ManagerOnController = startManagerOnController(controllerNode.ports, {
    controller,
    rejections: createRejectionCounter(controllerNode.ports),
    config: { hostFailuresToTolerate: 0 },
    onNote: (note) => notes.push(note),
  });
  actors.push(manager);

  const hypervisor = new MemoryHypervisor();
  const hostPorts = { ...hostNode.ports, hypervisor };
  const learner: LearnerActor = startLearnerActor(hostPorts, { config, rejections: createRejectionCounter(hostPorts) });
  actors.push(learner);
  // No host agent here: the host holds a lease for the whole test (leases have their own tests).
  const host: HostCommandNode = startHostCommandNode(hostPorts, { views: learner, lease: () => ({ phase: "leased", incarnation: 1, leaseUntilMs: Number.MAX_SAFE_INTEGER }), rejections: createRejectionCounter(hostPorts) });
  actors.push(host);
  await until(() => host.member.status === "consuming", "the host's command member consuming");

  const outcomes: string[] = [];
  const record = (outcome: { kind: string }) => outcomes.push(outcome.kind);
  controller.propose({ id: "register-h1", type: "host.register", hostId: "h1", capacity: { cpu: 8, memoryMiB: 16_384 } }, record);
  controller.propose({ id: "up-h1", type: "host.up", hostId: "h1", incarnation: 0 }, record);
  controller.propose({ id: "add-vm1", type: "vm.add", vmId: "vm1", resources: { cpu: 2, memoryMiB: 2_048 }, priority: "high", rules: { affinity: [], antiAffinity: [] }, desiredState: "running" }, record);
  await until(() => hypervisor.vms.get("vm1")?.state === "running", "vm1 running on h1", 15_000);
  t.deepEqual(outcomes, ["committed", "committed", "committed"]);
  t.is(controller.view().vms.get("vm1")!.placement!.hostId, "h1");
  t.deepEqual(hypervisor.vms.get("vm1")!.definition, { vmId: "vm1", virtualization: "full", vcpus: 2, memoryMiB: 2_048 });
  await until(() => notes.some((note) => note.note === "started" && note.fields.vmId === "vm1"), "the manager saw it started");
  t.true(manager.manager.isActive());
  t.deepEqual(
    notes.map((note) => note.note).filter((note) => note !== "pending"),
    ["activated", "configure-proposed", "placement-proposed", "placed", "started"],
  );
  t.is(controller.view().hostFailuresToTolerate, 0, "the manager's F is in the view");
});

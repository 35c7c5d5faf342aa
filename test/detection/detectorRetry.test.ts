import test from "ava";
import { createRejectionCounter } from "../../actors/codec/rejectionCounter.ts";
import { maxRefusedProposalAttempts, refusedProposalRetryMs, startDetectorOnController } from "../../actors/detection/detectorOnController.ts";
import { heartbeatMessages } from "../../actors/heartbeat/heartbeatMessages.ts";
import type { ControllerActor } from "../../actors/paxos/controllerActor.ts";
import type { ProposeResult } from "../../actors/paxos/proposalClientActor.ts";
import type { Network } from "../../actors/ports/network.ts";
import { clusterSubjects } from "../../actors/subjects.ts";
import type { AppliedCommand } from "../../machines/paxos/replicatedStateMachine.ts";
import { defaultFailureDetectorConfig } from "../../machines/detection/detectionConfig.ts";
import type { ViewCommand } from "../../machines/view/viewCommands.ts";
import { viewStateMachine } from "../../machines/view/viewStateMachine.ts";
import type { View } from "../../machines/view/viewTypes.ts";
import { SimWorld } from "../../sim/world.ts";

const clusterId = "retry";
const tickIntervalMs = 25;

/**
 * A controller that leads forever and whose proposal client refuses the first
 * `refusals` proposals (its window full); an accepted one is applied at once.
 */
function fakeController(refusals: number) {
  let view: View = viewStateMachine.apply(viewStateMachine.initialState, 0, [
    { id: "reg-h1", type: "host.register", hostId: "h1", capacity: { cpu: 8, memoryMiB: 8_192 } },
  ]).state;
  let slot = 1;
  const listeners = new Set<(applied: readonly AppliedCommand[], view: View, appliedSlots: number) => void>();
  const proposals: { command: ViewCommand; ok: boolean }[] = [];
  const controller = {
    nodeId: "c1",
    status: "running",
    view: () => view,
    core: () => ({ proposer: { role: "leader", leader: { leaseUntilMs: Number.MAX_SAFE_INTEGER } } }),
    onApplied(listener: (applied: readonly AppliedCommand[], view: View, appliedSlots: number) => void) {
      listeners.add(listener);
      return { unsubscribe: () => void listeners.delete(listener) };
    },
    propose(command: ViewCommand): ProposeResult {
      const ok = proposals.filter((proposal) => !proposal.ok).length >= refusals;
      proposals.push({ command, ok });
      if (!ok) return { ok: false, error: "more than 1024 proposals outstanding" };
      const result = viewStateMachine.apply(view, slot, [command]);
      view = result.state;
      const applied = [{ slot, commandId: command.id, outcome: result.outcomes[0]! }];
      slot++;
      for (const listener of listeners) listener(applied, view, slot);
      return { ok: true };
    },
  };
  return { controller: controller as unknown as ControllerActor, proposals, view: () => view };
}

/** A controller running the detector, and a monitor that reports hearing h1 (incarnation 1) every 100 ms. */
function run(refusals: number, forMs: number) {
  const world = new SimWorld({ seed: 3, clusterId, network: { latency: { baseMs: 1, jitterMs: 0 } } });
  const fake = fakeController(refusals);
  world.addNode("c1", (ports) => {
    const onController = startDetectorOnController(ports, {
      controller: fake.controller,
      config: defaultFailureDetectorConfig,
      tickIntervalMs,
      rejections: createRejectionCounter(ports),
    });
    return { stop: () => onController.stop() };
  });
  let monitorNetwork: Network | undefined;
  let monitorNow = () => 0;
  world.addNode("m1", (ports) => {
    monitorNetwork = ports.network;
    monitorNow = () => ports.clock.now();
    return { stop: () => undefined };
  });
  let sequence = 0;
  const report = () => {
    sequence++;
    const body = { monitorId: "m1", boot: "b1", sequence, sentAtMs: monitorNow(), heard: [{ hostId: "h1", incarnation: 1, heardAtMs: monitorNow() }], probes: [], complete: true, echo: null };
    monitorNetwork!.publish(clusterSubjects(clusterId).monitorReport, heartbeatMessages.encode("mon.digest", "m1", `d${sequence}`, body));
    world.schedule(100, report);
  };
  world.schedule(100, report);
  world.runFor(forMs);
  return { fake, world };
}

test("a host.up the proposal client refused is proposed again on a later tick until taken", (t) => {
  const { fake, world } = run(3, 4_000);
  const ups = fake.proposals.filter((proposal) => proposal.command.type === "host.up");
  t.true(ups.length >= 4, JSON.stringify(fake.proposals));
  t.deepEqual(
    ups.slice(0, 4).map((proposal) => proposal.ok),
    [false, false, false, true],
  );
  t.is(fake.view().hosts.get("h1")?.state, "up");
  t.true(world.transcriptLines().some((line) => line.includes("detector.proposal-retried")));
});

test("retries are bounded: a proposal refused every time is given up with a warning", (t) => {
  const forMs = (maxRefusedProposalAttempts + 10) * refusedProposalRetryMs + 2_000;
  const { fake, world } = run(Number.MAX_SAFE_INTEGER, forMs);
  const ups = fake.proposals.filter((proposal) => proposal.command.type === "host.up");
  t.is(fake.view().hosts.get("h1")?.state, "joining");
  t.true(ups.length >= maxRefusedProposalAttempts, `${ups.length}`);
  t.true(world.transcriptLines().some((line) => line.includes("detector.proposal-abandoned")));
});

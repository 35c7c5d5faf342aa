import test from "ava";
import { createRejectionCounter } from "../../actors/codec/rejectionCounter.ts";
import { startHeartbeatMonitor } from "../../actors/heartbeat/heartbeatMonitorActor.ts";
import { startHeartbeatSender, type HeartbeatSenderHost } from "../../actors/heartbeat/heartbeatSenderActor.ts";
import { rendezvousOrder } from "../../machines/heartbeat/rendezvousOrder.ts";
import { runHeartbeatCluster } from "../../sim/runs/heartbeatCluster.ts";
import { SimWorld } from "../../sim/world.ts";

const config = { heartbeatIntervalMs: 200, missedAcksBeforeSwitch: 2, driftBackAfterMs: 10_000 };

/** The same actor code as heartbeatOverNats.test.ts, on simulated ports. */
function heartbeatWorld(seed: number) {
  const world = new SimWorld({ seed, clusterId: "test" });
  const monitorIds = ["m1", "m2", "m3"];
  for (const monitorId of monitorIds) {
    world.addNode(monitorId, (ports) => {
      const monitor = startHeartbeatMonitor(ports, { rejections: createRejectionCounter(ports) });
      return { stop: () => monitor.dispose() };
    });
  }
  let sender: HeartbeatSenderHost | undefined;
  world.addNode("h1", (ports) => {
    sender = startHeartbeatSender(ports, { monitorIds, config, ackTimeoutMs: 150, rejections: createRejectionCounter(ports) });
    return { stop: () => sender?.dispose() };
  });
  const context = () => sender!.getSnapshot()!.context;
  const target = () => context().monitorOrder[context().targetIndex];
  const order = rendezvousOrder("h1", monitorIds) as [string, string, string];
  return { world, context, target, order };
}

test("in the simulator the host stays on its preferred monitor while nothing fails", (t) => {
  const { world, context, target, order } = heartbeatWorld(1);
  world.runFor(10_000);
  t.is(target(), order[0]);
  t.is(context().switches, 0);
  t.is(context().acksReceived, 50);
});

test("a crashed monitor makes the host switch within missedAcksBeforeSwitch beats, and drift back after it returns", (t) => {
  const { world, context, target, order } = heartbeatWorld(2);
  world.runFor(1_000);
  world.crash(order[0]);
  world.runFor(config.heartbeatIntervalMs * config.missedAcksBeforeSwitch + 50);
  t.is(target(), order[1]);
  world.restart(order[0]);
  world.runFor(config.driftBackAfterMs + 1_000);
  t.is(target(), order[0]);
  t.is(context().switches, 2);
});

test("a one-way partition (host to monitor) is detected like a crash; the healed link is used again", (t) => {
  const { world, target, order } = heartbeatWorld(3);
  world.runFor(1_000);
  world.blockLink("h1", order[0]);
  world.runFor(1_000);
  t.is(target(), order[1]);
  world.heal();
  world.runFor(config.driftBackAfterMs + 1_000);
  t.is(target(), order[0]);
});

test("a paused monitor shorter than the switch threshold causes no switch", (t) => {
  const { world, context, order } = heartbeatWorld(4);
  world.runFor(1_000);
  world.pause(order[0], 100);
  world.runFor(2_000);
  t.is(context().switches, 0);
});

test("the default simulation is deterministic: same seed, same bytes; other seeds differ", (t) => {
  const options = { hosts: 30, monitors: 3, durationMs: 6_000 };
  const first = runHeartbeatCluster({ seed: 11, ...options });
  const again = runHeartbeatCluster({ seed: 11, ...options });
  const other = runHeartbeatCluster({ seed: 12, ...options });
  t.true(first.ok, first.failures.join("; "));
  t.is(first.transcript, again.transcript);
  t.is(first.summaryText, again.summaryText);
  t.not(first.transcript, other.transcript);
  t.true(first.summary.targetSwitches > 0, "the monitor crash moved hosts");
});

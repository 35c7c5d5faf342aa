import test from "ava";
import { createActor } from "xstate";
import { heartbeatSenderMachine, type SendHeartbeatParams, type TargetSwitchedParams } from "../../machines/heartbeat/heartbeatSender.ts";
import { rendezvousOrder } from "../../machines/heartbeat/rendezvousOrder.ts";
import { VirtualClock } from "../../sim/virtualClock.ts";

const config = { heartbeatIntervalMs: 200, missedAcksBeforeSwitch: 2, driftBackAfterMs: 5_000 };

function startSender(answer: (params: SendHeartbeatParams) => "ack" | "miss") {
  const virtualClock = new VirtualClock();
  const clock = {
    setTimeout: (callback: () => void, delayMs: number) => virtualClock.schedule(delayMs, callback),
    clearTimeout: (handle: unknown) => virtualClock.cancel(handle),
  };
  const sent: Array<SendHeartbeatParams & { atMs: number }> = [];
  const switches: Array<TargetSwitchedParams & { atMs: number }> = [];
  const actor = createActor(
    heartbeatSenderMachine.provide({
      actions: {
        sendHeartbeat: (_, params) => {
          sent.push({ ...params, atMs: virtualClock.now() });
          // the reply arrives 50 ms later, as a request outcome would
          virtualClock.schedule(50, () =>
            actor.send({
              type: answer(params) === "ack" ? "heartbeat.acked" : "heartbeat.missed",
              sequence: params.sequence,
              monitorId: params.monitorId,
            }),
          );
        },
        targetSwitched: (_, params) => switches.push({ ...params, atMs: virtualClock.now() }),
      },
    }),
    { input: { hostId: "h1", monitorIds: ["m1", "m2", "m3"], config }, clock },
  );
  actor.start();
  return { actor, virtualClock, sent, switches };
}

test("rendezvous order is a stable permutation and spreads hosts over monitors", (t) => {
  const monitors = ["m1", "m2", "m3"];
  t.deepEqual(rendezvousOrder("h1", monitors), rendezvousOrder("h1", [...monitors].reverse()));
  t.deepEqual([...rendezvousOrder("h1", monitors)].sort(), monitors);
  const preferredCounts = new Map<string, number>();
  for (let host = 0; host < 3_000; host++) {
    const preferred = rendezvousOrder(`h${host}`, monitors)[0]!;
    preferredCounts.set(preferred, (preferredCounts.get(preferred) ?? 0) + 1);
  }
  for (const monitor of monitors) {
    const count = preferredCounts.get(monitor) ?? 0;
    t.true(count > 800 && count < 1_200, `${monitor} preferred by ${count} of 3000 hosts`);
  }
});

test("a host heartbeats its preferred monitor every interval while acks arrive", (t) => {
  const { actor, virtualClock, sent, switches } = startSender(() => "ack");
  virtualClock.runUntil(1_000);
  const preferred = rendezvousOrder("h1", ["m1", "m2", "m3"])[0];
  t.deepEqual(sent.map((s) => s.atMs), [0, 200, 400, 600, 800, 1_000]);
  t.true(sent.every((s) => s.monitorId === preferred));
  t.deepEqual(sent.map((s) => s.sequence), [1, 2, 3, 4, 5, 6]);
  t.deepEqual(switches, []);
  t.is(actor.getSnapshot().context.acksReceived, 5);
});

test("after missedAcksBeforeSwitch misses the host switches to the next monitor at once", (t) => {
  const order = rendezvousOrder("h1", ["m1", "m2", "m3"]);
  const { virtualClock, sent, switches } = startSender((params) => (params.monitorId === order[0] ? "miss" : "ack"));
  virtualClock.runUntil(1_000);
  t.deepEqual(switches.map(({ from, to, reason, atMs }) => ({ from, to, reason, atMs })), [
    { from: order[0]!, to: order[1]!, reason: "missed-acks", atMs: 250 },
  ]);
  // the switch re-sends immediately to the new target rather than waiting out the interval
  t.deepEqual(
    sent.map((s) => [s.atMs, s.monitorId]),
    [[0, order[0]], [200, order[0]], [250, order[1]], [450, order[1]], [650, order[1]], [850, order[1]]],
  );
});

test("a single missed ack does not switch; acks reset the streak", (t) => {
  let call = 0;
  const { virtualClock, switches } = startSender(() => (++call % 2 === 0 ? "miss" : "ack"));
  virtualClock.runUntil(3_000);
  t.deepEqual(switches, []);
});

test("late acks from a monitor the host already left are ignored", (t) => {
  const order = rendezvousOrder("h1", ["m1", "m2", "m3"]);
  const { actor, virtualClock } = startSender((params) => (params.monitorId === order[0] ? "miss" : "ack"));
  virtualClock.runUntil(300);
  const before = actor.getSnapshot().context.acksReceived;
  actor.send({ type: "heartbeat.acked", sequence: 1, monitorId: order[0]! });
  t.is(actor.getSnapshot().context.acksReceived, before);
});

test("on a fallback monitor the host drifts back to its preferred one after driftBackAfterMs", (t) => {
  const order = rendezvousOrder("h1", ["m1", "m2", "m3"]);
  let preferredDown = true;
  const { virtualClock, switches, sent } = startSender((params) =>
    params.monitorId === order[0] && preferredDown ? "miss" : "ack",
  );
  virtualClock.runUntil(1_000);
  preferredDown = false;
  virtualClock.runUntil(6_000);
  t.deepEqual(
    switches.map(({ to, reason, atMs }) => ({ to, reason, atMs })),
    [
      { to: order[1]!, reason: "missed-acks", atMs: 250 },
      { to: order[0]!, reason: "drift-back", atMs: 5_250 },
    ],
  );
  t.is(sent.at(-1)!.monitorId, order[0]!);
});

test("when every monitor misses, the host keeps rotating through all of them", (t) => {
  const { virtualClock, switches } = startSender(() => "miss");
  virtualClock.runUntil(2_000);
  const order = rendezvousOrder("h1", ["m1", "m2", "m3"]);
  t.deepEqual(switches.slice(0, 4).map((s) => s.to), [order[1]!, order[2]!, order[0]!, order[1]!]);
});

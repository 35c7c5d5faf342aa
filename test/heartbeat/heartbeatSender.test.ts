import test from "ava";
import { createActor } from "xstate";
import { heartbeatSenderMachine, type SendHeartbeatParams, type TargetSwitchedParams } from "../../machines/heartbeat/heartbeatSender.ts";
import { rendezvousOrder } from "../../machines/heartbeat/rendezvousOrder.ts";
import { VirtualClock } from "../../sim/virtualClock.ts";

const config = { heartbeatIntervalMs: 200, missedAcksBeforeSwitch: 2, driftBackAfterMs: 5_000 };

/** A miss is known `missAfterMs` after the heartbeat left (the actor's ack timeout); an ack arrives after 50 ms. */
function startSender(answer: (params: SendHeartbeatParams) => "ack" | "miss", missAfterMs = 50, senderConfig = config) {
  const virtualClock = new VirtualClock();
  const clock = {
    setTimeout: (callback: () => void, delayMs: number) => virtualClock.schedule(delayMs, callback),
    clearTimeout: (handle: unknown) => virtualClock.cancel(handle),
  };
  const sent: Array<SendHeartbeatParams & { atMs: number; copy: boolean }> = [];
  const switches: Array<TargetSwitchedParams & { atMs: number }> = [];
  // a copy to the anchor is the same request as a heartbeat to the target, as in the actor
  const request = (params: SendHeartbeatParams, copy: boolean) => {
    sent.push({ ...params, atMs: virtualClock.now(), copy });
    // the outcome arrives later, as a request's would
    const outcome = answer(params);
    virtualClock.schedule(outcome === "ack" ? 50 : missAfterMs, () =>
      actor.send({ type: outcome === "ack" ? "heartbeat.acked" : "heartbeat.missed", sequence: params.sequence, monitorId: params.monitorId }),
    );
  };
  const actor = createActor(
    heartbeatSenderMachine.provide({
      actions: {
        sendHeartbeat: (_, params) => request(params, false),
        sendAnchorHeartbeat: (_, params) => request(params, true),
        targetSwitched: (_, params) => switches.push({ ...params, atMs: virtualClock.now() }),
      },
    }),
    { input: { hostId: "h1", monitorIds: ["m1", "m2", "m3"], config: senderConfig }, clock },
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

function ackTimesOf(actor: ReturnType<typeof startSender>["actor"], virtualClock: VirtualClock): number[] {
  const times: number[] = [];
  let acks = 0;
  actor.subscribe((snapshot) => {
    if (snapshot.context.acksReceived > acks) {
      acks = snapshot.context.acksReceived;
      times.push(virtualClock.now());
    }
  });
  return times;
}

/**
 * Fuzz seed 1274: one monitor answers under loss, the two others can never
 * answer. Blind rotation spent two beats on each silent monitor every time the
 * answering one missed twice, and went longer than the heartbeat invariant's
 * maxAckGap (interval × (missedAcksBeforeSwitch × monitors + 4) = 10 beats)
 * without an ack: answering monitor, 2 misses; both silent monitors, 4 beats;
 * answering monitor, 2 more misses; silent ones, 4 beats; an ack only at the
 * 13th beat. Now the answering monitor (the anchor) gets every beat, as the
 * target or as a copy, while the others are tried, and the host goes back to
 * it as soon as it answers a copy and the monitor tried misses. A miss is
 * known after 80% of the interval, as with the detection defaults
 * (ackTimeoutMs 80 of heartbeatIntervalMs 100).
 */
test("with one monitor answering under loss and two never answering, the host keeps going back to the one that answers", (t) => {
  const order = rendezvousOrder("h1", ["m1", "m2", "m3"]);
  const answering = order[0]!;
  // what the answering monitor does with each heartbeat it gets (its copies too), in turn; then it acks
  const fates = ["ack", "miss", "miss", "ack", "ack", "miss", "miss", "miss", "miss"] as const;
  let heard = 0;
  const { actor, virtualClock, sent, switches } = startSender(
    (params) => (params.monitorId !== answering ? "miss" : (fates[heard++] ?? "ack")),
    config.heartbeatIntervalMs * 0.8,
  );
  const ackTimes = ackTimesOf(actor, virtualClock);
  virtualClock.runUntil(5_000);
  const maxAckGapMs = config.heartbeatIntervalMs * (config.missedAcksBeforeSwitch * 3 + 4);
  const gaps = ackTimes.slice(1).map((atMs, i) => atMs - ackTimes[i]!);
  t.true(Math.max(...gaps) <= maxAckGapMs, `gaps between acks: ${gaps.join(", ")} ms`);
  // four losses in a row cost four beats: the answering monitor heard every one of them
  t.true(Math.max(...gaps) <= 5 * config.heartbeatIntervalMs, `gaps between acks: ${gaps.join(", ")} ms`);
  t.deepEqual(switches.map((s) => [s.from, s.to, s.reason]), [
    // two misses: try the next monitor, copying the beat to the answering one, which acks the copy
    [answering, order[1]!, "missed-acks"],
    [order[1]!, answering, "anchor-answered"],
    // two misses again: the next monitor in turn; the first one is silent now, so it gets one beat
    [answering, order[1]!, "missed-acks"],
    [order[1]!, order[2]!, "missed-acks"],
    [order[2]!, answering, "anchor-answered"],
  ]);
  const toAnswering = sent.filter((s) => s.monitorId === answering).map((s) => s.atMs);
  const spacing = toAnswering.slice(1).map((atMs, i) => atMs - toAnswering[i]!);
  t.true(Math.max(...spacing) <= config.heartbeatIntervalMs, `the answering monitor gets every beat: ${toAnswering.join(", ")}`);
  t.is(actor.getSnapshot().context.monitorOrder[actor.getSnapshot().context.targetIndex], answering);
});

test("when the monitor that acked last dies, the host tries every other monitor in turn without going back to it", (t) => {
  const order = rendezvousOrder("h1", ["m1", "m2", "m3"]);
  let heardByPreferred = 0;
  let preferredDead = false;
  let thirdAlive = false;
  const { actor, virtualClock, sent, switches } = startSender((params) => {
    if (params.monitorId === order[0]) return preferredDead || ++heardByPreferred <= 2 ? "miss" : "ack";
    if (params.monitorId === order[2]) return thirdAlive ? "ack" : "miss";
    return "miss";
  });
  // the first two heartbeats are lost: both other monitors are tried, fail, and are silent
  virtualClock.runUntil(3_000);
  t.is(actor.getSnapshot().context.monitorOrder[actor.getSnapshot().context.targetIndex], order[0]);
  preferredDead = true;
  thirdAlive = true;
  const beats = () => sent.filter((s) => !s.copy);
  const diedAtBeat = beats().length;
  virtualClock.runUntil(6_000);
  t.deepEqual(switches.slice(3).map((s) => [s.from, s.to]), [
    [order[0]!, order[1]!],
    // one beat on the silent monitor, then the next one: the dead monitor gets its copies, not a turn
    [order[1]!, order[2]!],
  ]);
  const foundAtBeat = beats().findIndex((s, i) => i >= diedAtBeat && s.monitorId === order[2]) + 1;
  // within missedAcksBeforeSwitch + (monitors − 1) beats: two fewer than with returns to the dead monitor
  t.true(foundAtBeat - diedAtBeat <= config.missedAcksBeforeSwitch + 2, `found the live monitor at beat ${foundAtBeat - diedAtBeat} after the death`);
  t.is(sent.at(-1)!.monitorId, order[2]!);
  t.false(sent.at(-1)!.copy, "no copies once the live monitor acked");
});

test("with missedAcksBeforeSwitch 1 too, the monitor that acked last gets every beat while the host tries the others", (t) => {
  const order = rendezvousOrder("h1", ["m1", "m2", "m3"]);
  let heard = 0;
  const { virtualClock, sent, switches } = startSender((params) => (params.monitorId === order[0] && heard++ % 2 === 0 ? "ack" : "miss"), 50, { ...config, missedAcksBeforeSwitch: 1 });
  virtualClock.runUntil(3_000);
  t.deepEqual(switches.slice(0, 6).map((s) => [s.to, s.reason]), [
    [order[1]!, "missed-acks"],
    [order[2]!, "missed-acks"],
    [order[0]!, "anchor-answered"],
    [order[1]!, "missed-acks"],
    [order[2]!, "missed-acks"],
    [order[0]!, "anchor-answered"],
  ]);
  const toAnswering = sent.filter((s) => s.monitorId === order[0]).map((s) => s.atMs);
  const spacing = toAnswering.slice(1).map((atMs, i) => atMs - toAnswering[i]!);
  t.true(Math.max(...spacing) <= config.heartbeatIntervalMs, `the monitor that acked last gets every beat: ${toAnswering.join(", ")}`);
});

/**
 * The sender as the host agent runs it with failure detection: 100 ms beats,
 * a miss known 80 ms after the heartbeat left (the ack timeout), acks after
 * `ackLatencyMs` (per monitor), leases of 1,100 ms from the send time, and
 * anchor copies answered like any heartbeat. `fate` decides each heartbeat
 * (target or copy) as it leaves.
 */
function startLeasedSender(
  fate: (sent: SentHeartbeat) => "ack" | "miss",
  ackLatencyMs: (monitorId: string) => number = () => 10,
  // a monitor with no responders fails at once; otherwise a miss is the ack timeout running out
  missLatencyMs: (monitorId: string) => number = () => 80,
) {
  const leasedConfig = { heartbeatIntervalMs: 100, missedAcksBeforeSwitch: 2, driftBackAfterMs: 3_000 };
  const leaseMs = 1_100;
  const virtualClock = new VirtualClock();
  const clock = {
    setTimeout: (callback: () => void, delayMs: number) => virtualClock.schedule(delayMs, callback),
    clearTimeout: (handle: unknown) => virtualClock.cancel(handle),
  };
  const sent: SentHeartbeat[] = [];
  const switches: Array<TargetSwitchedParams & { atMs: number }> = [];
  const isolations: Array<{ reason: string; atMs: number }> = [];
  const ackTimes: number[] = [];
  let leaseTimer: unknown;
  const request = (params: SendHeartbeatParams, copy: boolean) => {
    const record: SentHeartbeat = { ...params, atMs: virtualClock.now(), copy };
    sent.push(record);
    const ack = fate(record) === "ack";
    virtualClock.schedule(ack ? ackLatencyMs(params.monitorId) : missLatencyMs(params.monitorId), () => {
      if (!ack) return actor.send({ type: "heartbeat.missed", sequence: params.sequence, monitorId: params.monitorId });
      ackTimes.push(virtualClock.now());
      actor.send({ type: "heartbeat.acked", sequence: params.sequence, monitorId: params.monitorId, grant: "lease", leaseMs, sentAtMs: record.atMs, receivedAtMs: virtualClock.now() });
    });
  };
  const actor = createActor(
    heartbeatSenderMachine.provide({
      actions: {
        sendHeartbeat: (_, params) => request(params, false),
        sendAnchorHeartbeat: (_, params) => request(params, true),
        targetSwitched: (_, params) => switches.push({ ...params, atMs: virtualClock.now() }),
        isolate: (_, params) => {
          isolations.push({ reason: params.reason, atMs: virtualClock.now() });
          virtualClock.schedule(5, () => actor.send({ type: "isolation.done", incarnation: params.incarnation + 1 }));
        },
        leaseExtended: (_, { leaseUntilMs }) => {
          if (leaseTimer !== undefined) virtualClock.cancel(leaseTimer);
          leaseTimer = virtualClock.schedule(Math.max(0, leaseUntilMs - virtualClock.now()), () => actor.send({ type: "lease.expired", nowMs: virtualClock.now() }));
        },
      },
    }),
    { input: { hostId: "h1", monitorIds: ["m1", "m2", "m3"], config: leasedConfig, lease: { persistedIncarnation: 0, maxAcceptedLeaseMs: leaseMs } }, clock },
  );
  actor.start();
  return { actor, virtualClock, sent, switches, isolations, ackTimes, config: leasedConfig };
}

type SentHeartbeat = SendHeartbeatParams & { readonly atMs: number; readonly copy: boolean };

const largestGap = (times: readonly number[]): number => Math.max(0, ...times.slice(1).map((atMs, i) => atMs - times[i]!));

/**
 * Fuzz seed 1271: h6 reached only c2 both ways (one-way cuts towards c3 and
 * from c1) under 17% loss, so about one round trip in three to c2 failed.
 * Every switch took a beat away from c2, and a stint of two misses on c2 made
 * c2 itself silent, so from then on it got one beat in two: of the 11 beats
 * after its last ack only 7 went to c2, all lost, and the lease ran out
 * (13.38 s + 1.1 s) although c2 answered again. Here the answering monitor
 * loses 8 heartbeats in a row; each beat must still reach it, so its 9th
 * heartbeat, 900 ms after the last ack, renews the lease. Before, its 8 losses
 * were spread over 12 beats and the lease ran out.
 */
test("a host whose only answering monitor loses eight heartbeats in a row keeps its lease: every beat still reaches that monitor", (t) => {
  const order = rendezvousOrder("h1", ["m1", "m2", "m3"]);
  const answering = order[0]!;
  const fates = ["ack", "ack", "ack", "ack", "ack", "miss", "miss", "miss", "miss", "miss", "miss", "miss", "miss"] as const;
  let heard = 0;
  const { virtualClock, sent, isolations, ackTimes, switches } = startLeasedSender((heartbeat) => (heartbeat.monitorId !== answering ? "miss" : (fates[heard++] ?? "ack")));
  virtualClock.runUntil(4_000);
  t.deepEqual(isolations.map((i) => i.reason), ["boot"], "no isolation but the one at boot: the lease never ran out");
  t.true(largestGap(ackTimes) <= 900, `gaps between acks: largest ${largestGap(ackTimes)} ms`);
  const streakStart = sent.filter((s) => s.monitorId === answering)[5]!.atMs;
  const streakEnd = sent.filter((s) => s.monitorId === answering)[13]!.atMs;
  const beatsToAnswering = sent.filter((s) => s.monitorId === answering && s.atMs >= streakStart && s.atMs <= streakEnd).map((s) => s.atMs);
  t.true(largestGap(beatsToAnswering) <= 100, `heartbeats to the answering monitor during its losses: ${beatsToAnswering.join(", ")}`);
  t.true(order.slice(1).every((other) => sent.some((s) => s.monitorId === other && s.atMs > streakStart && s.atMs < streakEnd)), "every other monitor is still tried during the losses");
  t.true(switches.some((s) => s.reason === "anchor-answered"), "the host went back to the answering monitor when it answered a copy");
});

test("copies go to the monitor that acked last only while the target has not acked, each with a sequence number of its own", (t) => {
  const order = rendezvousOrder("h1", ["m1", "m2", "m3"]);
  let preferredAlive = true;
  const { virtualClock, sent } = startLeasedSender((heartbeat) => (heartbeat.monitorId === order[0] && !preferredAlive ? "miss" : "ack"));
  virtualClock.runUntil(1_000);
  t.false(sent.some((s) => s.copy), "no copies while the target acks");
  preferredAlive = false;
  virtualClock.runUntil(2_000);
  const sequences = sent.map((s) => s.sequence);
  t.deepEqual(new Set(sequences).size, sequences.length);
  // the preferred monitor dies: after two misses the host tries the next one, copying that beat to the dead preferred one; the next acks at once
  t.deepEqual(
    sent.filter((s) => s.atMs > 1_000).slice(0, 5).map((s) => [s.monitorId, s.copy]),
    [[order[0], false], [order[0], false], [order[1], false], [order[0], true], [order[1], false]],
  );
});

test("after a drift-back the preferred monitor keeps the host though the fallback answers its copy first; a miss of it while the fallback answers sends the host back", (t) => {
  const order = rendezvousOrder("h1", ["m1", "m2", "m3"]);
  let preferred: "down" | "up" | "lossy" = "down";
  let lossyBeats = 0;
  const { virtualClock, switches } = startLeasedSender(
    (heartbeat) => {
      if (heartbeat.monitorId !== order[0]) return "ack";
      if (preferred === "lossy") return lossyBeats++ === 0 ? "miss" : "ack";
      return preferred === "up" ? "ack" : "miss";
    },
    // the fallback answers faster than the preferred monitor
    (monitorId) => (monitorId === order[0] ? 30 : 2),
  );
  virtualClock.runUntil(1_000);
  preferred = "up";
  virtualClock.runUntil(4_000);
  t.deepEqual(switches.map((s) => [s.from, s.to, s.reason]), [
    [order[0], order[1], "missed-acks"],
    [order[1], order[0], "drift-back"],
  ]);
  // on the fallback again; at the next drift-back the preferred monitor misses once while the fallback answers
  preferred = "down";
  virtualClock.runUntil(4_500);
  preferred = "lossy";
  virtualClock.runUntil(12_000);
  t.deepEqual(switches.slice(2).map((s) => [s.from, s.to, s.reason]), [
    [order[0], order[1], "missed-acks"],
    [order[1], order[0], "drift-back"],
    [order[0], order[1], "anchor-answered"],
    [order[1], order[0], "drift-back"],
  ]);
});

test("a copy's miss that arrives after the host went back to the monitor that acked last does not count in that monitor's new stint", (t) => {
  const order = rendezvousOrder("h1", ["m1", "m2", "m3"]);
  const anchor = order[0]!;
  // the anchor's answers in turn: acks, two misses (the host tries m2), a copy acked, a copy lost, one more miss as target, then acks
  const fates = ["ack", "ack", "ack", "miss", "miss", "ack", "miss", "miss"] as const;
  let heard = 0;
  const { virtualClock, switches } = startLeasedSender(
    (heartbeat) => (heartbeat.monitorId !== anchor ? "miss" : (fates[heard++] ?? "ack")),
    () => 10,
    // the monitor tried first has no responders: its misses come at once, before the copies' outcomes
    (monitorId) => (monitorId === order[1] ? 1 : 80),
  );
  virtualClock.runUntil(2_000);
  // back at the tried monitor's second miss, with the second copy still out; when that copy's miss comes it
  // belongs to the stint before, so the anchor's own miss that follows is the first of its stint, not the second
  t.deepEqual(switches.map((s) => [s.from, s.to, s.reason]), [
    [anchor, order[1], "missed-acks"],
    [order[1], anchor, "anchor-answered"],
  ]);
});

/**
 * The other half of seed 1271's family (the scenario one-monitor-under-loss,
 * seed 16, on the first version of this fix): the monitor that acked last
 * stops answering (a one-way cut), and the only one left that can answer loses
 * heartbeats; it was silent since the host's first seconds, so it gets one beat
 * per turn. When the host went back to the dead monitor after every trial, the
 * live one got every fourth beat: its fourth heartbeat left 1.08 s after the
 * last ack, too late for a 1.1 s lease. With the dead one getting copies
 * instead of turns, the live one gets every other beat.
 */
test("when the monitor that acked last stops answering and the only live one loses heartbeats, the live one gets every other beat and the lease holds", (t) => {
  const order = rendezvousOrder("h1", ["m1", "m2", "m3"]);
  let phase: "boot" | "cut" = "boot";
  let heardByFirst = 0;
  let heardByLive = 0;
  const { virtualClock, sent, isolations, ackTimes } = startLeasedSender((heartbeat) => {
    if (phase === "boot") return heartbeat.monitorId === order[0] && ++heardByFirst > 2 ? "ack" : "miss";
    if (heartbeat.monitorId !== order[1]) return "miss";
    return ++heardByLive > 3 ? "ack" : "miss";
  });
  // both others are tried at boot, fail, and are silent from then on
  virtualClock.runUntil(2_000);
  t.is(isolations.length, 1);
  const lastAckBeforeCut = ackTimes.at(-1)!;
  phase = "cut";
  virtualClock.runUntil(4_000);
  t.deepEqual(isolations.map((i) => i.reason), ["boot"], "the lease never ran out");
  const firstAckAfterCut = ackTimes.find((atMs) => atMs > 2_000)!;
  t.true(firstAckAfterCut - lastAckBeforeCut < 1_000, `acked again ${firstAckAfterCut - lastAckBeforeCut} ms after the last ack before the cut`);
  const tries = sent.filter((s) => s.atMs > 2_000 && s.atMs < firstAckAfterCut && !s.copy).map((s) => s.monitorId);
  t.deepEqual(tries, [order[0], order[0], order[1], order[2], order[1], order[2], order[1], order[2], order[1]]);
});

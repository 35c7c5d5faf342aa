import test from "ava";
import { createActor } from "xstate";
import {
  heartbeatMonitorMachine,
  type AckHeartbeatParams,
  type AuthorityGrant,
  type DigestToSend,
  type ProbeHostsParams,
} from "../../machines/heartbeat/heartbeatMonitor.ts";
import { VirtualClock } from "../../sim/virtualClock.ts";

const reporting = { digestIntervalMs: 100, maxHostsPerDigest: 2, maxProbesInFlight: 8 };

function startMonitor(options: { reports?: boolean } = {}) {
  const clock = new VirtualClock();
  const xstateClock = { setTimeout: (callback: () => void, delayMs: number) => clock.schedule(delayMs, callback), clearTimeout: (handle: unknown) => clock.cancel(handle) };
  const acks: AckHeartbeatParams[] = [];
  const digests: Array<DigestToSend & { atMs: number }> = [];
  const probes: ProbeHostsParams["probes"][number][] = [];
  const actor = createActor(
    heartbeatMonitorMachine.provide({
      actions: {
        ackHeartbeat: (_, params) => acks.push(params),
        sendDigest: (_, params) => digests.push({ ...params, atMs: clock.now() }),
        probeHosts: (_, params) => probes.push(...params.probes),
      },
    }),
    { clock: xstateClock, input: options.reports === false ? { monitorId: "m1" } : { monitorId: "m1", reporting } },
  );
  actor.start();
  const heartbeat = (hostId: string, incarnation: number, sequence = 1) =>
    actor.send({ type: "heartbeat.received", hostId, sequence, incarnation, receivedAtMs: clock.now(), replyTo: `_INBOX.${hostId}` });
  const reply = (sentAtMs: number, grant: Partial<AuthorityGrant> = {}) =>
    actor.send({
      type: "digest.replied",
      sequence: digests.at(-1)!.sequence,
      sentAtMs,
      authority: { termId: "c1.t", seq: 1, validForMs: 500, leaseMs: 1_000, excluded: [], probe: [], ...grant },
    });
  return { actor, clock, acks, digests, probes, heartbeat, reply, context: () => actor.getSnapshot().context };
}

test("without authority from the leader a monitor acks but grants no lease, and says why", (t) => {
  const { acks, heartbeat } = startMonitor();
  heartbeat("h1", 1);
  t.deepEqual(acks, [{ replyTo: "_INBOX.h1", hostId: "h1", sequence: 1, leaseMs: 0, grant: "no-authority" }]);
});

test("authority runs from when the monitor sent the digest, for validForMs of its own clock", (t) => {
  const { clock, acks, heartbeat, reply } = startMonitor();
  clock.runUntil(100);
  reply(100, { validForMs: 500, leaseMs: 1_000 });
  clock.runUntil(599);
  heartbeat("h1", 1);
  clock.runUntil(600);
  heartbeat("h1", 1, 2);
  t.deepEqual(acks.map((ack) => [ack.grant, ack.leaseMs]), [["lease", 1_000], ["no-authority", 0]]);
});

test("a host excluded by the leader gets no lease for that incarnation or lower, but a newer incarnation does", (t) => {
  const { acks, heartbeat, reply } = startMonitor();
  reply(0, { excluded: [{ hostId: "h1", incarnation: 3 }] });
  heartbeat("h1", 2);
  heartbeat("h1", 3, 2);
  heartbeat("h1", 4, 3);
  heartbeat("h2", 1);
  t.deepEqual(acks.map((ack) => [ack.hostId, ack.grant]), [["h1", "excluded"], ["h1", "excluded"], ["h1", "lease"], ["h2", "lease"]]);
});

test("a digest goes out every interval with the hosts heard since, bounded in size, one at a time, echoing the applied authority", (t) => {
  const { clock, digests, heartbeat, reply } = startMonitor();
  t.is(digests.length, 1, "the first digest asks for authority at once");
  t.deepEqual(digests[0]!.heard, []);
  t.is(digests[0]!.echo, null);
  reply(0, { seq: 7 });
  clock.runUntil(50);
  heartbeat("h1", 1);
  heartbeat("h2", 1);
  heartbeat("h3", 5);
  clock.runUntil(100);
  t.is(digests.length, 2);
  t.deepEqual(digests[1]!.heard, [
    { hostId: "h1", incarnation: 1, heardAtMs: 50 },
    { hostId: "h2", incarnation: 1, heardAtMs: 50 },
  ]);
  t.false(digests[1]!.complete, "h3 did not fit");
  t.deepEqual(digests[1]!.echo, { termId: "c1.t", seq: 7 });
  clock.runUntil(300);
  t.is(digests.length, 2, "no second digest while one is unanswered");
  reply(100, { seq: 8 });
  clock.runUntil(400);
  t.deepEqual(digests[2]!.heard, [{ hostId: "h3", incarnation: 5, heardAtMs: 50 }]);
  t.true(digests[2]!.complete);
});

test("a digest the leader did not answer is sent again inside the next one", (t) => {
  const { actor, clock, digests, heartbeat, reply } = startMonitor();
  reply(0);
  clock.runUntil(10);
  heartbeat("h1", 1);
  clock.runUntil(100);
  actor.send({ type: "digest.failed", sequence: digests[1]!.sequence });
  clock.runUntil(150);
  heartbeat("h2", 1);
  clock.runUntil(200);
  t.deepEqual(digests[2]!.heard.map((entry) => entry.hostId).sort(), ["h1", "h2"]);
  t.is(digests[2]!.echo?.seq, 1, "the authority of the last answer, not of the failed one");
});

test("probes: started when the leader asks, reported once, not repeated while still asked, forgotten when no longer asked", (t) => {
  const { actor, clock, digests, probes, reply, context } = startMonitor();
  reply(0, { probe: [{ hostId: "h9", incarnation: 2, round: 5 }] });
  t.deepEqual(probes, [{ hostId: "h9", incarnation: 2, round: 5 }]);
  actor.send({ type: "probe.unanswered", hostId: "h9", round: 5 });
  clock.runUntil(100);
  t.deepEqual(digests[1]!.probes, [{ hostId: "h9", round: 5, answered: false }]);
  reply(100, { seq: 2, probe: [{ hostId: "h9", incarnation: 2, round: 5 }] });
  clock.runUntil(200);
  t.deepEqual(digests[2]!.probes, [], "delivered once");
  t.is(probes.length, 1, "not probed again for the same round");
  reply(200, { seq: 3, probe: [{ hostId: "h9", incarnation: 2, round: 9 }] });
  reply(200, { seq: 3, probe: [] });
  t.is(context().probes.size, 1, "an answer to no digest in flight changes nothing");
  t.is(probes.length, 2, "a new round is a new probe");
  clock.runUntil(300);
  reply(300, { seq: 4, probe: [] });
  t.is(context().probes.size, 0);
});

test("a probe answer counts as hearing the host, with the incarnation it gave", (t) => {
  const { actor, clock, digests, reply } = startMonitor();
  reply(0, { probe: [{ hostId: "h9", incarnation: 2, round: 5 }] });
  clock.runUntil(30);
  actor.send({ type: "probe.answered", hostId: "h9", round: 5, incarnation: 3, answeredAtMs: 30 });
  clock.runUntil(100);
  t.deepEqual(digests[1]!.heard, [{ hostId: "h9", incarnation: 3, heardAtMs: 30 }]);
  t.deepEqual(digests[1]!.probes, [{ hostId: "h9", round: 5, answered: true }]);
});

test("a plain monitor (no reporting) acks without leases and sends no digests", (t) => {
  const { clock, acks, digests, heartbeat } = startMonitor({ reports: false });
  heartbeat("h1", 0);
  clock.runUntil(1_000);
  t.deepEqual(acks.map((ack) => ack.grant), ["not-leasing"]);
  t.is(digests.length, 0);
});

test("a digest whose outcome never arrives (a dropped event) is given up after a few intervals, so digests never stop", (t) => {
  const { clock, digests, heartbeat, context } = startMonitor();
  clock.runUntil(10);
  heartbeat("h1", 1);
  clock.runUntil(250);
  t.is(digests.length, 1, "still waiting for the first answer");
  clock.runUntil(300);
  t.is(digests.length, 2);
  t.deepEqual(digests[1]!.heard.map((entry) => entry.hostId), ["h1"], "nothing heard is lost with it");
  t.is(context().digestsFailed, 1);
});

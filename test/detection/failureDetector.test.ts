import test from "ava";
import { defaultFailureDetectorConfig, type FailureDetectorConfig } from "../../machines/detection/detectionConfig.ts";
import {
  createFailureDetector,
  detectorHost,
  stepFailureDetector,
  type DetectorInput,
  type DetectorOutput,
  type FailureDetectorState,
} from "../../machines/detection/failureDetector.ts";
import { viewCommandsFor } from "../../machines/detection/hostProposals.ts";
import { applyViewCommands } from "../../machines/view/applyViewCommands.ts";
import type { ViewCommand } from "../../machines/view/viewCommands.ts";
import { emptyView } from "../../machines/view/viewTypes.ts";
import { heardNoLaterThanMs, leaderMsCovering } from "../../machines/detection/leaseArithmetic.ts";
import type { AuthorityGrant } from "../../machines/heartbeat/heartbeatMonitor.ts";

// Exact arithmetic (no clock-rate allowance) so the expected times read plainly: L + W = 1500, A + L + W = 3000.
const config: FailureDetectorConfig = { ...defaultFailureDetectorConfig, maxClockRateErrorPpm: 0 };
const tickMs = 25;
const digestMs = 100;

interface FakeMonitor {
  boot: string;
  lastGrant: AuthorityGrant | null;
  reporting: boolean;
  /** Leave probe outcomes out of digests. */
  withholdProbes: boolean;
}

/**
 * The detector core driven by scripted monitors: each reports every 100 ms
 * (complete digests, echoing its last grant) the hosts that are `alive` then,
 * and answers every probe request as unanswered unless the host is alive.
 */
class Harness {
  readonly state: FailureDetectorState;
  readonly outputs: Array<DetectorOutput & { atMs: number }> = [];
  readonly monitors = new Map<string, FakeMonitor>();
  /** hostId → incarnation, for hosts currently heard by `heardBy`. */
  readonly alive = new Map<string, number>();
  /** Which monitor hears each host; default the first. */
  readonly heardBy = new Map<string, string>();
  nowMs = 0;

  constructor(monitorIds: readonly string[], overrides: Partial<FailureDetectorConfig> = {}) {
    this.state = createFailureDetector("c1", { ...config, ...overrides });
    for (const monitorId of monitorIds) this.monitors.set(monitorId, { boot: "b1", lastGrant: null, reporting: true, withholdProbes: false });
  }

  step(input: DetectorInput): readonly DetectorOutput[] {
    const outputs = stepFailureDetector(this.state, input).outputs;
    for (const output of outputs) {
      this.outputs.push({ ...output, atMs: input.nowMs });
      if (output.kind === "reply-authority") this.monitors.get(output.monitorId)!.lastGrant = output.grant;
    }
    return outputs;
  }

  lead(leaseValidUntilMs = Number.MAX_SAFE_INTEGER, nonce = "t1"): void {
    this.step({ type: "leadership.changed", nowMs: this.nowMs, isLeader: true, leaseValidUntilMs, termNonce: nonce });
  }

  digestFrom(monitorId: string): void {
    const monitor = this.monitors.get(monitorId)!;
    const heard = [...this.alive]
      .filter(([hostId]) => (this.heardBy.get(hostId) ?? [...this.monitors.keys()][0]) === monitorId)
      .map(([hostId, incarnation]) => ({ hostId, incarnation, heardAtMs: this.nowMs }));
    const probes = monitor.withholdProbes
      ? []
      : (monitor.lastGrant?.probe ?? []).map((request) => ({ hostId: request.hostId, round: request.round, answered: false }));
    const echo = monitor.lastGrant === null ? null : { termId: monitor.lastGrant.termId, seq: monitor.lastGrant.seq };
    this.step({
      type: "digest.received",
      nowMs: this.nowMs,
      replyTo: `_INBOX.${monitorId}`,
      digest: { monitorId, boot: monitor.boot, sequence: 1, sentAtMs: this.nowMs, heard, probes, complete: true, echo },
    });
  }

  runUntil(untilMs: number): void {
    while (this.nowMs < untilMs) {
      this.nowMs += tickMs;
      if (this.nowMs % digestMs === 0) for (const [monitorId, monitor] of this.monitors) if (monitor.reporting) this.digestFrom(monitorId);
      this.step({ type: "tick", nowMs: this.nowMs });
    }
  }

  proposals() {
    return this.outputs.filter((output) => output.kind === "propose-host-failed" || output.kind === "propose-host-up");
  }

  notes(note: string) {
    return this.outputs.filter((output) => output.kind === "note" && output.note === note);
  }

  lastGrantTo(monitorId: string): AuthorityGrant {
    return this.monitors.get(monitorId)!.lastGrant!;
  }
}

/** A leader for 5 s with h1 (and h2) alive, heard by m1, then h1 falls silent at 5,000 ms. */
function crashedHost(monitorIds: readonly string[] = ["m1", "m2"], overrides: Partial<FailureDetectorConfig> = {}): Harness {
  const harness = new Harness(monitorIds, overrides);
  harness.lead();
  harness.alive.set("h1", 1);
  harness.alive.set("h2", 1);
  harness.runUntil(5_000);
  harness.alive.delete("h1");
  return harness;
}

test("lease arithmetic: a duration on another clock, and the latest a hearing can have happened, on the leader's clock", (t) => {
  t.is(leaderMsCovering(1_000, 0), 1_000);
  t.is(leaderMsCovering(1_000, 10_000), Math.ceil((1_000 * 1.01) / 0.99));
  t.is(heardNoLaterThanMs(5_000, 100, 0), 4_900);
  t.is(heardNoLaterThanMs(5_000, 100, 10_000), 5_000 - Math.floor((100 * 0.99) / 1.01));
  t.is(heardNoLaterThanMs(5_000, -30, 10_000), 5_000, "a negative age (a broken clock) is taken as no age");
});

test("an inactive detector answers no digest; a lapsed lease ends the term", (t) => {
  const harness = new Harness(["m1"]);
  harness.runUntil(200);
  t.deepEqual(harness.outputs.filter((output) => output.kind === "reply-authority"), []);
  harness.lead(1_000);
  harness.runUntil(900);
  const replies = harness.outputs.filter((output) => output.kind === "reply-authority");
  t.is(replies.length, 7);
  t.deepEqual(replies.map((reply) => (reply.kind === "reply-authority" ? reply.grant.seq : 0)), [1, 2, 3, 4, 5, 6, 7]);
  harness.runUntil(1_100);
  t.is(harness.outputs.filter((output) => output.kind === "reply-authority").length, 7, "no answer once the lease ran out");
  t.is(harness.notes("term.ended").length, 1);
});

test("a crashed host is suspected after suspectAfterMs, excluded and probed, and declared once its lease and isolation surely ended", (t) => {
  const harness = crashedHost();
  harness.runUntil(5_575);
  t.is(harness.notes("host.suspected").length, 0);
  harness.runUntil(5_600);
  t.is(harness.notes("host.suspected").length, 1);
  harness.runUntil(5_700);
  const grant = harness.lastGrantTo("m2");
  t.deepEqual(grant.excluded, [{ hostId: "h1", incarnation: 1 }]);
  t.deepEqual(grant.probe.map((probe) => probe.hostId), ["h1"]);
  harness.runUntil(6_475);
  t.deepEqual(harness.proposals(), []);
  harness.runUntil(6_500);
  // heard at 5,000 (+ no age) + L 1,100 + W 400
  t.deepEqual(harness.proposals(), [{ kind: "propose-host-failed", hostId: "h1", incarnation: 1, leaseExpiresByMs: 6_500, atMs: 6_500 }]);
  t.is(detectorHost(harness.state, "h1")?.status, "declared");
  t.is(detectorHost(harness.state, "h2")?.status, "alive");
});

test("with a clock-rate allowance the wait covers the lease and isolation on the slowest clock, read on the fastest", (t) => {
  const harness = crashedHost(["m1", "m2"], { maxClockRateErrorPpm: 10_000 });
  harness.runUntil(8_000);
  const proposal = harness.proposals()[0];
  t.is(proposal?.kind, "propose-host-failed");
  const expected = 5_000 + Math.ceil((1_500 * 1.01) / 0.99);
  t.is(proposal?.kind === "propose-host-failed" ? proposal.leaseExpiresByMs : 0, expected);
  t.is(proposal?.atMs, Math.ceil(expected / tickMs) * tickMs);
});

test("a declared incarnation heard again stays excluded, so the host moves to a new one", (t) => {
  const harness = crashedHost();
  harness.runUntil(7_000);
  harness.alive.set("h1", 1);
  harness.runUntil(7_100);
  t.deepEqual(harness.lastGrantTo("m1").excluded, [{ hostId: "h1", incarnation: 1 }]);
  t.is(detectorHost(harness.state, "h1")?.status, "declared");
});

test("a host heard again while suspected refutes the suspicion and is granted again", (t) => {
  const harness = crashedHost();
  harness.runUntil(5_700);
  harness.alive.set("h1", 1);
  harness.runUntil(5_800);
  t.is(harness.notes("host.refuted").length, 1);
  harness.runUntil(5_900);
  t.deepEqual(harness.lastGrantTo("m1").excluded, []);
  harness.runUntil(9_000);
  t.deepEqual(harness.proposals(), []);
});

test("a monitor that stops reporting before it honoured the exclusion delays the declaration to its authority's end", (t) => {
  const harness = crashedHost();
  harness.runUntil(5_500);
  harness.monitors.get("m2")!.reporting = false;
  harness.runUntil(8_475);
  t.deepEqual(harness.proposals(), []);
  harness.runUntil(8_500);
  // m2's last grant at 5,500 (before the suspicion at 5,600) + A 1,500 + L 1,100 + W 400
  t.is(harness.proposals()[0]?.atMs, 8_500);
});

test("a monitor that restarted may have forgotten grants: its earlier boot is bounded by its authority", (t) => {
  const harness = crashedHost();
  harness.runUntil(5_200);
  harness.monitors.get("m2")!.boot = "b2";
  harness.monitors.get("m2")!.lastGrant = null;
  harness.runUntil(8_200);
  // the last grant to boot b1 went out at 5,200; + 3,000
  t.is(harness.proposals()[0]?.atMs, 8_200);
});

test("a reporting monitor that has not sent its probe outcome holds the declaration for probeOutcomeWaitMs", (t) => {
  const harness = crashedHost();
  harness.monitors.get("m2")!.withholdProbes = true;
  harness.runUntil(6_975);
  t.deepEqual(harness.proposals(), []);
  harness.runUntil(7_000);
  t.is(harness.proposals()[0]?.atMs, 7_000);
});

test("a new term declares nothing before every grant of an earlier leader has run out", (t) => {
  const harness = new Harness(["m1"]);
  harness.nowMs = 10_000;
  harness.lead();
  harness.step({ type: "view.host", nowMs: 10_000, hostId: "h7", state: "up", incarnation: 3 });
  harness.runUntil(12_975);
  t.deepEqual(harness.proposals(), []);
  harness.runUntil(13_000);
  t.deepEqual(harness.proposals().map((p) => (p.kind === "propose-host-failed" ? [p.hostId, p.incarnation, p.atMs] : [])), [["h7", 3, 13_000]]);
});

test("a host heard with a newer incarnation ended the old one: it is declared after the same wait, then proposed up", (t) => {
  const harness = new Harness(["m1", "m2"]);
  harness.lead();
  harness.alive.set("h1", 1);
  harness.runUntil(5_000);
  harness.alive.set("h1", 2);
  harness.runUntil(5_100);
  t.is(harness.notes("host.superseded").length, 1);
  t.deepEqual(harness.lastGrantTo("m1").excluded, [{ hostId: "h1", incarnation: 1 }]);
  t.deepEqual(harness.lastGrantTo("m1").probe, [], "nothing to probe: the host itself said it moved on");
  harness.runUntil(8_000);
  t.deepEqual(
    harness.proposals().map((p) => [p.kind, p.hostId, p.incarnation, p.atMs]),
    [
      ["propose-host-failed", "h1", 1, 6_500],
      ["propose-host-up", "h1", 2, 6_500],
    ],
  );
  t.is(detectorHost(harness.state, "h1")?.status, "alive");
});

test("a declared host that comes back with a newer incarnation is proposed up", (t) => {
  const harness = crashedHost();
  harness.runUntil(7_000);
  harness.alive.set("h1", 2);
  harness.runUntil(7_100);
  t.deepEqual(harness.proposals().map((p) => [p.kind, p.incarnation]), [["propose-host-failed", 1], ["propose-host-up", 2]]);
  harness.runUntil(9_000);
  t.is(harness.proposals().length, 2);
});

test("a host only one cut-off monitor reported is not suspected until that monitor's authority surely ran out", (t) => {
  const harness = new Harness(["m1", "m2"]);
  harness.lead();
  harness.alive.set("h1", 1);
  harness.runUntil(5_000);
  // m1 (the only one hearing h1) can no longer reach the leader; h1 keeps heartbeating it.
  harness.monitors.get("m1")!.reporting = false;
  harness.runUntil(6_475);
  t.is(harness.notes("host.suspected").length, 0);
  harness.runUntil(6_525);
  t.is(harness.notes("host.suspected").length, 1, "m1 silent for authorityValidForMs");
});

test("a digest whose hearing lies in the future of its own send time is read as heard now, never later", (t) => {
  const harness = new Harness(["m1"]);
  harness.nowMs = 1_000;
  harness.lead();
  harness.step({
    type: "digest.received",
    nowMs: 1_000,
    replyTo: "_INBOX.x",
    digest: { monitorId: "m1", boot: "b", sequence: 1, sentAtMs: 50, heard: [{ hostId: "h1", incarnation: 1, heardAtMs: 9_999 }], probes: [], complete: true, echo: null },
  });
  t.is(detectorHost(harness.state, "h1")?.heardNoLaterThanMs, 1_000);
});

test("the view seeds hosts it expects and hosts it holds failed; a failed one heard with a newer incarnation is proposed up", (t) => {
  const harness = new Harness(["m1"]);
  harness.lead();
  harness.step({ type: "view.host", nowMs: 0, hostId: "h3", state: "failed", incarnation: 4 });
  harness.alive.set("h3", 5);
  harness.runUntil(200);
  t.deepEqual(harness.proposals().map((p) => [p.kind, p.hostId, p.incarnation]), [["propose-host-up", "h3", 5]]);
});

test("a leader that did not declare a failure refuses the failed incarnation grants from its first one (whole-system fuzz seeds 300236, 301089)", (t) => {
  // The view holds h3 failed at 2 and h4 up at 1: a monitor grants on a heartbeat before its digest reports the hearing, so
  // the exclusion must be in the authority before anyone hears the failed incarnation again.
  // A term starts from nothing, then hears every host the view holds (actors/detection/detectorOnController.ts).
  const harness = new Harness(["m1"]);
  harness.lead();
  harness.step({ type: "view.host", nowMs: 0, hostId: "h3", state: "failed", incarnation: 2 });
  harness.step({ type: "view.host", nowMs: 0, hostId: "h4", state: "up", incarnation: 1 });
  harness.alive.set("h4", 1);
  harness.runUntil(100);
  t.deepEqual(harness.lastGrantTo("m1").excluded, [{ hostId: "h3", incarnation: 2 }]);
  // The same when the view records the failure during the term, and for a fenced host.
  harness.step({ type: "view.host", nowMs: harness.nowMs, hostId: "h4", state: "fenced", incarnation: 1 });
  harness.runUntil(200);
  t.deepEqual(harness.lastGrantTo("m1").excluded, [{ hostId: "h3", incarnation: 2 }, { hostId: "h4", incarnation: 1 }]);
  // A newer incarnation is granted and proposed up; the failed one stays excluded until it is.
  harness.alive.set("h3", 3);
  harness.runUntil(300);
  t.deepEqual(harness.proposals().map((p) => [p.kind, p.hostId, p.incarnation]), [["propose-host-up", "h3", 3]]);
  t.deepEqual(harness.lastGrantTo("m1").excluded, [{ hostId: "h4", incarnation: 1 }]);
});

test("a term that starts again after a lease gap still refuses what the view holds failed (whole-system fuzz seed 450052)", (t) => {
  // h1 is declared and the view records it; the leader's lease then lapses and its next term starts from its own state.
  const harness = crashedHost(["m1"]);
  harness.step({ type: "view.host", nowMs: harness.nowMs, hostId: "h1", state: "up", incarnation: 1 });
  harness.step({ type: "view.host", nowMs: harness.nowMs, hostId: "h2", state: "up", incarnation: 1 });
  harness.runUntil(10_000);
  t.deepEqual(harness.proposals().map((p) => [p.kind, p.hostId, p.incarnation]), [["propose-host-failed", "h1", 1]]);
  harness.step({ type: "view.host", nowMs: harness.nowMs, hostId: "h1", state: "failed", incarnation: 1 });
  harness.runUntil(10_500);
  t.deepEqual(harness.lastGrantTo("m1").excluded, [{ hostId: "h1", incarnation: 1 }]);
  harness.step({ type: "leadership.changed", nowMs: harness.nowMs, isLeader: true, leaseValidUntilMs: harness.nowMs, termNonce: "t1" });
  t.is(harness.notes("term.ended").length, 1);
  harness.lead(Number.MAX_SAFE_INTEGER, "t2");
  harness.runUntil(10_600);
  const grant = harness.lastGrantTo("m1");
  t.true(grant.termId.endsWith(".t2"), grant.termId);
  // The new term's first answers exclude the failed incarnation (before, they excluded nothing and m1 leased it).
  t.deepEqual(grant.excluded, [{ hostId: "h1", incarnation: 1 }]);
  // h2, alive in the view, is judged anew as before: not excluded, not suspected while heard.
  harness.runUntil(15_000);
  t.deepEqual(harness.proposals().length, 1, "nothing declared again, nothing proposed for h2");
  // A newer incarnation of h1 is still granted and proposed up.
  harness.alive.set("h1", 2);
  harness.runUntil(15_500);
  t.deepEqual(harness.proposals().map((p) => [p.kind, p.hostId, p.incarnation]).at(-1), ["propose-host-up", "h1", 2]);
});

test("an incarnation heard after the view's failure that falls silent before it came up is not declared; once the view holds it up, it is (whole-system fuzz seed 300556)", (t) => {
  const harness = new Harness(["m1"]);
  harness.lead();
  harness.step({ type: "view.host", nowMs: 0, hostId: "h1", state: "failed", incarnation: 1 });
  harness.step({ type: "view.host", nowMs: 0, hostId: "h2", state: "up", incarnation: 1 });
  harness.alive.set("h2", 1);
  harness.alive.set("h1", 2);
  harness.runUntil(500);
  t.deepEqual(harness.proposals().map((p) => [p.kind, p.hostId, p.incarnation]), [["propose-host-up", "h1", 2]]);
  // Cut off before the view brought incarnation 2 up (the proposal never committed).
  harness.alive.delete("h1");
  harness.runUntil(8_000);
  t.is(harness.notes("host.suspected").length, 1);
  t.deepEqual(harness.notes("host.declared"), [], "the view never held incarnation 2: declaring it would be a false alarm");
  t.is(harness.proposals().length, 1, "nothing proposed: the view has no incarnation of h1 to end");
  const lapsed = harness.notes("host.rejoin-lapsed");
  t.is(lapsed.length, 1);
  t.like(lapsed[0], { fields: { hostId: "h1", incarnation: 2, viewState: "failed", viewIncarnation: 1 } });
  t.is(harness.state.counters.lapsedRejoins, 1);
  t.is(harness.state.counters.declarations, 0);
  // Refused grants all the same, so a host alive without a lease moves on to a new incarnation.
  t.deepEqual(harness.lastGrantTo("m1").excluded, [{ hostId: "h1", incarnation: 2 }]);
  // The up proposal commits late: the view now holds a silent incarnation up, and that one is declared.
  harness.step({ type: "view.host", nowMs: harness.nowMs, hostId: "h1", state: "up", incarnation: 2 });
  t.deepEqual(harness.proposals().slice(1).map((p) => [p.kind, p.hostId, p.incarnation]), [["propose-host-failed", "h1", 2]]);
  t.is(harness.notes("host.redeclared").length, 1);
  // The negative space: h2, which the view held up, is declared as always when it falls silent.
  harness.alive.delete("h2");
  harness.runUntil(16_000);
  t.deepEqual(harness.notes("host.declared").map((note) => note.kind === "note" && note.fields.hostId), ["h2"]);
});

test("a host the view holds in maintenance when a term starts is tracked: silent, it is declared; heard, it is not", (t) => {
  const harness = new Harness(["m1"]);
  harness.lead();
  harness.step({ type: "view.host", nowMs: 0, hostId: "h8", state: "maintenance", incarnation: 3 });
  harness.step({ type: "view.host", nowMs: 0, hostId: "h9", state: "maintenance", incarnation: 3 });
  harness.alive.set("h9", 3);
  harness.runUntil(6_000);
  t.deepEqual(harness.proposals().map((p) => [p.kind, p.hostId, p.incarnation]), [["propose-host-failed", "h8", 3]]);
  t.is(detectorHost(harness.state, "h8")?.status, "declared");
  t.is(detectorHost(harness.state, "h9")?.status, "alive");
});

test("proposals map to view commands with ids derived from host and incarnation", (t) => {
  t.deepEqual(viewCommandsFor({ type: "host-failed", hostId: "h1", incarnation: 3, leaseExpiresByMs: 10 }), [
    { id: "host-failed-h1-3", type: "host.failed", hostId: "h1", incarnation: 3 },
  ]);
  t.deepEqual(viewCommandsFor({ type: "host-up", hostId: "h1", incarnation: 4 }), [
    { id: "host-rejoin-h1-4", type: "host.rejoin", hostId: "h1", incarnation: 4 },
    { id: "host-up-h1-4", type: "host.up", hostId: "h1", incarnation: 4 },
  ]);
});

test("with the view's record, proposals carry the agent's incarnation; a failure newer than the view's ends the view's one, an older one is stale", (t) => {
  const failed = { type: "host-failed" as const, hostId: "h1", incarnation: 3, leaseExpiresByMs: 10 };
  t.deepEqual(viewCommandsFor(failed, { state: "up", incarnation: 3 }), [{ id: "host-failed-h1-3", type: "host.failed", hostId: "h1", incarnation: 3 }]);
  t.deepEqual(viewCommandsFor(failed, { state: "joining", incarnation: 0 }), [{ id: "host-failed-h1-3", type: "host.failed", hostId: "h1", incarnation: 0 }]);
  t.deepEqual(viewCommandsFor(failed, { state: "up", incarnation: 2 }), [{ id: "host-failed-h1-3", type: "host.failed", hostId: "h1", incarnation: 2 }]);
  t.deepEqual(viewCommandsFor(failed, { state: "up", incarnation: 5 }), [], "the view already knows a newer incarnation");
  t.deepEqual(viewCommandsFor(failed, { state: "failed", incarnation: 3 }), [], "already failed");
  const up = { type: "host-up" as const, hostId: "h1", incarnation: 4 };
  t.deepEqual(viewCommandsFor(up, { state: "joining", incarnation: 0 }), [{ id: "host-up-h1-4", type: "host.up", hostId: "h1", incarnation: 4 }]);
  t.deepEqual(viewCommandsFor(up, { state: "joining", incarnation: 4 }), [{ id: "host-up-h1-4", type: "host.up", hostId: "h1", incarnation: 4 }], "after its rejoin");
  t.deepEqual(viewCommandsFor(up, { state: "joining", incarnation: 6 }), [], "older than the view's rejoin");
  t.deepEqual(
    viewCommandsFor(up, { state: "failed", incarnation: 3 }).map((command) => [command.type, command.id]),
    [["host.rejoin", "host-rejoin-h1-4"], ["host.up", "host-up-h1-4"]],
  );
  t.deepEqual(viewCommandsFor(up, { state: "fenced", incarnation: 4 }), [], "not newer than the view's");
  t.deepEqual(viewCommandsFor(up, { state: "up", incarnation: 4 }), []);
});

test("the view takes the agent's incarnation when the host comes up, and keeps it through failure and rejoin", (t) => {
  let view = emptyView;
  const apply = (...commands: ViewCommand[]) => {
    const application = applyViewCommands(view, 0, commands);
    t.deepEqual(application.outcomes.map((outcome) => outcome.kind), commands.map(() => "committed"), JSON.stringify(application.outcomes));
    view = application.view;
  };
  const viewHost = () => view.hosts.get("h1")!;
  apply({ id: "register-h1", type: "host.register", hostId: "h1", capacity: { cpu: 4, memoryMiB: 4_096 } });
  apply(...viewCommandsFor({ type: "host-up", hostId: "h1", incarnation: 3 }, viewHost()));
  t.deepEqual([viewHost().state, viewHost().incarnation], ["up", 3]);
  apply(...viewCommandsFor({ type: "host-failed", hostId: "h1", incarnation: 3, leaseExpiresByMs: 0 }, viewHost()));
  t.deepEqual([viewHost().state, viewHost().incarnation], ["failed", 3]);
  apply(...viewCommandsFor({ type: "host-up", hostId: "h1", incarnation: 4 }, viewHost()));
  t.deepEqual([viewHost().state, viewHost().incarnation], ["up", 4]);
  const stale = applyViewCommands(view, 0, [{ id: "late-up", type: "host.up", hostId: "h1", incarnation: 3 }]).outcomes[0];
  t.is(stale?.kind, "rejected");
});

test("a host declared failed in maintenance is declared again when the view brings it back up, dead (whole-system fuzz seed 1098)", (t) => {
  const harness = new Harness(["m1"]);
  harness.lead();
  harness.step({ type: "view.host", nowMs: 0, hostId: "h1", state: "up", incarnation: 1 });
  harness.alive.set("h1", 1);
  harness.runUntil(2_000);
  harness.step({ type: "view.host", nowMs: harness.nowMs, hostId: "h1", state: "maintenance", incarnation: 1 });
  harness.alive.delete("h1");
  harness.runUntil(6_000);
  const failed = (from: number) => harness.proposals().filter((p) => p.atMs >= from && p.kind === "propose-host-failed").map((p) => [p.hostId, p.incarnation]);
  t.deepEqual(failed(0), [["h1", 1]], "declared while in maintenance");
  // The view keeps a failed host in maintenance (a reboot during maintenance must not end it), so that proposal
  // changed nothing; leaving maintenance makes the view hold the dead incarnation up.
  t.deepEqual(viewCommandsFor({ type: "host-failed", hostId: "h1", incarnation: 1, leaseExpiresByMs: 0 }, { state: "maintenance", incarnation: 1 }), []);
  harness.step({ type: "view.host", nowMs: harness.nowMs, hostId: "h1", state: "up", incarnation: 1 });
  t.deepEqual(failed(6_000), [["h1", 1]], "proposed again at once");
  t.deepEqual(harness.notes("host.redeclared").map((note) => note.kind === "note" && note.fields), [{ hostId: "h1", incarnation: 1 }]);
  harness.runUntil(8_000);
  t.deepEqual(failed(6_000 + 1), [], "once per change of the view");
  // Committed, and the host back at a newer incarnation: nothing left to declare.
  harness.step({ type: "view.host", nowMs: harness.nowMs, hostId: "h1", state: "failed", incarnation: 1 });
  harness.step({ type: "view.host", nowMs: harness.nowMs, hostId: "h1", state: "up", incarnation: 2 });
  harness.alive.set("h1", 2);
  harness.runUntil(10_000);
  t.deepEqual(failed(8_000), []);
});

test("a host the view holds joining is proposed up when first heard, whatever incarnation it gives; it is never suspected before that", (t) => {
  const harness = new Harness(["m1"]);
  harness.lead();
  harness.step({ type: "view.host", nowMs: 0, hostId: "h4", state: "joining", incarnation: 0 });
  harness.runUntil(5_000);
  t.deepEqual(harness.notes("host.suspected"), [], "not started yet is not failed");
  harness.alive.set("h4", 7);
  harness.runUntil(5_100);
  t.deepEqual(harness.proposals().map((p) => [p.kind, p.hostId, p.incarnation]), [["propose-host-up", "h4", 7]]);
  t.is(detectorHost(harness.state, "h4")?.incarnation, 7);
});

test("a host the view holds up but nobody hears is suspected; heard at the view's incarnation it is refuted, heard at a newer one the view's ended", (t) => {
  const harness = new Harness(["m1"]);
  harness.lead();
  harness.step({ type: "view.host", nowMs: 0, hostId: "h6", state: "up", incarnation: 2 });
  harness.step({ type: "view.host", nowMs: 0, hostId: "h7", state: "up", incarnation: 2 });
  harness.runUntil(1_000);
  t.is(harness.notes("host.suspected").length, 2);
  harness.alive.set("h6", 2);
  // h7 restarted meanwhile (its VMs died with it): the view's incarnation 2 must be declared, then 3 brought up.
  harness.alive.set("h7", 3);
  harness.runUntil(1_100);
  t.is(harness.notes("host.refuted").length, 1);
  harness.runUntil(6_000);
  t.deepEqual(
    harness.proposals().map((p) => [p.kind, p.hostId, p.incarnation]),
    [
      ["propose-host-failed", "h7", 2],
      ["propose-host-up", "h7", 3],
    ],
  );
  t.is(detectorHost(harness.state, "h6")?.incarnation, 2);
});

test("a host removed from the view is forgotten: no suspicion, exclusion or proposal of it, hearings ignored until it is registered again", (t) => {
  const harness = crashedHost();
  harness.runUntil(5_700);
  t.deepEqual(harness.lastGrantTo("m1").excluded, [{ hostId: "h1", incarnation: 1 }], "suspected before the removal");
  harness.step({ type: "view.host-removed", nowMs: harness.nowMs, hostId: "h1" });
  t.is(detectorHost(harness.state, "h1"), undefined);
  harness.runUntil(9_000);
  t.deepEqual(harness.proposals(), [], "never declared");
  t.deepEqual(harness.lastGrantTo("m1").excluded, []);
  // Its agent still runs somewhere: heard, and ignored.
  harness.alive.set("h1", 1);
  harness.runUntil(9_500);
  t.is(detectorHost(harness.state, "h1"), undefined);
  t.true(harness.state.counters.hearingsOfRemovedHosts > 0);
  harness.alive.delete("h1");
  harness.runUntil(12_000);
  t.deepEqual(harness.proposals(), []);
  t.deepEqual(harness.notes("host.removed").map((note) => note.kind === "note" && note.fields), [{ hostId: "h1", wasTracked: true }]);
  // Registered again: a joining member like any other, proposed up when heard.
  harness.step({ type: "view.host", nowMs: harness.nowMs, hostId: "h1", state: "joining", incarnation: 0 });
  harness.alive.set("h1", 2);
  harness.runUntil(12_200);
  t.deepEqual(harness.proposals().map((p) => [p.kind, p.hostId, p.incarnation]), [["propose-host-up", "h1", 2]]);
});

test("a declared host removed from the view leaves no exclusion behind", (t) => {
  const harness = crashedHost();
  harness.runUntil(7_000);
  t.is(detectorHost(harness.state, "h1")?.status, "declared");
  harness.step({ type: "view.host-removed", nowMs: harness.nowMs, hostId: "h1" });
  harness.runUntil(7_100);
  t.deepEqual(harness.lastGrantTo("m1").excluded, []);
  t.is(harness.state.hosts.has("h1"), false);
});

/**
 * A leader whose records come from an earlier term of its own (h1 heard at 1),
 * while another leader moved the view on (h1 failed at 1, then up at 2): what
 * the outage after a NATS loss leaves behind (fuzz seed 10).
 */
function leaderBehindTheView(): Harness {
  const harness = new Harness(["m1"]);
  harness.lead();
  harness.alive.set("h1", 1);
  harness.alive.set("h2", 1);
  harness.step({ type: "view.host", nowMs: 0, hostId: "h1", state: "up", incarnation: 1 });
  harness.step({ type: "view.host", nowMs: 0, hostId: "h2", state: "up", incarnation: 1 });
  harness.runUntil(2_000);
  harness.step({ type: "leadership.changed", nowMs: 2_000, isLeader: false, leaseValidUntilMs: 0, termNonce: "t1" });
  harness.alive.clear();
  harness.nowMs = 10_000;
  harness.lead(Number.MAX_SAFE_INTEGER, "t2");
  return harness;
}

function proposalSummary(harness: Harness): Array<[string, string, number]> {
  return harness.proposals().map((p) => [p.kind, p.hostId, p.incarnation]);
}

test("a record behind the view is brought forward: a host that died at the view's incarnation is declared at that one, not at the one the record had", (t) => {
  const harness = leaderBehindTheView();
  harness.step({ type: "view.host", nowMs: 10_000, hostId: "h1", state: "up", incarnation: 2 });
  harness.step({ type: "view.host", nowMs: 10_000, hostId: "h2", state: "up", incarnation: 2 });
  harness.alive.set("h2", 2);
  harness.runUntil(20_000);
  t.deepEqual(proposalSummary(harness), [["propose-host-failed", "h1", 2]]);
  const declaredAtMs = harness.proposals()[0]!.atMs;
  t.true(declaredAtMs >= 13_000, `a new term waits out the earlier leader's grants (${declaredAtMs})`);
  t.is(detectorHost(harness.state, "h2")?.incarnation, 2);
  t.is(detectorHost(harness.state, "h2")?.status, "alive");
});

test("a record behind the view, and the host heard at a newer incarnation still: the view's incarnation is declared, then the newer one brought up", (t) => {
  const harness = leaderBehindTheView();
  harness.step({ type: "view.host", nowMs: 10_000, hostId: "h1", state: "up", incarnation: 2 });
  harness.alive.set("h1", 3);
  harness.runUntil(20_000);
  t.deepEqual(
    proposalSummary(harness).filter(([, hostId]) => hostId === "h1"),
    [
      ["propose-host-failed", "h1", 2],
      ["propose-host-up", "h1", 3],
    ],
  );
  t.true(harness.proposals()[0]!.atMs >= 13_000);
});

test("a view that catches up after the newer incarnation was heard moves the suspicion to the view's incarnation, with a fresh bound", (t) => {
  const harness = leaderBehindTheView();
  // The new leader's view still lags: it names incarnation 1.
  harness.step({ type: "view.host", nowMs: 10_000, hostId: "h1", state: "up", incarnation: 1 });
  harness.alive.set("h1", 3);
  harness.runUntil(12_000);
  t.is(harness.notes("host.superseded").length, 1);
  harness.step({ type: "view.host", nowMs: 12_000, hostId: "h1", state: "up", incarnation: 2 });
  const excludedH1 = () => harness.lastGrantTo("m1").excluded.filter((entry) => entry.hostId === "h1");
  t.deepEqual(excludedH1(), [{ hostId: "h1", incarnation: 1 }]);
  harness.runUntil(12_100);
  t.deepEqual(excludedH1(), [{ hostId: "h1", incarnation: 2 }], "the next answer excludes the view's incarnation");
  harness.runUntil(20_000);
  t.deepEqual(
    proposalSummary(harness).filter(([, hostId]) => hostId === "h1"),
    [
      ["propose-host-failed", "h1", 2],
      ["propose-host-up", "h1", 3],
    ],
  );
  const h1Failed = harness.proposals().find((p) => p.hostId === "h1")!;
  t.true(h1Failed.atMs >= 12_000 + 1_500, "no hearing of 2 is known, so the bound starts when the view named it");
});

test("the view records a failure of a newer incarnation than the one suspected: the suspicion is dropped, and a host heard newer still rejoins", (t) => {
  const harness = leaderBehindTheView();
  harness.step({ type: "view.host", nowMs: 10_000, hostId: "h1", state: "up", incarnation: 1 });
  harness.step({ type: "view.host", nowMs: 10_000, hostId: "h2", state: "up", incarnation: 1 });
  harness.alive.set("h1", 3);
  harness.runUntil(11_000);
  t.true(harness.state.suspicions.has("h1") && harness.state.suspicions.has("h2"));
  harness.step({ type: "view.host", nowMs: 11_000, hostId: "h1", state: "failed", incarnation: 2 });
  harness.step({ type: "view.host", nowMs: 11_000, hostId: "h2", state: "failed", incarnation: 2 });
  t.deepEqual(proposalSummary(harness), [["propose-host-up", "h1", 3]]);
  t.false(harness.state.suspicions.has("h2"));
  t.deepEqual([detectorHost(harness.state, "h2")?.status, detectorHost(harness.state, "h2")?.incarnation], ["declared", 2]);
  harness.runUntil(20_000);
  t.deepEqual(proposalSummary(harness), [["propose-host-up", "h1", 3]], "nothing the view already ended is declared again");
});

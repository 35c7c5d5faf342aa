/**
 * The leader-side host failure detector (ARCHITECTURE §3), as a core: a step
 * takes one input (with the node's clock reading) and returns effects. It is
 * active only while its node is the Paxos leader with a lease; each activation
 * is a *term* with its own id, so monitors' echoes from earlier terms count
 * for nothing.
 *
 * - Monitors send digests of the hosts they heard; the answer renews their
 *   authority to grant leases, lists the (host, incarnation) pairs they must
 *   not grant to, and the hosts they must probe.
 * - A host no monitor heard for `suspectAfterMs` is suspected: from then on
 *   every answer excludes it and asks every monitor to probe it. A hearing of
 *   that incarnation (a heartbeat or a probe answer) refutes the suspicion.
 * - The host is declared failed (`propose-host-failed`) only once its lease has
 *   surely run out and its VMs stopped (`declareNotBeforeMs`, argued in
 *   docs/failure-detection.md) and the monitors that are reporting said their
 *   probes went unanswered (or `probeOutcomeWaitMs` passed).
 * - A host heard with a higher incarnation than the one declared failed (or
 *   suspected) rejoined: the old incarnation is declared (after the same wait)
 *   and the new one proposed up.
 * - A host removed from the view is forgotten, and hearings of it are ignored
 *   until the view holds it again.
 *
 * The state is mutated in place (the host table has thousands of entries and a
 * digest arrives every few milliseconds); the xstate wrapper owns it. It
 * iterates Maps in insertion order only, so runs are deterministic.
 */
import type { AuthorityGrant, DigestHearing, DigestProbeOutcome, AuthorityEcho } from "../heartbeat/heartbeatMonitor.ts";
import type { HostState } from "../view/viewTypes.ts";
import { declaredExclusionRetentionMs, type FailureDetectorConfig } from "./detectionConfig.ts";
import { heardNoLaterThanMs, leaderMsCovering } from "./leaseArithmetic.ts";

export interface MonitorDigest {
  readonly monitorId: string;
  readonly boot: string;
  readonly sequence: number;
  readonly sentAtMs: number;
  readonly heard: readonly DigestHearing[];
  readonly probes: readonly DigestProbeOutcome[];
  readonly complete: boolean;
  readonly echo: AuthorityEcho | null;
}

export type DetectorInput =
  | { readonly type: "leadership.changed"; readonly nowMs: number; readonly isLeader: boolean; readonly leaseValidUntilMs: number; readonly termNonce: string }
  | { readonly type: "digest.received"; readonly nowMs: number; readonly replyTo: string; readonly digest: MonitorDigest }
  | { readonly type: "tick"; readonly nowMs: number }
  | { readonly type: "view.host"; readonly nowMs: number; readonly hostId: string; readonly state: HostState; readonly incarnation: number }
  | { readonly type: "view.host-removed"; readonly nowMs: number; readonly hostId: string };

export type DetectorNoteKind =
  | "term.started"
  | "term.ended"
  | "host.suspected"
  | "host.refuted"
  | "host.superseded"
  | "host.declared"
  /**
   * An incarnation heard after the view recorded the host failed (or fenced) at an older one fell silent before the
   * view brought it up: it was never a member and ran nothing, so there is no failure to record.
   */
  | "host.rejoin-lapsed"
  /** A declared failure proposed again: the view holds that incarnation up (it left maintenance dead). */
  | "host.redeclared"
  | "digest.ignored"
  | "host.untracked"
  | "host.removed";

export type DetectorOutput =
  | { readonly kind: "reply-authority"; readonly replyTo: string; readonly monitorId: string; readonly grant: AuthorityGrant }
  | { readonly kind: "propose-host-failed"; readonly hostId: string; readonly incarnation: number; readonly leaseExpiresByMs: number }
  | { readonly kind: "propose-host-up"; readonly hostId: string; readonly incarnation: number }
  | { readonly kind: "note"; readonly note: DetectorNoteKind; readonly fields: Readonly<Record<string, string | number | boolean>> };

interface Term {
  readonly termId: string;
  readonly activeSinceMs: number;
  leaseValidUntilMs: number;
  /** Seq of the last authority grant sent in this term. */
  lastSeq: number;
}

interface MonitorRecord {
  readonly monitorId: string;
  boot: string;
  /** Leader clock of the last grant sent to this boot; null before the first. */
  lastGrantAtMs: number | null;
  /** The last grant sent to any earlier boot of this monitor in this term. */
  earlierBootsLastGrantAtMs: number | null;
  /** Highest grant seq this boot echoed in a complete digest: it honours every exclusion up to it. */
  coveredSeq: number;
  lastDigestAtMs: number;
}

type HostStatus = "alive" | "suspect" | "declared";

interface HostRecord {
  readonly hostId: string;
  incarnation: number;
  /** Leader clock no earlier than the latest hearing of `incarnation`. */
  heardNoLaterThanMs: number;
  status: HostStatus;
  /**
   * Seeded from the view as joining and never heard: the view does not know
   * the agent's incarnation yet (0 from registration), so the first hearing's
   * is adopted, not taken for a rejoin. Hosts the view holds up carry the
   * agent's number (`host.up` from joining takes it).
   */
  unheard: boolean;
  /** The view holds the host `joining`: propose it up once it is heard. */
  viewJoining: boolean;
  /** What the view last told for the host; null while it has told nothing (a host heard before the view named it). */
  viewState: HostState | null;
  viewIncarnation: number;
  /** The monitor whose digest last raised `heardNoLaterThanMs`, and when that digest arrived; null when seeded. */
  lastReporter: string | null;
  reportedAtMs: number;
}

interface Suspicion {
  readonly hostId: string;
  /** The incarnation under suspicion; grants to it (and lower) are refused from `round` on. */
  readonly incarnation: number;
  readonly suspectedAtMs: number;
  /** The first grant seq that excludes this host. */
  readonly round: number;
  /** Latest hearing of this incarnation or lower: any grant to it was made no later. */
  heardNoLaterThanMs: number;
  /** A higher incarnation was heard: this one isolated itself or the host restarted. No refutation possible. */
  supersededBy: number | null;
  /** Monitors whose probe for this round went unanswered. */
  readonly unansweredProbes: Set<string>;
}

interface DeclaredExclusion {
  readonly incarnation: number;
  readonly untilMs: number;
}

export interface FailureDetectorState {
  readonly selfId: string;
  readonly config: FailureDetectorConfig;
  term: Term | null;
  readonly monitors: Map<string, MonitorRecord>;
  readonly hosts: Map<string, HostRecord>;
  readonly suspicions: Map<string, Suspicion>;
  readonly declaredExclusions: Map<string, DeclaredExclusion>;
  /** Hosts removed from the view, oldest first (at most maxTrackedHosts): their hearings are ignored until the view holds them again. */
  readonly removedHosts: Set<string>;
  readonly counters: {
    digestsAnswered: number;
    digestsIgnored: number;
    suspicions: number;
    refutations: number;
    declarations: number;
    /** Silent incarnations that were never members (host.rejoin-lapsed): nothing proposed. */
    lapsedRejoins: number;
    hostsUntracked: number;
    hostsRemoved: number;
    hearingsOfRemovedHosts: number;
  };
}

export function createFailureDetector(selfId: string, config: FailureDetectorConfig): FailureDetectorState {
  return {
    selfId,
    config,
    term: null,
    monitors: new Map(),
    hosts: new Map(),
    suspicions: new Map(),
    declaredExclusions: new Map(),
    removedHosts: new Set(),
    counters: { digestsAnswered: 0, digestsIgnored: 0, suspicions: 0, refutations: 0, declarations: 0, lapsedRejoins: 0, hostsUntracked: 0, hostsRemoved: 0, hearingsOfRemovedHosts: 0 },
  };
}

export function isDetectorActive(state: FailureDetectorState, nowMs: number): boolean {
  return state.term !== null && nowMs < state.term.leaseValidUntilMs;
}

/** Everything a monitor may have granted under authority sent at `grantAtMs`, plus the isolation that follows, has ended by this leader time. */
function afterAuthorityMs(config: FailureDetectorConfig, grantAtMs: number): number {
  return grantAtMs + leaderMsCovering(config.authorityValidForMs + config.hostLeaseMs + config.maxIsolationDelayMs, config.maxClockRateErrorPpm);
}

/** A lease granted on a hearing no later than `heardAtMs`, and the isolation that follows, has ended by this leader time. */
function afterHearingMs(config: FailureDetectorConfig, heardAtMs: number): number {
  return heardAtMs + leaderMsCovering(config.hostLeaseMs + config.maxIsolationDelayMs, config.maxClockRateErrorPpm);
}

/**
 * The earliest leader time at which the suspected incarnation's lease has surely
 * run out and its VMs are off. Grants come from monitors holding authority; a
 * monitor that echoed an exclusion of this host in a complete digest reported
 * every hearing (so every grant) before it, and the rest are bounded by the
 * last authority they got before the exclusion. Earlier terms and earlier
 * boots of a monitor are bounded by their authority alone.
 */
export function declareNotBeforeMs(state: FailureDetectorState, suspicion: Suspicion): number {
  const { config, term } = state;
  if (term === null) return Number.POSITIVE_INFINITY;
  let notBefore = Math.max(afterAuthorityMs(config, term.activeSinceMs), afterHearingMs(config, suspicion.heardNoLaterThanMs));
  for (const monitor of state.monitors.values()) {
    if (monitor.earlierBootsLastGrantAtMs !== null) notBefore = Math.max(notBefore, afterAuthorityMs(config, monitor.earlierBootsLastGrantAtMs));
    if (monitor.lastGrantAtMs !== null && monitor.coveredSeq < suspicion.round) {
      // Every grant sent after the suspicion excludes the host, so the last one that did not was sent by then.
      notBefore = Math.max(notBefore, afterAuthorityMs(config, Math.min(monitor.lastGrantAtMs, suspicion.suspectedAtMs)));
    }
  }
  return notBefore;
}

function probesSettled(state: FailureDetectorState, suspicion: Suspicion, nowMs: number, notBeforeMs: number): boolean {
  if (suspicion.supersededBy !== null) return true;
  if (nowMs >= notBeforeMs + state.config.probeOutcomeWaitMs) return true;
  for (const monitor of state.monitors.values()) {
    if (monitor.coveredSeq >= suspicion.round && !suspicion.unansweredProbes.has(monitor.monitorId)) return false;
  }
  return true;
}

function viewHoldsFailed(host: HostRecord): boolean {
  return host.viewState === "failed" || host.viewState === "fenced";
}

/** The view holds the host failed or fenced at an older incarnation: this one never came up in it. */
function neverMember(host: HostRecord, incarnation: number): boolean {
  return viewHoldsFailed(host) && incarnation > host.viewIncarnation;
}

class Step {
  readonly outputs: DetectorOutput[] = [];
  constructor(readonly state: FailureDetectorState, readonly nowMs: number) {}

  note(note: DetectorNoteKind, fields: Record<string, string | number | boolean>): void {
    this.outputs.push({ kind: "note", note, fields });
  }

  lapseCheck(): void {
    const term = this.state.term;
    if (term !== null && !(this.nowMs < term.leaseValidUntilMs)) this.endTerm("lease-lapsed");
  }

  startTerm(termNonce: string, leaseValidUntilMs: number): void {
    const state = this.state;
    const termId = `${state.selfId}.${termNonce}`;
    state.term = { termId, activeSinceMs: this.nowMs, leaseValidUntilMs, lastSeq: 0 };
    state.monitors.clear();
    state.suspicions.clear();
    state.declaredExclusions.clear();
    // What another leader did meanwhile is unknown: every host gets a fresh grace period and is judged anew.
    for (const host of state.hosts.values()) {
      host.status = "alive";
      host.heardNoLaterThanMs = this.nowMs;
      host.lastReporter = null;
      // Except what the view holds failed: refused grants from the term's start (whole-system fuzz seed 450052: the
      // leader's term restarted after a lease gap, and a monitor leased the incarnation it had declared 3 s before).
      this.keepViewFailure(host);
    }
    this.note("term.started", { termId, leaseValidUntilMs });
  }

  endTerm(reason: string): void {
    const term = this.state.term;
    if (term === null) return;
    this.state.term = null;
    this.state.suspicions.clear();
    this.note("term.ended", { termId: term.termId, reason });
  }

  leadership(isLeader: boolean, leaseValidUntilMs: number, termNonce: string): void {
    if (!isLeader || !(leaseValidUntilMs > this.nowMs)) {
      this.endTerm(isLeader ? "lease-lapsed" : "not-leader");
      return;
    }
    // A renewal inside the running lease continues the term; after a gap, another leader may have acted.
    if (this.state.term !== null) this.state.term.leaseValidUntilMs = leaseValidUntilMs;
    else this.startTerm(termNonce, leaseValidUntilMs);
  }

  suspect(host: HostRecord, supersededBy: number | null): boolean {
    const state = this.state;
    const term = state.term;
    if (term === null || state.suspicions.size >= state.config.maxSuspectedHosts) return false;
    state.suspicions.set(host.hostId, {
      hostId: host.hostId,
      incarnation: host.incarnation,
      suspectedAtMs: this.nowMs,
      round: term.lastSeq + 1,
      heardNoLaterThanMs: host.heardNoLaterThanMs,
      supersededBy,
      unansweredProbes: new Set(),
    });
    host.status = "suspect";
    state.counters.suspicions++;
    this.note(supersededBy === null ? "host.suspected" : "host.superseded", {
      hostId: host.hostId,
      incarnation: host.incarnation,
      silentForMs: this.nowMs - host.heardNoLaterThanMs,
      ...(supersededBy === null ? {} : { newIncarnation: supersededBy }),
    });
    if (supersededBy !== null) host.incarnation = supersededBy;
    return true;
  }

  hearing(hostId: string, incarnation: number, heardAtMs: number, reporter: string): void {
    const state = this.state;
    let host = state.hosts.get(hostId);
    if (host === undefined) {
      if (state.removedHosts.has(hostId)) {
        // Not a member any more: a removed host whose agent still runs is neither failing nor joining.
        state.counters.hearingsOfRemovedHosts++;
        return;
      }
      if (state.hosts.size >= state.config.maxTrackedHosts) {
        state.counters.hostsUntracked++;
        if (state.counters.hostsUntracked === 1) this.note("host.untracked", { hostId, maxTrackedHosts: state.config.maxTrackedHosts });
        return;
      }
      host = {
        hostId,
        incarnation,
        heardNoLaterThanMs: heardAtMs,
        status: "alive",
        unheard: false,
        viewJoining: false,
        viewState: null,
        viewIncarnation: 0,
        lastReporter: reporter,
        reportedAtMs: this.nowMs,
      };
      state.hosts.set(hostId, host);
      return;
    }
    if (host.unheard && host.status !== "declared") {
      // Known only from the view as joining: the first hearing gives the agent's incarnation.
      host.unheard = false;
      host.incarnation = incarnation;
      const pending = state.suspicions.get(hostId);
      if (pending !== undefined) this.refute(host, pending);
      this.raiseHeard(host, heardAtMs, reporter);
      this.proposeUpIfJoining(host);
      return;
    }
    const suspicion = state.suspicions.get(hostId);
    if (suspicion !== undefined) {
      if (incarnation <= suspicion.incarnation) {
        if (heardAtMs > suspicion.heardNoLaterThanMs) {
          suspicion.heardNoLaterThanMs = heardAtMs;
          if (incarnation === suspicion.incarnation && suspicion.supersededBy === null) {
            this.refute(host, suspicion);
            this.raiseHeard(host, heardAtMs, reporter);
          }
        }
        return;
      }
      // Heard with a newer incarnation: the suspected one is gone for good (isolated, or the host restarted).
      if (suspicion.supersededBy === null || incarnation > suspicion.supersededBy) {
        suspicion.supersededBy = incarnation;
        host.incarnation = incarnation;
      }
      if (incarnation === host.incarnation) this.raiseHeard(host, heardAtMs, reporter);
      return;
    }
    if (host.status === "declared") {
      if (incarnation <= host.incarnation) {
        // Still heard as the declared incarnation: keep refusing it grants, so the host moves to a new one.
        state.declaredExclusions.delete(hostId);
        this.excludeDeclared(hostId, host.incarnation);
      } else {
        host.incarnation = incarnation;
        host.status = "alive";
        this.setHeard(host, heardAtMs, reporter);
        state.declaredExclusions.delete(hostId);
        this.outputs.push({ kind: "propose-host-up", hostId, incarnation });
      }
      return;
    }
    if (incarnation < host.incarnation) return;
    if (incarnation > host.incarnation) {
      // The old incarnation must be declared before the new one can be up; if no room, the next hearing tries again.
      this.suspect(host, incarnation);
      // The new incarnation's own hearings start now; the suspicion keeps the old one's.
      if (host.status === "suspect") this.setHeard(host, heardAtMs, reporter);
      return;
    }
    this.raiseHeard(host, heardAtMs, reporter);
    this.proposeUpIfJoining(host);
  }

  proposeUpIfJoining(host: HostRecord): void {
    if (!host.viewJoining || host.status !== "alive" || this.state.term === null) return;
    host.viewJoining = false;
    this.outputs.push({ kind: "propose-host-up", hostId: host.hostId, incarnation: host.incarnation });
  }

  raiseHeard(host: HostRecord, heardAtMs: number, reporter: string): void {
    if (heardAtMs > host.heardNoLaterThanMs) this.setHeard(host, heardAtMs, reporter);
  }

  setHeard(host: HostRecord, heardAtMs: number, reporter: string): void {
    host.heardNoLaterThanMs = heardAtMs;
    host.lastReporter = reporter;
    host.reportedAtMs = this.nowMs;
  }

  refute(host: HostRecord, suspicion: Suspicion): void {
    this.state.suspicions.delete(host.hostId);
    host.status = "alive";
    this.state.counters.refutations++;
    this.note("host.refuted", { hostId: host.hostId, incarnation: suspicion.incarnation, suspectedForMs: this.nowMs - suspicion.suspectedAtMs });
  }

  digest(replyTo: string, digest: MonitorDigest): void {
    const state = this.state;
    const term = state.term;
    if (term === null) {
      state.counters.digestsIgnored++;
      return;
    }
    let monitor = state.monitors.get(digest.monitorId);
    if (monitor === undefined) {
      if (state.monitors.size >= state.config.maxMonitors) {
        state.counters.digestsIgnored++;
        this.note("digest.ignored", { monitorId: digest.monitorId, reason: "too many monitors", maxMonitors: state.config.maxMonitors });
        return;
      }
      monitor = { monitorId: digest.monitorId, boot: digest.boot, lastGrantAtMs: null, earlierBootsLastGrantAtMs: null, coveredSeq: 0, lastDigestAtMs: this.nowMs };
      state.monitors.set(digest.monitorId, monitor);
    } else if (monitor.boot !== digest.boot) {
      // A restarted monitor forgot hearings it never reported: bound its earlier grants by their authority alone.
      if (monitor.lastGrantAtMs !== null) monitor.earlierBootsLastGrantAtMs = Math.max(monitor.earlierBootsLastGrantAtMs ?? 0, monitor.lastGrantAtMs);
      monitor.boot = digest.boot;
      monitor.lastGrantAtMs = null;
      monitor.coveredSeq = 0;
    }
    monitor.lastDigestAtMs = this.nowMs;
    const echo = digest.echo;
    if (digest.complete && echo !== null && echo.termId === term.termId && echo.seq <= term.lastSeq && echo.seq > monitor.coveredSeq) {
      monitor.coveredSeq = echo.seq;
    }
    const ppm = state.config.maxClockRateErrorPpm;
    for (const entry of digest.heard) {
      this.hearing(entry.hostId, entry.incarnation, heardNoLaterThanMs(this.nowMs, digest.sentAtMs - entry.heardAtMs, ppm), digest.monitorId);
    }
    for (const outcome of digest.probes) {
      const suspicion = state.suspicions.get(outcome.hostId);
      if (suspicion !== undefined && suspicion.round === outcome.round && !outcome.answered) suspicion.unansweredProbes.add(digest.monitorId);
    }
    this.reply(replyTo, monitor);
  }

  reply(replyTo: string, monitor: MonitorRecord): void {
    const state = this.state;
    const term = state.term!;
    const seq = ++term.lastSeq;
    monitor.lastGrantAtMs = this.nowMs;
    const excluded: { hostId: string; incarnation: number }[] = [];
    const probe: { hostId: string; incarnation: number; round: number }[] = [];
    for (const suspicion of state.suspicions.values()) {
      excluded.push({ hostId: suspicion.hostId, incarnation: suspicion.incarnation });
      if (suspicion.supersededBy === null && !suspicion.unansweredProbes.has(monitor.monitorId)) {
        probe.push({ hostId: suspicion.hostId, incarnation: suspicion.incarnation, round: suspicion.round });
      }
    }
    for (const [hostId, exclusion] of state.declaredExclusions) {
      if (exclusion.untilMs <= this.nowMs) {
        state.declaredExclusions.delete(hostId);
        continue;
      }
      if (!state.suspicions.has(hostId)) excluded.push({ hostId, incarnation: exclusion.incarnation });
    }
    state.counters.digestsAnswered++;
    this.outputs.push({
      kind: "reply-authority",
      replyTo,
      monitorId: monitor.monitorId,
      grant: { termId: term.termId, seq, validForMs: state.config.authorityValidForMs, leaseMs: state.config.hostLeaseMs, excluded, probe },
    });
  }

  tick(): void {
    const state = this.state;
    if (state.term === null) return;
    const suspectBeforeMs = this.nowMs - state.config.suspectAfterMs;
    for (const host of state.hosts.values()) {
      // A host the view holds joining and nobody heard yet is not failing: it has not started.
      if (host.unheard && host.viewJoining) continue;
      if (host.status === "alive" && host.heardNoLaterThanMs <= suspectBeforeMs && this.silentEverywhere(host)) {
        if (!this.suspect(host, null)) break;
      }
    }
    for (const suspicion of state.suspicions.values()) {
      const notBeforeMs = declareNotBeforeMs(state, suspicion);
      if (this.nowMs >= notBeforeMs && probesSettled(state, suspicion, this.nowMs, notBeforeMs)) this.declare(suspicion, notBeforeMs);
    }
  }

  /**
   * Silent for long enough is not yet "no monitor heard it": the monitor that
   * reported it last may only be cut off from the leader. Wait until that
   * monitor reported again without the host, or has been silent so long that its
   * authority surely ran out (then the host cannot have stayed with it).
   */
  silentEverywhere(host: HostRecord): boolean {
    if (host.lastReporter === null) return true;
    const reporter = this.state.monitors.get(host.lastReporter);
    if (reporter === undefined || reporter.lastDigestAtMs > host.reportedAtMs) return true;
    const config = this.state.config;
    return this.nowMs >= reporter.lastDigestAtMs + leaderMsCovering(config.authorityValidForMs, config.maxClockRateErrorPpm);
  }

  declare(suspicion: Suspicion, notBeforeMs: number): void {
    const state = this.state;
    const host = state.hosts.get(suspicion.hostId);
    state.suspicions.delete(suspicion.hostId);
    state.declaredExclusions.delete(suspicion.hostId);
    // Still refused grants either way, so a host alive without a lease moves to a new incarnation and can rejoin.
    this.excludeDeclared(suspicion.hostId, suspicion.incarnation);
    if (host !== undefined && neverMember(host, suspicion.incarnation)) {
      // The view has nothing to end (viewCommandsFor would propose nothing): a warning of a declared failure would be
      // a false alarm. Should the view still bring this incarnation up, it is declared then (followLiveView).
      state.counters.lapsedRejoins++;
      this.note("host.rejoin-lapsed", {
        hostId: suspicion.hostId,
        incarnation: suspicion.incarnation,
        viewState: host.viewState ?? "unknown",
        viewIncarnation: host.viewIncarnation,
        silentForMs: this.nowMs - suspicion.heardNoLaterThanMs,
      });
    } else {
      state.counters.declarations++;
      this.outputs.push({ kind: "propose-host-failed", hostId: suspicion.hostId, incarnation: suspicion.incarnation, leaseExpiresByMs: notBeforeMs });
      this.note("host.declared", {
        hostId: suspicion.hostId,
        incarnation: suspicion.incarnation,
        silentForMs: this.nowMs - suspicion.heardNoLaterThanMs,
        unansweredProbes: suspicion.unansweredProbes.size,
      });
    }
    if (host === undefined) return;
    if (suspicion.supersededBy !== null) {
      host.status = "alive";
      host.incarnation = Math.max(host.incarnation, suspicion.supersededBy);
      this.outputs.push({ kind: "propose-host-up", hostId: suspicion.hostId, incarnation: host.incarnation });
    } else {
      host.status = "declared";
      host.incarnation = suspicion.incarnation;
    }
  }

  /**
   * The declared incarnation's lease has run out, so refusing it grants is not
   * needed for the declaration; it makes a host that is still alive without a
   * lease (it never got one, or hears only late) move to a new incarnation,
   * which can then rejoin. Refreshed whenever the declared incarnation is heard.
   */
  excludeDeclared(hostId: string, incarnation: number): void {
    const exclusions = this.state.declaredExclusions;
    if (exclusions.size >= this.state.config.maxDeclaredExclusions) {
      const oldest = exclusions.keys().next();
      if (!oldest.done) exclusions.delete(oldest.value);
    }
    exclusions.set(hostId, { incarnation, untilMs: this.nowMs + declaredExclusionRetentionMs });
  }

  /**
   * The view no longer holds the host (`host.remove`, which the view allows
   * only without VMs and not while up or suspect): nothing of it is left to
   * protect, so any suspicion or exclusion of it goes too.
   */
  removeHost(hostId: string): void {
    const state = this.state;
    const tracked = state.hosts.delete(hostId);
    state.suspicions.delete(hostId);
    state.declaredExclusions.delete(hostId);
    state.removedHosts.delete(hostId);
    if (state.removedHosts.size >= state.config.maxTrackedHosts) {
      const oldest = state.removedHosts.values().next();
      if (!oldest.done) state.removedHosts.delete(oldest.value);
    }
    state.removedHosts.add(hostId);
    state.counters.hostsRemoved++;
    this.note("host.removed", { hostId, wasTracked: tracked });
  }

  /**
   * The view holds the host up (or suspect) at `viewIncarnation`, and only that
   * incarnation's end frees its VMs: the detector judges that number, whatever
   * it tracked before. The view moves without this detector (another leader
   * committed a failure and a rejoin, or this one's proposals were mapped onto
   * the view's numbers), so a record behind the view is brought forward, and a
   * newer incarnation already heard makes the view's one superseded.
   */
  followLiveView(host: HostRecord, viewIncarnation: number): void {
    const state = this.state;
    // The view took the agent's number from a hearing: no first hearing left to adopt.
    host.unheard = false;
    const suspicion = state.suspicions.get(host.hostId);
    if (suspicion !== undefined) {
      // A suspicion of the view's incarnation, or of a newer one (recorded against the view's), still ends it.
      if (suspicion.incarnation >= viewIncarnation) return;
      // The view has already recorded the end of the suspected incarnation.
      state.suspicions.delete(host.hostId);
      const newer = suspicion.supersededBy;
      host.status = "alive";
      host.incarnation = viewIncarnation;
      if (newer === viewIncarnation) return;
      this.graceFromNow(host);
      if (newer !== null && newer > viewIncarnation) this.supersedeViewIncarnation(host, newer);
      return;
    }
    if (host.status === "declared") {
      if (host.incarnation >= viewIncarnation) {
        // The declared failure ends the view's incarnation. It may be on its way to the view, or it was never
        // proposed: a host in maintenance keeps that state in the view when it fails (a reboot during
        // maintenance must not end maintenance), so leaving maintenance brings a dead host back up. Proposed
        // again (the same command, applied once); its lease ran out before the declaration, so by now too.
        this.redeclare(host);
        return;
      }
      host.status = "alive";
      host.incarnation = viewIncarnation;
      this.graceFromNow(host);
      return;
    }
    if (host.incarnation < viewIncarnation) {
      host.incarnation = viewIncarnation;
      this.graceFromNow(host);
    } else if (host.incarnation > viewIncarnation && state.term !== null) {
      // Heard alive at a newer incarnation while the view still holds an older one up: that one ended and must be declared.
      const newer = host.incarnation;
      host.incarnation = viewIncarnation;
      this.graceFromNow(host);
      this.supersedeViewIncarnation(host, newer);
    }
  }

  redeclare(host: HostRecord): void {
    if (this.state.term === null) return;
    this.outputs.push({ kind: "propose-host-failed", hostId: host.hostId, incarnation: host.incarnation, leaseExpiresByMs: this.nowMs });
    this.note("host.redeclared", { hostId: host.hostId, incarnation: host.incarnation });
  }

  /**
   * Declaring the view's incarnation needs a bound on its hearings, and those
   * heard while another incarnation was tracked were not kept: start the bound
   * at now (a later declaration, never an earlier one) with a fresh round of
   * exclusions, as for any new suspicion.
   */
  supersedeViewIncarnation(host: HostRecord, newer: number): void {
    if (!this.suspect(host, newer)) {
      // No room: the next view change or term start tries again; meanwhile the newer one is what the detector tracks.
      host.incarnation = newer;
    }
  }

  /** A hearing bound of now, from no monitor: a grace period, and a conservative bound for declaring. */
  graceFromNow(host: HostRecord): void {
    host.heardNoLaterThanMs = Math.max(host.heardNoLaterThanMs, this.nowMs);
    host.lastReporter = null;
    host.reportedAtMs = this.nowMs;
  }

  /**
   * The view records the host failed at `viewIncarnation`: a suspicion of an
   * older incarnation has nothing left to end. A newer incarnation it heard is
   * alive (and rejoins); otherwise the view's failed one is
   * what the detector holds declared.
   */
  leaveEndedSuspicion(host: HostRecord, viewIncarnation: number): void {
    const suspicion = this.state.suspicions.get(host.hostId);
    if (suspicion === undefined || suspicion.incarnation >= viewIncarnation) return;
    this.state.suspicions.delete(host.hostId);
    const newer = suspicion.supersededBy;
    if (newer !== null && newer > viewIncarnation) {
      // Proposed up by the caller, as any host that came back after the view's failure.
      host.status = "alive";
      host.incarnation = newer;
    } else {
      host.status = "declared";
      host.incarnation = viewIncarnation;
    }
  }

  viewHost(hostId: string, viewState: HostState, incarnation: number): void {
    const state = this.state;
    // Registered again after a removal: a member like any other.
    state.removedHosts.delete(hostId);
    const host = state.hosts.get(hostId);
    const failed = viewState === "failed" || viewState === "fenced";
    if (host !== undefined) {
      host.viewState = viewState;
      host.viewIncarnation = incarnation;
    }
    if (host === undefined) {
      if (state.hosts.size >= state.config.maxTrackedHosts) {
        state.counters.hostsUntracked++;
        return;
      }
      // A host in maintenance is tracked like any other: a new leader must still declare it when it dies, or the manager
      // never learns that the VMs it was evacuating (or that came back to it) are gone.
      const graceFromMs = Math.max(this.nowMs, state.term?.activeSinceMs ?? this.nowMs);
      state.hosts.set(hostId, {
        hostId,
        incarnation,
        heardNoLaterThanMs: graceFromMs,
        status: "alive",
        unheard: viewState === "joining",
        viewJoining: viewState === "joining",
        viewState,
        viewIncarnation: incarnation,
        lastReporter: null,
        reportedAtMs: graceFromMs,
      });
      this.keepViewFailure(state.hosts.get(hostId)!);
      return;
    }
    host.viewJoining = viewState === "joining";
    if (host.viewJoining && !host.unheard) this.proposeUpIfJoining(host);
    if (viewState === "up" || viewState === "suspect") {
      this.followLiveView(host, incarnation);
      return;
    }
    if (failed) this.leaveEndedSuspicion(host, incarnation);
    if (failed && host.status === "alive" && !state.suspicions.has(hostId) && host.incarnation > incarnation && !host.unheard && state.term !== null) {
      // The view still names the failed incarnation, but the host already came back with a newer one.
      this.outputs.push({ kind: "propose-host-up", hostId, incarnation: host.incarnation });
    }
    this.keepViewFailure(host);
  }

  /**
   * The view holds the host failed or fenced at its incarnation (or a newer one): it is declared, and refused grants
   * from now on. A leader that did not declare it (a new term, a view that moved without this detector, a host first
   * seen failed) refuses them as the declaring one does: a monitor grants on a heartbeat before its digest reports the
   * hearing (whole-system fuzz seeds 300236, 301089: a new leader's monitor leased a declared incarnation).
   */
  keepViewFailure(host: HostRecord): void {
    if (!viewHoldsFailed(host)) return;
    if (host.status === "alive" && host.incarnation <= host.viewIncarnation) {
      host.status = "declared";
      host.incarnation = host.viewIncarnation;
    }
    if (host.status === "declared" && !this.state.suspicions.has(host.hostId)) this.excludeDeclared(host.hostId, host.incarnation);
  }
}

export interface DetectorStep {
  readonly outputs: readonly DetectorOutput[];
}

/** One input; mutates `state` and returns what to do. Never throws for well-typed input. */
export function stepFailureDetector(state: FailureDetectorState, input: DetectorInput): DetectorStep {
  const step = new Step(state, input.nowMs);
  step.lapseCheck();
  switch (input.type) {
    case "leadership.changed":
      step.leadership(input.isLeader, input.leaseValidUntilMs, input.termNonce);
      break;
    case "digest.received":
      step.digest(input.replyTo, input.digest);
      break;
    case "tick":
      step.tick();
      break;
    case "view.host":
      step.viewHost(input.hostId, input.state, input.incarnation);
      break;
    case "view.host-removed":
      step.removeHost(input.hostId);
      break;
  }
  return { outputs: step.outputs };
}

export interface DetectorHostView {
  readonly hostId: string;
  readonly incarnation: number;
  readonly status: HostStatus;
  readonly heardNoLaterThanMs: number;
}

/** For tests and status pages. */
export function detectorHost(state: FailureDetectorState, hostId: string): DetectorHostView | undefined {
  const host = state.hosts.get(hostId);
  return host === undefined ? undefined : { hostId, incarnation: host.incarnation, status: host.status, heardNoLaterThanMs: host.heardNoLaterThanMs };
}

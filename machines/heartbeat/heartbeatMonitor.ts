import { assign, enqueueActions, setup } from "xstate";

/**
 * The monitor side of the heartbeat protocol. It acknowledges every heartbeat
 * at once and remembers when it last heard each host.
 *
 * With `reporting` configured (host-level failure detection, ARCHITECTURE §3)
 * it also:
 * - sends the leader a digest every `digestIntervalMs` on `mon.report` (a
 *   request): every host heard since the last digest the leader acknowledged,
 *   probe outcomes, and the authority it applied last;
 * - holds *authority* from the leader's answer: until `sentAtMs + validForMs`
 *   of its own clock, counted from when it sent the digest (so a slow answer
 *   can only shorten it), it grants each acked heartbeat a lease of the
 *   leader's `leaseMs`, except to the (host, incarnation ≤ n) pairs the leader
 *   excluded. Without authority it still acks, saying so, and the host moves
 *   on to another monitor;
 * - probes the hosts the leader names (SWIM's indirect probe) and reports
 *   whether they answered. An answer counts as hearing the host.
 *
 * Every grant is a hearing and every hearing goes into the next digest, which
 * is what lets the leader bound the last lease any monitor granted
 * (docs/failure-detection.md). The maps are updated in place: copying them per
 * heartbeat would cost O(hosts) on the hottest path. The actor layer stamps
 * `receivedAtMs` from the node's clock and carries out the named actions.
 */
export const maxTrackedHostsPerMonitor = 20_000;
/** A digest without an outcome after this many intervals is given up (its request has surely ended). */
export const maxDigestIntervalsInFlight = 3;

/** What an ack says about a lease: granted, or why not. `not-leasing`: this monitor runs without leases. */
export const grantOutcomes = ["lease", "no-authority", "excluded", "not-leasing"] as const;
export type GrantOutcome = (typeof grantOutcomes)[number];

export interface MonitorReportingConfig {
  readonly digestIntervalMs: number;
  /** Hosts per digest at most; the rest wait for the next one (which is then sent at once). */
  readonly maxHostsPerDigest: number;
  /** Probes running at once at most; further requests wait for a later authority grant. */
  readonly maxProbesInFlight: number;
}

export const defaultMonitorReportingConfig: MonitorReportingConfig = {
  digestIntervalMs: 100,
  maxHostsPerDigest: 4_096,
  maxProbesInFlight: 256,
};

export interface HeartbeatMonitorInput {
  readonly monitorId: string;
  /** Leases and digests to the leader; absent: a plain ack-only monitor. (The actor stamps each digest with its boot id.) */
  readonly reporting?: MonitorReportingConfig;
}

export interface HeardHost {
  readonly lastSequence: number;
  readonly lastHeardAtMs: number;
}

export interface PendingHearing {
  readonly incarnation: number;
  readonly heardAtMs: number;
}

export interface DigestHearing {
  readonly hostId: string;
  readonly incarnation: number;
  readonly heardAtMs: number;
}

export interface DigestProbeOutcome {
  readonly hostId: string;
  readonly round: number;
  readonly answered: boolean;
}

export interface AuthorityEcho {
  readonly termId: string;
  readonly seq: number;
}

/** What the leader's answer to a digest carries (the `mon.authority` body). */
export interface AuthorityGrant {
  readonly termId: string;
  readonly seq: number;
  readonly validForMs: number;
  readonly leaseMs: number;
  readonly excluded: readonly { readonly hostId: string; readonly incarnation: number }[];
  readonly probe: readonly { readonly hostId: string; readonly incarnation: number; readonly round: number }[];
}

export interface HeldAuthority {
  readonly untilMs: number;
  readonly leaseMs: number;
  readonly echo: AuthorityEcho;
  /** hostId → grants refused to incarnations ≤ this. */
  readonly excluded: ReadonlyMap<string, number>;
}

type ProbeState = "running" | "answered" | "unanswered";

export interface ProbeTask {
  readonly hostId: string;
  readonly incarnation: number;
  readonly round: number;
  state: ProbeState;
  /** The digest that carries the outcome; null when not yet sent (or the send failed). */
  reportedIn: number | null;
  /** The leader acknowledged a digest with the outcome: never probed again for this round. */
  delivered: boolean;
}

export interface DigestToSend {
  readonly sequence: number;
  readonly heard: readonly DigestHearing[];
  readonly probes: readonly DigestProbeOutcome[];
  readonly complete: boolean;
  readonly echo: AuthorityEcho | null;
}

export interface HeartbeatMonitorContext {
  readonly monitorId: string;
  /** Insertion-ordered; a host heard again moves to the end, so the oldest is evicted first. */
  readonly heard: Map<string, HeardHost>;
  readonly heartbeatsAcked: number;
  readonly hostsEvicted: number;
  readonly reporting: MonitorReportingConfig | null;
  /** Hearings not yet in a digest the leader acknowledged (the latest per host). */
  readonly pending: Map<string, PendingHearing>;
  readonly inFlight: DigestToSend | null;
  /** Digest intervals the in-flight digest has waited for its answer. */
  readonly intervalsInFlight: number;
  readonly nextDigestSequence: number;
  readonly authority: HeldAuthority | null;
  readonly probes: Map<string, ProbeTask>;
  readonly leasesGranted: number;
  readonly grantsRefused: number;
  readonly digestsAcknowledged: number;
  readonly digestsFailed: number;
  /** Hearings not recorded because `pending` was full: such hosts get no lease either. */
  readonly hearingsDropped: number;
}

export type HeartbeatMonitorEvent =
  | {
      readonly type: "heartbeat.received";
      readonly hostId: string;
      readonly sequence: number;
      /** Absent from plain (lease-less) hosts. */
      readonly incarnation?: number;
      readonly receivedAtMs: number;
      readonly replyTo: string;
    }
  | { readonly type: "digest.replied"; readonly sequence: number; readonly sentAtMs: number; readonly authority: AuthorityGrant }
  | { readonly type: "digest.failed"; readonly sequence: number }
  | { readonly type: "probe.answered"; readonly hostId: string; readonly round: number; readonly incarnation: number; readonly answeredAtMs: number }
  | { readonly type: "probe.unanswered"; readonly hostId: string; readonly round: number }
  | { readonly type: "haring.resume" };

export interface AckHeartbeatParams {
  readonly replyTo: string;
  readonly hostId: string;
  readonly sequence: number;
  readonly leaseMs: number;
  readonly grant: GrantOutcome;
}

export interface ProbeHostsParams {
  readonly probes: readonly { readonly hostId: string; readonly incarnation: number; readonly round: number }[];
}

const emptyExclusions: ReadonlyMap<string, number> = new Map();

type HeartbeatReceived = Extract<HeartbeatMonitorEvent, { type: "heartbeat.received" }>;

/** The grant for one heartbeat, decided on the time the monitor heard it. */
export function grantFor(context: HeartbeatMonitorContext, event: HeartbeatReceived): { leaseMs: number; grant: GrantOutcome } {
  if (context.reporting === null) return { leaseMs: 0, grant: "not-leasing" };
  const authority = context.authority;
  if (authority === null || !(event.receivedAtMs < authority.untilMs)) return { leaseMs: 0, grant: "no-authority" };
  // A hearing that cannot be reported cannot be granted: the leader would not know to wait for it.
  if (!context.pending.has(event.hostId) && context.pending.size >= maxTrackedHostsPerMonitor) return { leaseMs: 0, grant: "no-authority" };
  const excludedUpTo = authority.excluded.get(event.hostId);
  if (excludedUpTo !== undefined && (event.incarnation ?? 0) <= excludedUpTo) return { leaseMs: 0, grant: "excluded" };
  return { leaseMs: authority.leaseMs, grant: "lease" };
}

/** The ack for one heartbeat (the `ackHeartbeat` action's parameters). */
export function ackFor(context: HeartbeatMonitorContext, event: HeartbeatReceived): AckHeartbeatParams {
  const { leaseMs, grant } = grantFor(context, event);
  return { replyTo: event.replyTo, hostId: event.hostId, sequence: event.sequence, leaseMs, grant };
}

/**
 * What hearing a heartbeat changes, after its ack went out: the maps in place,
 * the counters in the returned update. `heartbeat.received` does only this and
 * the ack, in every state, which is what lets the actor take it past xstate
 * (`heartbeatMonitorShortcut`).
 */
export function heartbeatHeard(context: HeartbeatMonitorContext, event: HeartbeatReceived, granted: boolean): Partial<HeartbeatMonitorContext> {
  const heard = context.heard;
  heard.delete(event.hostId);
  heard.set(event.hostId, { lastSequence: event.sequence, lastHeardAtMs: event.receivedAtMs });
  let hostsEvicted = context.hostsEvicted;
  for (const hostId of heard.keys()) {
    if (heard.size <= maxTrackedHostsPerMonitor) break;
    heard.delete(hostId);
    hostsEvicted++;
  }
  if (context.reporting === null) return { heartbeatsAcked: context.heartbeatsAcked + 1, hostsEvicted };
  const recorded = recordPending(context.pending, event.hostId, event.incarnation ?? 0, event.receivedAtMs);
  return {
    heartbeatsAcked: context.heartbeatsAcked + 1,
    hostsEvicted,
    leasesGranted: context.leasesGranted + (granted ? 1 : 0),
    grantsRefused: context.grantsRefused + (granted ? 0 : 1),
    hearingsDropped: context.hearingsDropped + (recorded ? 0 : 1),
  };
}

/**
 * The machine's step on `heartbeat.received`, without xstate: sends the ack
 * through `ack` and returns the next context. Other events: undefined (the
 * machine handles them).
 */
export function heartbeatMonitorShortcut(
  context: HeartbeatMonitorContext,
  event: HeartbeatMonitorEvent,
  ack: (params: AckHeartbeatParams) => void,
): HeartbeatMonitorContext | undefined {
  if (event.type !== "heartbeat.received") return undefined;
  const params = ackFor(context, event);
  ack(params);
  return { ...context, ...heartbeatHeard(context, event, params.grant === "lease") };
}

function recordPending(pending: Map<string, PendingHearing>, hostId: string, incarnation: number, heardAtMs: number): boolean {
  const existing = pending.get(hostId);
  if (existing === undefined) {
    if (pending.size >= maxTrackedHostsPerMonitor) return false;
    pending.set(hostId, { incarnation, heardAtMs });
    return true;
  }
  // Keep the newest incarnation; within it the latest hearing (a late probe answer may be older).
  if (incarnation > existing.incarnation || (incarnation === existing.incarnation && heardAtMs > existing.heardAtMs)) {
    pending.set(hostId, { incarnation, heardAtMs });
  }
  return true;
}

function buildDigest(context: HeartbeatMonitorContext): DigestToSend {
  const limit = context.reporting?.maxHostsPerDigest ?? 0;
  const heard: DigestHearing[] = [];
  for (const [hostId, hearing] of context.pending) {
    if (heard.length >= limit) break;
    heard.push({ hostId, incarnation: hearing.incarnation, heardAtMs: hearing.heardAtMs });
  }
  for (const entry of heard) context.pending.delete(entry.hostId);
  const sequence = context.nextDigestSequence;
  const probes: DigestProbeOutcome[] = [];
  for (const task of context.probes.values()) {
    if (task.state === "running" || task.delivered || task.reportedIn !== null) continue;
    task.reportedIn = sequence;
    probes.push({ hostId: task.hostId, round: task.round, answered: task.state === "answered" });
  }
  return { sequence, heard, probes, complete: context.pending.size === 0, echo: context.authority?.echo ?? null };
}

/** A digest the leader did not acknowledge: its hearings and probe outcomes go into the next one. */
function requeueDigest(context: HeartbeatMonitorContext, digest: DigestToSend): void {
  for (const entry of digest.heard) recordPending(context.pending, entry.hostId, entry.incarnation, entry.heardAtMs);
  for (const task of context.probes.values()) if (task.reportedIn === digest.sequence) task.reportedIn = null;
}

/** Applies the leader's answer; returns the probes to start. */
function applyAuthority(context: HeartbeatMonitorContext, grant: AuthorityGrant): ProbeHostsParams["probes"] {
  const probesToStart: { hostId: string; incarnation: number; round: number }[] = [];
  const listed = new Set<string>();
  const maxProbes = context.reporting?.maxProbesInFlight ?? 0;
  for (const request of grant.probe) {
    listed.add(request.hostId);
    const task = context.probes.get(request.hostId);
    if (task !== undefined && task.round === request.round) continue;
    if (task === undefined && context.probes.size >= maxProbes) continue;
    context.probes.set(request.hostId, { ...request, state: "running", reportedIn: null, delivered: false });
    probesToStart.push(request);
  }
  // The leader stopped asking: it decided, or the host was heard.
  for (const hostId of context.probes.keys()) if (!listed.has(hostId)) context.probes.delete(hostId);
  for (const task of context.probes.values()) {
    if (task.reportedIn !== null && context.inFlight !== null && task.reportedIn === context.inFlight.sequence) task.delivered = true;
  }
  return probesToStart;
}

function exclusionsOf(grant: AuthorityGrant): ReadonlyMap<string, number> {
  if (grant.excluded.length === 0) return emptyExclusions;
  const excluded = new Map<string, number>();
  for (const entry of grant.excluded) excluded.set(entry.hostId, Math.max(entry.incarnation, excluded.get(entry.hostId) ?? 0));
  return excluded;
}

export const heartbeatMonitorMachine = setup({
  types: {
    context: {} as HeartbeatMonitorContext,
    events: {} as HeartbeatMonitorEvent,
    input: {} as HeartbeatMonitorInput,
  },
  actions: {
    ackHeartbeat: (_, _params: AckHeartbeatParams) => {},
    sendDigest: (_, _params: DigestToSend) => {},
    probeHosts: (_, _params: ProbeHostsParams) => {},
  },
  guards: {
    reports: ({ context }) => context.reporting !== null,
    replyIsForInFlight: ({ context, event }) =>
      (event.type === "digest.replied" || event.type === "digest.failed") && context.inFlight !== null && context.inFlight.sequence === event.sequence,
  },
  delays: {
    digestInterval: ({ context }) => context.reporting?.digestIntervalMs ?? 1_000,
  },
}).createMachine({
  id: "heartbeatMonitor",
  context: ({ input }) => ({
    monitorId: input.monitorId,
    heard: new Map(),
    heartbeatsAcked: 0,
    hostsEvicted: 0,
    reporting: input.reporting ?? null,
    pending: new Map(),
    inFlight: null,
    intervalsInFlight: 0,
    nextDigestSequence: 1,
    authority: null,
    probes: new Map(),
    leasesGranted: 0,
    grantsRefused: 0,
    digestsAcknowledged: 0,
    digestsFailed: 0,
    hearingsDropped: 0,
  }),
  initial: "starting",
  states: {
    starting: {
      always: [{ guard: "reports", target: "reporting" }, { target: "serving" }],
    },
    serving: {},
    reporting: {
      entry: enqueueActions(({ context, enqueue }) => {
        let digestsFailed = context.digestsFailed;
        if (context.inFlight !== null) {
          // Still waiting: the request's timeout (shorter than the interval) normally answers first. Past
          // `maxDigestIntervalsInFlight` its outcome event was lost (a full mailbox): give it up, or digests stop for good.
          if (context.intervalsInFlight + 1 < maxDigestIntervalsInFlight) {
            enqueue.assign({ intervalsInFlight: context.intervalsInFlight + 1 });
            return;
          }
          requeueDigest(context, context.inFlight);
          digestsFailed++;
        }
        const digest = buildDigest(context);
        enqueue.assign({ inFlight: digest, intervalsInFlight: 0, nextDigestSequence: digest.sequence + 1, digestsFailed });
        enqueue({ type: "sendDigest", params: digest });
      }),
      after: { digestInterval: { target: "reporting", reenter: true } },
      on: {
        "haring.resume": { target: "reporting", reenter: true },
        "digest.replied": {
          guard: "replyIsForInFlight",
          actions: enqueueActions(({ context, event, enqueue }) => {
            if (event.type !== "digest.replied") return;
            const probes = applyAuthority(context, event.authority);
            const authority: HeldAuthority = {
              untilMs: event.sentAtMs + event.authority.validForMs,
              leaseMs: event.authority.leaseMs,
              echo: { termId: event.authority.termId, seq: event.authority.seq },
              excluded: exclusionsOf(event.authority),
            };
            enqueue.assign({ authority, inFlight: null, digestsAcknowledged: context.digestsAcknowledged + 1 });
            if (probes.length > 0) enqueue({ type: "probeHosts", params: { probes } });
          }),
        },
        "digest.failed": {
          guard: "replyIsForInFlight",
          actions: assign(({ context }) => {
            requeueDigest(context, context.inFlight!);
            return { inFlight: null, digestsFailed: context.digestsFailed + 1 };
          }),
        },
        "probe.answered": {
          actions: assign(({ context, event }) => {
            const task = context.probes.get(event.hostId);
            if (task !== undefined && task.round === event.round && task.state === "running") task.state = "answered";
            recordPending(context.pending, event.hostId, event.incarnation, event.answeredAtMs);
            return {};
          }),
        },
        "probe.unanswered": {
          actions: assign(({ context, event }) => {
            const task = context.probes.get(event.hostId);
            if (task !== undefined && task.round === event.round && task.state === "running") task.state = "unanswered";
            return {};
          }),
        },
      },
    },
  },
  on: {
    "heartbeat.received": {
      actions: [
        { type: "ackHeartbeat", params: ({ context, event }) => ackFor(context, event) },
        assign(({ context, event }) => heartbeatHeard(context, event, grantFor(context, event).grant === "lease")),
      ],
    },
  },
});

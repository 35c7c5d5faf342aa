import { assign, cancel, enqueueActions, raise, setup } from "xstate";
import type { GrantOutcome } from "./heartbeatMonitor.ts";
import { rendezvousOrder } from "./rendezvousOrder.ts";

/**
 * The host side of the heartbeat protocol (ARCHITECTURE §3): the host
 * heartbeats one monitor at a time (its target; plus the copies below),
 * chosen by rendezvous hash; after `missedAcksBeforeSwitch` missed acks in a
 * row it switches to another monitor at once, and after `driftBackAfterMs` on
 * a fallback it tries its preferred monitor again. Drift-back is counted in
 * beats rather than with a second timer: one timer per host keeps the machine
 * cheap, which matters when a simulation runs thousands of them.
 *
 * The monitor that acked last is the host's *anchor* while it beats another
 * one that has not acked since the switch (`anchorIndex`): every beat then
 * also goes to the anchor as a copy (`sendAnchorHeartbeat`), so trying other
 * monitors never takes a beat from the one known to answer. When the anchor
 * has answered and the target misses, the host goes back to the anchor (its
 * next beat, on the timer, goes there: `anchor-answered`); when the target
 * acks, it is the new anchor. A switch after missed acks goes to the next
 * monitor in rendezvous order after the last one tried, skipping the anchor
 * (it has its copies), so a host whose monitor died or stopped hearing it
 * tries every other monitor in turn instead of coming back to it. A monitor
 * whose last stint (the beats since the host switched to it) ended in missed
 * acks without a single ack is *silent* until it acks again, and one miss, not
 * `missedAcksBeforeSwitch`, ends its next stint; only the outcomes of
 * heartbeats sent during a stint count in it.
 *
 * Why: fuzz seed 1274 (a host hearing one monitor under loss) made switches
 * prefer the monitor that acked last, giving a silent monitor one beat and
 * then going back to the one that acked last. Seed 1271 showed both halves of
 * that still starve the monitor that answers: with only one monitor answering
 * under 17% loss, every switch took a beat from it, and once one stint of two
 * misses made it silent too it got one beat in two (7 of the 11 beats of a
 * 1.1 s lease, all lost); and a host whose monitor stopped hearing it went
 * back to that monitor after every trial, so the one live monitor got every
 * fourth beat. Copies cost one more heartbeat per beat, and only while the
 * target has not acked.
 *
 * With `lease` configured the host also holds a **lease** (partition
 * consistency): each ack may grant `leaseMs`, counted from when the host *sent*
 * the heartbeat. When the lease runs out the host isolates itself at once
 * (`isolate`: its VMs are powered off or shut down, per config) and rejoins with
 * the next incarnation; an ack that says the monitor has no authority counts as
 * a miss, so the host moves to a monitor that can grant. It pets its watchdog
 * on every beat while it holds a lease or has nothing to protect, so a hung
 * agent is reset within the watchdog timeout of its lease ending. A host
 * starts by isolating too: a new process cannot know what its predecessor's
 * lease allowed. A host without a lease that hears it is excluded (the leader
 * suspects, or declared, its incarnation) takes the next incarnation at once:
 * it has nothing to lose, and the old one can never be granted again. Nor does
 * an incarnation join for ever: the leader keeps a declared incarnation
 * excluded only for a while (`declaredExclusionRetentionMs`), so one that won
 * no lease for `maxJoiningWithoutLeaseMs` (cut off from every monitor that
 * could grant: whole-system fuzz seed 540461) takes the next one too
 * (`joining.expired`: the actor judges the limit before every beat, which
 * a joining host has every interval anyway, so a host paused past it never
 * beats with the old incarnation again).
 *
 * Effects are named actions the actor layer provides: `sendHeartbeat` and
 * `sendAnchorHeartbeat` each issue a request that must end in exactly one
 * `heartbeat.acked` or `heartbeat.missed` event carrying the same sequence
 * number and monitor; `isolate` must end in
 * `isolation.done` with a higher incarnation once that is durable; the actor
 * turns `leaseExtended` into a timer that sends `lease.expired`.
 *
 * The beat timer is a pair of named actions, `armBeat` (the last entry action
 * of `beating`) and `disarmBeat` (its exit action), which by default are
 * exactly what xstate does for an `after` delay: a delayed raise of
 * `beat.due` and its cancellation. The actor layer provides them as a timer of
 * its own that hands `beat.due` to the machine at once, so that the beat, the
 * hottest event of a simulation, can take the actor host's shortcut past
 * xstate (`heartbeatSenderShortcut`).
 */
export interface HeartbeatSenderConfig {
  readonly heartbeatIntervalMs: number;
  readonly missedAcksBeforeSwitch: number;
  readonly driftBackAfterMs: number;
}

/** The plain heartbeat pair's defaults; failure detection uses `defaultHostAgentConfig` (machines/detection). */
export const defaultHeartbeatSenderConfig: HeartbeatSenderConfig = {
  heartbeatIntervalMs: 200,
  missedAcksBeforeSwitch: 2,
  driftBackAfterMs: 30_000,
};

export interface HostLeaseInput {
  /** The last incarnation this host persisted (0 on a new disk); it starts by isolating into the next one. */
  readonly persistedIncarnation: number;
  /** Grants longer than this are cut to it: a lease is only as good as the monitor's config, so cap it. */
  readonly maxAcceptedLeaseMs: number;
}

export interface HeartbeatSenderInput {
  readonly hostId: string;
  readonly monitorIds: readonly string[];
  readonly config: HeartbeatSenderConfig;
  readonly lease?: HostLeaseInput;
}

/**
 * legacy: no leases (a plain heartbeat pair). joining: no lease yet in this
 * incarnation and nothing running that needs one. leased: holds a lease until
 * `leaseUntilMs`. The `isolating` *state* covers the time between a lost lease
 * and the next incarnation being durable.
 */
export type HostLeasePhase = "legacy" | "joining" | "leased" | "isolating";

/**
 * boot: a fresh start; lease-expired: the lease ran out; refuted: excluded by the leader while holding no lease, so it
 * moves on to a new incarnation at once; unleased: joined and won no lease for the actor's `maxJoiningWithoutLeaseMs`
 * (the leader may have declared the incarnation meanwhile and stopped excluding it since), so it moves on as well.
 */
export type IsolationReason = "boot" | "lease-expired" | "refuted" | "unleased";

export interface HeartbeatSenderContext {
  readonly hostId: string;
  readonly config: HeartbeatSenderConfig;
  /** Preference order; index 0 is the preferred monitor. */
  readonly monitorOrder: readonly string[];
  readonly targetIndex: number;
  /** Whether the current target has acked since the host switched to it. */
  readonly targetAckedThisStint: boolean;
  /** The first sequence number sent in the current stint: outcomes of earlier heartbeats (a copy's miss that arrives after the host went back to the anchor) do not count in it. */
  readonly firstSequenceOfStint: number;
  /** Index in `monitorOrder` of the monitor whose ack the host counted last; -1 before the first. */
  readonly lastAckedIndex: number;
  /** Whether the anchor (`anchorIndex`) answered a heartbeat since the host switched to the current target. */
  readonly anchorAckedThisStint: boolean;
  /** Per `monitorOrder` index: its last stint ended in missed acks without a single ack, and it has not acked since. */
  readonly silent: readonly boolean[];
  /** The monitor that acked last, or the one the host moved to by rotation since (not by going back to the anchor); the next trial is the one after it. */
  readonly lastTrialIndex: number;
  readonly nextSequence: number;
  readonly consecutiveMissedAcks: number;
  /** Beats sent to the current fallback monitor; drift back to the preferred one is due after `driftBackAfterMs` worth. */
  readonly beatsOnFallback: number;
  readonly acksReceived: number;
  readonly acksMissed: number;
  readonly switches: number;
  readonly maxAcceptedLeaseMs: number;
  readonly phase: HostLeasePhase;
  readonly incarnation: number;
  /** Host clock; 0 while there is no lease. */
  readonly leaseUntilMs: number;
  /** Acks for heartbeats sent before this sequence belong to an earlier incarnation and grant nothing. */
  readonly firstSequenceOfIncarnation: number;
  readonly isolationReason: IsolationReason;
  readonly isolations: number;
  readonly leasesGranted: number;
}

export type HeartbeatSenderEvent =
  | {
      readonly type: "heartbeat.acked";
      readonly sequence: number;
      readonly monitorId: string;
      /** Absent from plain acks (no leases). */
      readonly grant?: GrantOutcome;
      readonly leaseMs?: number;
      /** Host clock when the acked heartbeat left; the lease runs from here. */
      readonly sentAtMs?: number;
      /** Host clock when the ack arrived. */
      readonly receivedAtMs?: number;
    }
  | { readonly type: "heartbeat.missed"; readonly sequence: number; readonly monitorId: string }
  | { readonly type: "lease.expired"; readonly nowMs: number }
  /** The incarnation joined `joiningStarted`'s limit ago and holds no lease (the actor judges it before every beat). */
  | { readonly type: "joining.expired"; readonly incarnation: number }
  | { readonly type: "isolation.done"; readonly incarnation: number }
  | { readonly type: "probe.received"; readonly replyTo: string }
  | { readonly type: "haring.resume" }
  /** The beat timer ran out (see `armBeat`). */
  | { readonly type: "beat.due" };

export interface SendHeartbeatParams {
  readonly monitorId: string;
  readonly sequence: number;
  readonly incarnation: number;
}

export interface TargetSwitchedParams {
  readonly from: string;
  readonly to: string;
  /** anchor-answered: back to the monitor that acked last, which answered while the target missed. */
  readonly reason: "missed-acks" | "drift-back" | "anchor-answered";
}

export interface PetWatchdogParams {
  /** Pet only while the node's clock reads below this; null: nothing needs a lease, pet anyway. */
  readonly leaseUntilMs: number | null;
}

export interface IsolateParams {
  readonly reason: IsolationReason;
  readonly incarnation: number;
}

export interface JoiningStartedParams {
  readonly incarnation: number;
}

export interface LeaseExtendedParams {
  readonly leaseUntilMs: number;
}

export interface ArmBeatParams {
  readonly delayMs: number;
}

/** What the default `armBeat` raises, and `disarmBeat` cancels. */
export const beatTimerId = "beat";

export interface AnswerProbeParams {
  readonly replyTo: string;
  readonly incarnation: number;
}

function currentTarget(context: HeartbeatSenderContext): string {
  return context.monitorOrder[context.targetIndex] ?? "";
}

const isSilent = (context: HeartbeatSenderContext, index: number): boolean => context.silent[index] ?? false;

/** `silent` with the monitor at `index` marked `value` (the same array when it already is). */
const withSilent = (context: HeartbeatSenderContext, index: number, value: boolean): readonly boolean[] =>
  isSilent(context, index) === value ? context.silent : context.silent.map((wasSilent, i) => (i === index ? value : wasSilent));

/**
 * The monitor that acked last while the host beats another one that has not
 * acked since the switch (a trial after missed acks, or the preferred monitor
 * after a drift-back); -1 when the target itself acked last, or nothing has.
 * Every beat goes to the anchor too, so the one monitor known to answer keeps
 * getting a heartbeat every interval while others are tried.
 */
function anchorIndex(context: HeartbeatSenderContext): number {
  const last = context.lastAckedIndex;
  return last >= 0 && last !== context.targetIndex ? last : -1;
}

/**
 * Where a missed-acks switch goes: the next monitor in rendezvous order after
 * the last one tried (`lastTrialIndex`: the one that acked last, or the last
 * one moved to since), never the current target, and never the anchor while
 * another monitor is left: the anchor gets every beat as a copy, so a turn as
 * target would only take a beat from a monitor not yet tried. With two
 * monitors the only other one is the anchor.
 */
function nextTrialIndex(context: HeartbeatSenderContext): number {
  const count = context.monitorOrder.length;
  const anchor = anchorIndex(context);
  let fallback = -1;
  for (let step = 1; step <= count; step++) {
    const index = (context.lastTrialIndex + step) % count;
    if (index === context.targetIndex) continue;
    if (index !== anchor) return index;
    fallback = index;
  }
  return fallback;
}

/**
 * Misses in a row that end a stint: one for a monitor that was silent when the
 * host came to it and has not acked since. Leaving a silent monitor does not
 * send at once, as leaving after a streak does: the next heartbeat waits for
 * the beat timer. Otherwise answers that fail at once (`no-authority` acks
 * before there is a leader) would have the host send as fast as the network
 * answers, round and round its silent monitors; this way it sends at most one
 * heartbeat per interval plus one per streak, as before.
 */
const missesToLeave = (context: HeartbeatSenderContext): number => (isSilent(context, context.targetIndex) ? 1 : context.config.missedAcksBeforeSwitch);

const missedAcksSwitchParams = ({ context }: { context: HeartbeatSenderContext }): TargetSwitchedParams => ({
  from: currentTarget(context),
  to: context.monitorOrder[nextTrialIndex(context)] ?? "",
  reason: "missed-acks",
});

function switchedAfterMisses(context: HeartbeatSenderContext): Partial<HeartbeatSenderContext> {
  const index = nextTrialIndex(context);
  const silent = withSilent(context, context.targetIndex, !context.targetAckedThisStint);
  return {
    targetIndex: index,
    targetAckedThisStint: false,
    firstSequenceOfStint: context.nextSequence,
    anchorAckedThisStint: false,
    silent,
    lastTrialIndex: index,
    consecutiveMissedAcks: 0,
    beatsOnFallback: 0,
    acksMissed: context.acksMissed + 1,
    switches: context.switches + 1,
  };
}

/**
 * Back to the anchor, which answered while the target missed: the target's
 * stint ended without an ack, as after a streak. Not a trial, so the next
 * streak tries the monitor after the last one tried.
 */
function returnedToAnchor(context: HeartbeatSenderContext): Partial<HeartbeatSenderContext> {
  return {
    targetIndex: anchorIndex(context),
    targetAckedThisStint: false,
    firstSequenceOfStint: context.nextSequence,
    anchorAckedThisStint: false,
    silent: withSilent(context, context.targetIndex, true),
    consecutiveMissedAcks: 0,
    beatsOnFallback: 0,
    acksMissed: context.acksMissed + 1,
    switches: context.switches + 1,
  };
}

const anchorAnsweredSwitchParams = ({ context }: { context: HeartbeatSenderContext }): TargetSwitchedParams => ({
  from: currentTarget(context),
  to: context.monitorOrder[anchorIndex(context)] ?? "",
  reason: "anchor-answered",
});

const driftBackAfterBeats = (config: HeartbeatSenderConfig): number =>
  Math.max(1, Math.ceil(config.driftBackAfterMs / config.heartbeatIntervalMs));

type Acked = Extract<HeartbeatSenderEvent, { type: "heartbeat.acked" }>;

/** A monitor without authority cannot renew the lease: for switching, its ack is as good as none. */
const countsAsMiss = (event: HeartbeatSenderEvent): boolean =>
  event.type === "heartbeat.missed" || (event.type === "heartbeat.acked" && event.grant === "no-authority");

/** The lease after this ack: a grant counts only if this incarnation sent the heartbeat and the lease had not run out when it arrived. */
function leaseAfter(context: HeartbeatSenderContext, event: Acked): number {
  if (event.grant !== "lease" || context.phase === "legacy" || event.sentAtMs === undefined || event.receivedAtMs === undefined) return context.leaseUntilMs;
  if (event.sequence < context.firstSequenceOfIncarnation) return context.leaseUntilMs;
  if (context.phase === "leased" && !(event.receivedAtMs < context.leaseUntilMs)) return context.leaseUntilMs;
  const leaseMs = Math.min(event.leaseMs ?? 0, context.maxAcceptedLeaseMs);
  // A grant that had already run out when it arrived (a very late ack) grants nothing.
  if (!(leaseMs > 0) || !(event.sentAtMs + leaseMs > event.receivedAtMs)) return context.leaseUntilMs;
  return Math.max(context.leaseUntilMs, event.sentAtMs + leaseMs);
}

/** An outcome of a heartbeat sent in this stint (an ack or a miss carry the sequence and monitor they answer). */
const sentThisStint = (context: HeartbeatSenderContext, event: HeartbeatSenderEvent): event is Acked | Extract<HeartbeatSenderEvent, { type: "heartbeat.missed" }> =>
  (event.type === "heartbeat.acked" || event.type === "heartbeat.missed") && event.sequence >= context.firstSequenceOfStint;

const isForCurrentTarget = (context: HeartbeatSenderContext, event: HeartbeatSenderEvent): boolean =>
  sentThisStint(context, event) && event.monitorId === currentTarget(context);

const missForCurrentTarget = (context: HeartbeatSenderContext, event: HeartbeatSenderEvent): boolean => countsAsMiss(event) && isForCurrentTarget(context, event);

/** A miss of the target while the anchor answered in this stint: the anchor answers and the target does not, so go back. */
const missWhileAnchorAnswers = (context: HeartbeatSenderContext, event: HeartbeatSenderEvent): boolean =>
  missForCurrentTarget(context, event) && context.anchorAckedThisStint && anchorIndex(context) >= 0;

/**
 * The anchor answered. Whatever stint its copy was sent in: an ack comes
 * within the ack timeout or not at all, so it is fresh news, and a trial that
 * fails at once (no responders) often ends its stint before the copy's ack
 * arrives.
 */
const anchorAcked = (context: HeartbeatSenderContext, event: HeartbeatSenderEvent): boolean => {
  const anchor = anchorIndex(context);
  return anchor >= 0 && event.type === "heartbeat.acked" && !countsAsMiss(event) && event.monitorId === context.monitorOrder[anchor];
};

const missCompletesStreak = (context: HeartbeatSenderContext, event: HeartbeatSenderEvent): boolean =>
  missForCurrentTarget(context, event) && context.monitorOrder.length > 1 && context.consecutiveMissedAcks + 1 >= missesToLeave(context);

const excludedWithoutLease = (context: HeartbeatSenderContext, event: HeartbeatSenderEvent): boolean =>
  event.type === "heartbeat.acked" && event.grant === "excluded" && context.phase === "joining" && event.sequence >= context.firstSequenceOfIncarnation;

const driftBackDue = (context: HeartbeatSenderContext): boolean =>
  context.targetIndex !== 0 && context.beatsOnFallback >= driftBackAfterBeats(context.config);

const heartbeatParams = (context: HeartbeatSenderContext): SendHeartbeatParams => ({
  monitorId: currentTarget(context),
  sequence: context.nextSequence,
  incarnation: context.incarnation,
});

/** The anchor's copy of a beat, with a sequence number of its own; undefined without an anchor. */
function anchorHeartbeatParams(context: HeartbeatSenderContext): SendHeartbeatParams | undefined {
  const anchor = anchorIndex(context);
  if (anchor < 0) return undefined;
  return { monitorId: context.monitorOrder[anchor] ?? "", sequence: context.nextSequence + 1, incarnation: context.incarnation };
}

const petParams = (context: HeartbeatSenderContext): PetWatchdogParams => ({ leaseUntilMs: context.phase === "leased" ? context.leaseUntilMs : null });

const armBeatParams = (context: HeartbeatSenderContext): ArmBeatParams => ({ delayMs: context.config.heartbeatIntervalMs });

const beatSent = (context: HeartbeatSenderContext): Partial<HeartbeatSenderContext> => ({
  nextSequence: context.nextSequence + (anchorIndex(context) >= 0 ? 2 : 1),
  beatsOnFallback: context.targetIndex === 0 ? 0 : context.beatsOnFallback + 1,
});

const countedMiss = (context: HeartbeatSenderContext): Partial<HeartbeatSenderContext> => ({
  consecutiveMissedAcks: context.consecutiveMissedAcks + 1,
  acksMissed: context.acksMissed + 1,
});

const countedAck = (context: HeartbeatSenderContext): Partial<HeartbeatSenderContext> => ({
  consecutiveMissedAcks: 0,
  acksReceived: context.acksReceived + 1,
  targetAckedThisStint: true,
  lastAckedIndex: context.targetIndex,
  lastTrialIndex: context.targetIndex,
  silent: withSilent(context, context.targetIndex, false),
});

/** The anchor answered: it is not silent, and a miss of the target now sends the host back to it. */
const countedAnchorAck = (context: HeartbeatSenderContext): Partial<HeartbeatSenderContext> => {
  const anchor = anchorIndex(context);
  return {
    acksReceived: context.acksReceived + 1,
    anchorAckedThisStint: true,
    silent: withSilent(context, anchor, false),
  };
};

function extendedLease(context: HeartbeatSenderContext, event: HeartbeatSenderEvent): Partial<HeartbeatSenderContext> {
  if (event.type !== "heartbeat.acked") return {};
  const leaseUntilMs = leaseAfter(context, event);
  if (leaseUntilMs === context.leaseUntilMs) return {};
  return { leaseUntilMs, phase: "leased" as const, leasesGranted: context.leasesGranted + 1 };
}

/** The effects a shortcut step may carry out: the named actions of the machine it stands in for. */
export interface HeartbeatSenderShortcutEffects {
  sendHeartbeat(params: SendHeartbeatParams): void;
  sendAnchorHeartbeat(params: SendHeartbeatParams): void;
  petWatchdog(params: PetWatchdogParams): void;
  leaseExtended(params: LeaseExtendedParams): void;
  armBeat(params: ArmBeatParams): void;
  disarmBeat(): void;
}

/**
 * The machine's step, without xstate, where in `beating` it only runs actions
 * or re-enters `beating` without a switch: an ack or a miss (counting,
 * extending the lease) and a beat with no drift-back due (exit, then entry:
 * send, pet, count, re-arm). Carries out the effects as the machine would and
 * returns the next context. Undefined where the machine switches monitors,
 * isolates, or does nothing: the machine handles those. The guards are the
 * machine's, in its order.
 */
export function heartbeatSenderShortcut(
  context: HeartbeatSenderContext,
  state: unknown,
  event: HeartbeatSenderEvent,
  effects: HeartbeatSenderShortcutEffects,
): HeartbeatSenderContext | undefined {
  if (state !== "beating") return undefined;
  if (event.type === "beat.due") {
    if (driftBackDue(context)) return undefined;
    effects.disarmBeat();
    effects.sendHeartbeat(heartbeatParams(context));
    const anchorBeat = anchorHeartbeatParams(context);
    if (anchorBeat !== undefined) effects.sendAnchorHeartbeat(anchorBeat);
    effects.petWatchdog(petParams(context));
    const next: HeartbeatSenderContext = { ...context, ...beatSent(context) };
    effects.armBeat(armBeatParams(next));
    return next;
  }
  if (event.type !== "heartbeat.acked" && event.type !== "heartbeat.missed") return undefined;
  if (missWhileAnchorAnswers(context, event) || missCompletesStreak(context, event)) return undefined;
  if (missForCurrentTarget(context, event)) return { ...context, ...countedMiss(context) };
  if (event.type !== "heartbeat.acked" || excludedWithoutLease(context, event)) return undefined;
  const counted: HeartbeatSenderContext = isForCurrentTarget(context, event)
    ? { ...context, ...countedAck(context) }
    : anchorAcked(context, event)
      ? { ...context, ...countedAnchorAck(context) }
      : context;
  const next: HeartbeatSenderContext = { ...counted, ...extendedLease(counted, event) };
  effects.leaseExtended({ leaseUntilMs: next.leaseUntilMs });
  return next;
}

const leaseExtendedParams = ({ context }: { context: HeartbeatSenderContext }): LeaseExtendedParams => ({ leaseUntilMs: context.leaseUntilMs });

/**
 * What a miss of the target does while beating, first match first: the same for a `heartbeat.missed` and for an
 * ack that counts as a miss (`countsAsMiss`).
 */
const missOfTarget = [
  // the next beat, on its timer, goes to the anchor: it answers, the target does not
  { guard: "missWhileAnchorAnswers", actions: [{ type: "targetSwitched", params: anchorAnsweredSwitchParams }, "returnToAnchor"] },
  // after a silent monitor's single beat, the next beat (on its timer) goes to the new target
  { guard: "missEndsSilentStint", actions: [{ type: "targetSwitched", params: missedAcksSwitchParams }, "moveToNextTarget"] },
  {
    guard: "missCompletesStreak",
    // re-entering sends to the new target at once instead of waiting out the interval
    target: "beating",
    reenter: true,
    actions: [{ type: "targetSwitched", params: missedAcksSwitchParams }, "moveToNextTarget"],
  },
  { guard: "missForCurrentTarget", actions: "countMiss" },
] as const;

export const heartbeatSenderMachine = setup({
  types: {
    context: {} as HeartbeatSenderContext,
    events: {} as HeartbeatSenderEvent,
    input: {} as HeartbeatSenderInput,
  },
  actions: {
    sendHeartbeat: (_, _params: SendHeartbeatParams) => {},
    /** The anchor's copy of a beat (`anchorIndex`); the same request as `sendHeartbeat`, named apart so it can be counted. */
    sendAnchorHeartbeat: (_, _params: SendHeartbeatParams) => {},
    targetSwitched: (_, _params: TargetSwitchedParams) => {},
    petWatchdog: (_, _params: PetWatchdogParams) => {},
    isolate: (_, _params: IsolateParams) => {},
    leaseExtended: (_, _params: LeaseExtendedParams) => {},
    /** The incarnation is durable and joins: the actor starts its limit on joining without a lease (`joining.expired`). */
    joiningStarted: (_, _params: JoiningStartedParams) => {},
    answerProbe: (_, _params: AnswerProbeParams) => {},
    armBeat: raise({ type: "beat.due" }, { id: beatTimerId, delay: (_, params: ArmBeatParams) => params.delayMs }),
    disarmBeat: cancel(beatTimerId),
    moveToNextTarget: assign(({ context }) => switchedAfterMisses(context)),
    returnToAnchor: assign(({ context }) => returnedToAnchor(context)),
    moveToPreferredTarget: assign({
      targetIndex: 0,
      targetAckedThisStint: false,
      firstSequenceOfStint: ({ context }) => context.nextSequence,
      anchorAckedThisStint: false,
      lastTrialIndex: 0,
      consecutiveMissedAcks: 0,
      beatsOnFallback: 0,
      switches: ({ context }) => context.switches + 1,
    }),
    countMiss: assign(({ context }) => countedMiss(context)),
    extendLease: assign(({ context, event }) => extendedLease(context, event)),
    countAck: assign(({ context }) => countedAck(context)),
    countAnchorAck: assign(({ context }) => countedAnchorAck(context)),
  },
  guards: {
    leasing: ({ context }) => context.phase !== "legacy",
    isForCurrentTarget: ({ context, event }) => isForCurrentTarget(context, event),
    missCompletesStreak: ({ context, event }) => missCompletesStreak(context, event),
    missEndsSilentStint: ({ context, event }) => missCompletesStreak(context, event) && isSilent(context, context.targetIndex),
    missForCurrentTarget: ({ context, event }) => missForCurrentTarget(context, event),
    missWhileAnchorAnswers: ({ context, event }) => missWhileAnchorAnswers(context, event),
    anchorAcked: ({ context, event }) => anchorAcked(context, event),
    driftBackDue: ({ context }) => driftBackDue(context),
    excludedWithoutLease: ({ context, event }) => excludedWithoutLease(context, event),
    leaseRanOut: ({ context, event }) => event.type === "lease.expired" && context.phase === "leased" && event.nowMs >= context.leaseUntilMs,
    joinedTooLong: ({ context, event }) => event.type === "joining.expired" && context.phase === "joining" && event.incarnation === context.incarnation,
    isNewIncarnation: ({ context, event }) => event.type === "isolation.done" && event.incarnation > context.incarnation,
  },
}).createMachine({
  id: "heartbeatSender",
  context: ({ input }) => {
    if (input.monitorIds.length === 0) throw new RangeError("a heartbeat sender needs at least one monitor");
    const lease = input.lease;
    if (lease !== undefined) {
      if (!Number.isSafeInteger(lease.persistedIncarnation) || lease.persistedIncarnation < 0) throw new RangeError("persistedIncarnation must be a non-negative integer");
      if (!(lease.maxAcceptedLeaseMs > 0)) throw new RangeError("maxAcceptedLeaseMs must be positive");
    }
    return {
      hostId: input.hostId,
      config: input.config,
      monitorOrder: rendezvousOrder(input.hostId, input.monitorIds),
      targetIndex: 0,
      targetAckedThisStint: false,
      firstSequenceOfStint: 1,
      anchorAckedThisStint: false,
      lastAckedIndex: -1,
      silent: input.monitorIds.map(() => false),
      lastTrialIndex: 0,
      nextSequence: 1,
      consecutiveMissedAcks: 0,
      beatsOnFallback: 0,
      acksReceived: 0,
      acksMissed: 0,
      switches: 0,
      maxAcceptedLeaseMs: lease?.maxAcceptedLeaseMs ?? 0,
      phase: lease === undefined ? "legacy" : "isolating",
      incarnation: lease?.persistedIncarnation ?? 0,
      leaseUntilMs: 0,
      firstSequenceOfIncarnation: 1,
      isolationReason: "boot",
      isolations: 0,
      leasesGranted: 0,
    };
  },
  initial: "starting",
  states: {
    starting: {
      always: [{ guard: "leasing", target: "isolating" }, { target: "beating" }],
    },
    isolating: {
      entry: [
        assign({ phase: "isolating", leaseUntilMs: 0, isolations: ({ context }) => context.isolations + 1 }),
        {
          type: "isolate",
          params: ({ context }) => ({ reason: context.isolationReason, incarnation: context.incarnation }),
        },
      ],
      on: {
        "isolation.done": {
          guard: "isNewIncarnation",
          target: "beating",
          actions: [
            assign(({ context, event }) => ({
              incarnation: (event as Extract<HeartbeatSenderEvent, { type: "isolation.done" }>).incarnation,
              phase: "joining" as const,
              leaseUntilMs: 0,
              firstSequenceOfIncarnation: context.nextSequence,
              consecutiveMissedAcks: 0,
            })),
            { type: "joiningStarted", params: ({ context }) => ({ incarnation: context.incarnation }) },
          ],
        },
        // The isolation in progress belonged to the actor before the restore: ask again.
        "haring.resume": { target: "isolating", reenter: true },
      },
    },
    beating: {
      entry: [
        { type: "sendHeartbeat", params: ({ context }) => heartbeatParams(context) },
        enqueueActions(({ context, enqueue }) => {
          const anchorBeat = anchorHeartbeatParams(context);
          if (anchorBeat !== undefined) enqueue({ type: "sendAnchorHeartbeat", params: anchorBeat });
        }),
        { type: "petWatchdog", params: ({ context }) => petParams(context) },
        assign(({ context }) => beatSent(context)),
        { type: "armBeat", params: ({ context }) => armBeatParams(context) },
      ],
      exit: "disarmBeat",
      on: {
        "beat.due": [
          {
            guard: "driftBackDue",
            target: "beating",
            reenter: true,
            actions: [
              {
                type: "targetSwitched",
                params: ({ context }) => ({ from: currentTarget(context), to: context.monitorOrder[0] ?? "", reason: "drift-back" as const }),
              },
              "moveToPreferredTarget",
            ],
          },
          { target: "beating", reenter: true },
        ],
        "haring.resume": { target: "beating", reenter: true },
        "heartbeat.acked": [
          ...missOfTarget,
          { guard: "excludedWithoutLease", target: "isolating", actions: ["countAck", assign({ isolationReason: "refuted" as const })] },
          { guard: "isForCurrentTarget", actions: ["countAck", "extendLease", { type: "leaseExtended", params: leaseExtendedParams }] },
          { guard: "anchorAcked", actions: ["countAnchorAck", "extendLease", { type: "leaseExtended", params: leaseExtendedParams }] },
          // A late grant from the monitor the host just left is still a grant.
          { actions: ["extendLease", { type: "leaseExtended", params: leaseExtendedParams }] },
        ],
        "heartbeat.missed": missOfTarget,
        "lease.expired": {
          guard: "leaseRanOut",
          target: "isolating",
          actions: assign({ isolationReason: "lease-expired" as const }),
        },
        "joining.expired": {
          guard: "joinedTooLong",
          target: "isolating",
          actions: assign({ isolationReason: "unleased" as const }),
        },
        "probe.received": {
          actions: { type: "answerProbe", params: ({ context, event }) => ({ replyTo: (event as { replyTo: string }).replyTo, incarnation: context.incarnation }) },
        },
      },
    },
  },
});

import { assign, cancel, raise, setup } from "xstate";
import type { GrantOutcome } from "./heartbeatMonitor.ts";
import { rendezvousOrder } from "./rendezvousOrder.ts";

/**
 * The host side of the heartbeat protocol (ARCHITECTURE §3): the host
 * heartbeats one monitor at a time, chosen by rendezvous hash; after
 * `missedAcksBeforeSwitch` missed acks in a row it switches to another monitor
 * at once, and after `driftBackAfterMs` on a fallback it tries its preferred
 * monitor again. Drift-back is counted in beats rather than with a second
 * timer: one timer per host keeps the machine cheap, which matters when a
 * simulation runs thousands of them.
 *
 * Where a switch goes prefers the monitor that acked last (`switchTarget`). A
 * monitor whose last stint (the beats since the host switched to it) ended in
 * missed acks without a single ack is *silent* until it acks again, and one
 * miss, not `missedAcksBeforeSwitch`, ends its next stint. After that single
 * beat on a silent monitor the host goes back to the monitor that acked it
 * last, on the beat timer rather than at once (`missesToLeave`); every other
 * switch goes to the next monitor in rendezvous order after the one that acked
 * last, or after the last one tried since, so every monitor is still tried in
 * turn. A host whose only answering monitor loses some acks thus spends one
 * beat at a time on monitors that have not answered it for seconds, where
 * blind rotation spent `missedAcksBeforeSwitch` beats on each of them every
 * time its monitor missed twice (fuzz seed 1274: 360 ms away per rotation, a
 * lease lost). The beats saved pay for the returns: a host whose monitor died
 * has tried every other monitor after at most `missedAcksBeforeSwitch` ×
 * (monitors − 1) + 1 misses, one more than blind rotation (each silent monitor
 * costs one beat and a return to the dead monitor one more, the first return
 * `missedAcksBeforeSwitch`). With `missedAcksBeforeSwitch` 1 nothing is saved,
 * so there are no returns: the host rotates as before.
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
 * it has nothing to lose, and the old one can never be granted again.
 *
 * Effects are named actions the actor layer provides: `sendHeartbeat` issues a
 * request that must end in exactly one `heartbeat.acked` or `heartbeat.missed`
 * event carrying the same sequence number; `isolate` must end in
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

/** boot: a fresh start; lease-expired: the lease ran out; refuted: excluded by the leader while holding no lease, so it moves on to a new incarnation at once. */
export type IsolationReason = "boot" | "lease-expired" | "refuted";

export interface HeartbeatSenderContext {
  readonly hostId: string;
  readonly config: HeartbeatSenderConfig;
  /** Preference order; index 0 is the preferred monitor. */
  readonly monitorOrder: readonly string[];
  readonly targetIndex: number;
  /** Whether the current target has acked since the host switched to it. */
  readonly targetAckedThisStint: boolean;
  /** Index in `monitorOrder` of the monitor whose ack the host counted last; -1 before the first. */
  readonly lastAckedIndex: number;
  /** Per `monitorOrder` index: its last stint ended in missed acks without a single ack, and it has not acked since. */
  readonly silent: readonly boolean[];
  /** The monitor that acked last, or the one the host moved to by rotation since (not by returning); the next trial is the one after it. */
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
  readonly reason: "missed-acks" | "drift-back";
}

export interface PetWatchdogParams {
  /** Pet only while the node's clock reads below this; null: nothing needs a lease, pet anyway. */
  readonly leaseUntilMs: number | null;
}

export interface IsolateParams {
  readonly reason: IsolationReason;
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

/** The next monitor in rotation after the last trial, never the current target. */
function nextTrialIndex(context: HeartbeatSenderContext): number {
  const count = context.monitorOrder.length;
  let index = (context.lastTrialIndex + 1) % count;
  if (index === context.targetIndex) index = (index + 1) % count;
  return index;
}

/**
 * Where a missed-acks switch goes: after the single beat spent on a silent
 * monitor, back to the monitor that acked last; otherwise (leaving the monitor
 * that acked last, or a monitor tried for the first time since it last acked,
 * or before any ack at all) the next monitor in rendezvous order after the one
 * that acked last, or after the last one tried since (`lastTrialIndex`).
 * With `missedAcksBeforeSwitch` 1 a silent monitor's beat saves nothing to pay
 * for a return, so the host only rotates.
 */
function switchTarget(context: HeartbeatSenderContext): { readonly index: number; readonly isTrial: boolean } {
  const last = context.lastAckedIndex;
  const leavingSilentProbe = isSilent(context, context.targetIndex) && !context.targetAckedThisStint;
  if (leavingSilentProbe && context.config.missedAcksBeforeSwitch > 1 && last >= 0 && last !== context.targetIndex) return { index: last, isTrial: false };
  return { index: nextTrialIndex(context), isTrial: true };
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
  to: context.monitorOrder[switchTarget(context).index] ?? "",
  reason: "missed-acks",
});

function switchedAfterMisses(context: HeartbeatSenderContext): Partial<HeartbeatSenderContext> {
  const { index, isTrial } = switchTarget(context);
  const silent = context.silent.map((wasSilent, i) => (i === context.targetIndex ? !context.targetAckedThisStint : wasSilent));
  return {
    targetIndex: index,
    targetAckedThisStint: false,
    silent,
    lastTrialIndex: isTrial ? index : context.lastTrialIndex,
    consecutiveMissedAcks: 0,
    beatsOnFallback: 0,
    acksMissed: context.acksMissed + 1,
    switches: context.switches + 1,
  };
}

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

const isForCurrentTarget = (context: HeartbeatSenderContext, event: HeartbeatSenderEvent): boolean =>
  (event.type === "heartbeat.acked" || event.type === "heartbeat.missed") && event.monitorId === currentTarget(context);

const missForCurrentTarget = (context: HeartbeatSenderContext, event: HeartbeatSenderEvent): boolean =>
  countsAsMiss(event) && (event as Acked).monitorId === currentTarget(context);

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

const petParams = (context: HeartbeatSenderContext): PetWatchdogParams => ({ leaseUntilMs: context.phase === "leased" ? context.leaseUntilMs : null });

const armBeatParams = (context: HeartbeatSenderContext): ArmBeatParams => ({ delayMs: context.config.heartbeatIntervalMs });

const beatSent = (context: HeartbeatSenderContext): Partial<HeartbeatSenderContext> => ({
  nextSequence: context.nextSequence + 1,
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
  silent: context.silent[context.targetIndex] ? context.silent.map((wasSilent, i) => (i === context.targetIndex ? false : wasSilent)) : context.silent,
});

function extendedLease(context: HeartbeatSenderContext, event: HeartbeatSenderEvent): Partial<HeartbeatSenderContext> {
  if (event.type !== "heartbeat.acked") return {};
  const leaseUntilMs = leaseAfter(context, event);
  if (leaseUntilMs === context.leaseUntilMs) return {};
  return { leaseUntilMs, phase: "leased" as const, leasesGranted: context.leasesGranted + 1 };
}

/** The effects a shortcut step may carry out: the named actions of the machine it stands in for. */
export interface HeartbeatSenderShortcutEffects {
  sendHeartbeat(params: SendHeartbeatParams): void;
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
    effects.petWatchdog(petParams(context));
    const next: HeartbeatSenderContext = { ...context, ...beatSent(context) };
    effects.armBeat(armBeatParams(next));
    return next;
  }
  if (event.type !== "heartbeat.acked" && event.type !== "heartbeat.missed") return undefined;
  if (missCompletesStreak(context, event)) return undefined;
  if (missForCurrentTarget(context, event)) return { ...context, ...countedMiss(context) };
  if (event.type !== "heartbeat.acked" || excludedWithoutLease(context, event)) return undefined;
  const counted: HeartbeatSenderContext = isForCurrentTarget(context, event) ? { ...context, ...countedAck(context) } : context;
  const next: HeartbeatSenderContext = { ...counted, ...extendedLease(counted, event) };
  effects.leaseExtended({ leaseUntilMs: next.leaseUntilMs });
  return next;
}

export const heartbeatSenderMachine = setup({
  types: {
    context: {} as HeartbeatSenderContext,
    events: {} as HeartbeatSenderEvent,
    input: {} as HeartbeatSenderInput,
  },
  actions: {
    sendHeartbeat: (_, _params: SendHeartbeatParams) => {},
    targetSwitched: (_, _params: TargetSwitchedParams) => {},
    petWatchdog: (_, _params: PetWatchdogParams) => {},
    isolate: (_, _params: IsolateParams) => {},
    leaseExtended: (_, _params: LeaseExtendedParams) => {},
    answerProbe: (_, _params: AnswerProbeParams) => {},
    armBeat: raise({ type: "beat.due" }, { id: beatTimerId, delay: (_, params: ArmBeatParams) => params.delayMs }),
    disarmBeat: cancel(beatTimerId),
    moveToNextTarget: assign(({ context }) => switchedAfterMisses(context)),
    moveToPreferredTarget: assign({
      targetIndex: 0,
      targetAckedThisStint: false,
      lastTrialIndex: 0,
      consecutiveMissedAcks: 0,
      beatsOnFallback: 0,
      switches: ({ context }) => context.switches + 1,
    }),
    countMiss: assign(({ context }) => countedMiss(context)),
    extendLease: assign(({ context, event }) => extendedLease(context, event)),
    countAck: assign(({ context }) => countedAck(context)),
  },
  guards: {
    leasing: ({ context }) => context.phase !== "legacy",
    isForCurrentTarget: ({ context, event }) => isForCurrentTarget(context, event),
    missCompletesStreak: ({ context, event }) => missCompletesStreak(context, event),
    missEndsSilentStint: ({ context, event }) => missCompletesStreak(context, event) && isSilent(context, context.targetIndex),
    missForCurrentTarget: ({ context, event }) => missForCurrentTarget(context, event),
    driftBackDue: ({ context }) => driftBackDue(context),
    excludedWithoutLease: ({ context, event }) => excludedWithoutLease(context, event),
    leaseRanOut: ({ context, event }) => event.type === "lease.expired" && context.phase === "leased" && event.nowMs >= context.leaseUntilMs,
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
          actions: assign(({ context, event }) => ({
            incarnation: (event as Extract<HeartbeatSenderEvent, { type: "isolation.done" }>).incarnation,
            phase: "joining" as const,
            leaseUntilMs: 0,
            firstSequenceOfIncarnation: context.nextSequence,
            consecutiveMissedAcks: 0,
          })),
        },
        // The isolation in progress belonged to the actor before the restore: ask again.
        "haring.resume": { target: "isolating", reenter: true },
      },
    },
    beating: {
      entry: [
        { type: "sendHeartbeat", params: ({ context }) => heartbeatParams(context) },
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
          // after a silent monitor's single beat, the next beat (on its timer) goes to the new target
          { guard: "missEndsSilentStint", actions: [{ type: "targetSwitched", params: missedAcksSwitchParams }, "moveToNextTarget"] },
          {
            guard: "missCompletesStreak",
            target: "beating",
            reenter: true,
            actions: [{ type: "targetSwitched", params: missedAcksSwitchParams }, "moveToNextTarget"],
          },
          { guard: "missForCurrentTarget", actions: "countMiss" },
          { guard: "excludedWithoutLease", target: "isolating", actions: ["countAck", assign({ isolationReason: "refuted" as const })] },
          {
            guard: "isForCurrentTarget",
            actions: ["countAck", "extendLease", { type: "leaseExtended", params: ({ context }) => ({ leaseUntilMs: context.leaseUntilMs }) }],
          },
          // A late grant from the monitor the host just left is still a grant.
          { actions: ["extendLease", { type: "leaseExtended", params: ({ context }) => ({ leaseUntilMs: context.leaseUntilMs }) }] },
        ],
        "heartbeat.missed": [
          { guard: "missEndsSilentStint", actions: [{ type: "targetSwitched", params: missedAcksSwitchParams }, "moveToNextTarget"] },
          {
            guard: "missCompletesStreak",
            // re-entering sends to the new target at once instead of waiting out the interval
            target: "beating",
            reenter: true,
            actions: [{ type: "targetSwitched", params: missedAcksSwitchParams }, "moveToNextTarget"],
          },
          { guard: "missForCurrentTarget", actions: "countMiss" },
        ],
        "lease.expired": {
          guard: "leaseRanOut",
          target: "isolating",
          actions: assign({ isolationReason: "lease-expired" as const }),
        },
        "probe.received": {
          actions: { type: "answerProbe", params: ({ context, event }) => ({ replyTo: (event as { replyTo: string }).replyTo, incarnation: context.incarnation }) },
        },
      },
    },
  },
});

import { assign, setup } from "xstate";
import { rendezvousOrder } from "./rendezvousOrder.ts";

/**
 * The host side of the heartbeat protocol (the seed of ARCHITECTURE §3): the
 * host heartbeats one monitor at a time, chosen by rendezvous hash; after
 * `missedAcksBeforeSwitch` missed acks in a row it switches to the next monitor
 * at once, and after `driftBackAfterMs` on a fallback it tries its preferred
 * monitor again. Drift-back is counted in beats rather than with a second
 * timer: one timer per host keeps the machine a single state, which matters
 * when a simulation runs ten thousand of them.
 *
 * Effects are named actions the actor layer provides: `sendHeartbeat` issues a
 * request that must end in exactly one `heartbeat.acked` or `heartbeat.missed`
 * event carrying the same sequence number.
 */
export interface HeartbeatSenderConfig {
  readonly heartbeatIntervalMs: number;
  readonly missedAcksBeforeSwitch: number;
  readonly driftBackAfterMs: number;
}

export const defaultHeartbeatSenderConfig: HeartbeatSenderConfig = {
  heartbeatIntervalMs: 200,
  missedAcksBeforeSwitch: 2,
  driftBackAfterMs: 30_000,
};

export interface HeartbeatSenderInput {
  readonly hostId: string;
  readonly monitorIds: readonly string[];
  readonly config: HeartbeatSenderConfig;
}

export interface HeartbeatSenderContext {
  readonly hostId: string;
  readonly config: HeartbeatSenderConfig;
  /** Preference order; index 0 is the preferred monitor. */
  readonly monitorOrder: readonly string[];
  readonly targetIndex: number;
  readonly nextSequence: number;
  readonly consecutiveMissedAcks: number;
  /** Beats sent to the current fallback monitor; drift back to the preferred one is due after `driftBackAfterMs` worth. */
  readonly beatsOnFallback: number;
  readonly acksReceived: number;
  readonly acksMissed: number;
  readonly switches: number;
}

export type HeartbeatSenderEvent =
  | { readonly type: "heartbeat.acked"; readonly sequence: number; readonly monitorId: string }
  | { readonly type: "heartbeat.missed"; readonly sequence: number; readonly monitorId: string }
  | { readonly type: "haring.resume" };

export interface SendHeartbeatParams {
  readonly monitorId: string;
  readonly sequence: number;
}

export interface TargetSwitchedParams {
  readonly from: string;
  readonly to: string;
  readonly reason: "missed-acks" | "drift-back";
}

function currentTarget(context: HeartbeatSenderContext): string {
  return context.monitorOrder[context.targetIndex] ?? "";
}

const nextTargetIndex = (context: HeartbeatSenderContext): number => (context.targetIndex + 1) % context.monitorOrder.length;

const missedAcksSwitchParams = ({ context }: { context: HeartbeatSenderContext }): TargetSwitchedParams => ({
  from: currentTarget(context),
  to: context.monitorOrder[nextTargetIndex(context)] ?? "",
  reason: "missed-acks",
});


const driftBackAfterBeats = (config: HeartbeatSenderConfig): number =>
  Math.max(1, Math.ceil(config.driftBackAfterMs / config.heartbeatIntervalMs));

export const heartbeatSenderMachine = setup({
  types: {
    context: {} as HeartbeatSenderContext,
    events: {} as HeartbeatSenderEvent,
    input: {} as HeartbeatSenderInput,
  },
  actions: {
    sendHeartbeat: (_, _params: SendHeartbeatParams) => {},
    targetSwitched: (_, _params: TargetSwitchedParams) => {},
    moveToNextTarget: assign({
      targetIndex: ({ context }) => nextTargetIndex(context),
      consecutiveMissedAcks: 0,
      beatsOnFallback: 0,
      acksMissed: ({ context }) => context.acksMissed + 1,
      switches: ({ context }) => context.switches + 1,
    }),
    moveToPreferredTarget: assign({
      targetIndex: 0,
      consecutiveMissedAcks: 0,
      beatsOnFallback: 0,
      switches: ({ context }) => context.switches + 1,
    }),
  },
  guards: {
    ackIsForCurrentTarget: ({ context, event }) =>
      event.type === "heartbeat.acked" && event.monitorId === currentTarget(context),
    missIsForCurrentTarget: ({ context, event }) =>
      event.type === "heartbeat.missed" && event.monitorId === currentTarget(context),
    missCompletesStreak: ({ context, event }) =>
      event.type === "heartbeat.missed" &&
      event.monitorId === currentTarget(context) &&
      context.monitorOrder.length > 1 &&
      context.consecutiveMissedAcks + 1 >= context.config.missedAcksBeforeSwitch,
    driftBackDue: ({ context }) => context.targetIndex !== 0 && context.beatsOnFallback >= driftBackAfterBeats(context.config),
  },
  delays: {
    heartbeatInterval: ({ context }) => context.config.heartbeatIntervalMs,
  },
}).createMachine({
  id: "heartbeatSender",
  context: ({ input }) => {
    if (input.monitorIds.length === 0) throw new RangeError("a heartbeat sender needs at least one monitor");
    return {
      hostId: input.hostId,
      config: input.config,
      monitorOrder: rendezvousOrder(input.hostId, input.monitorIds),
      targetIndex: 0,
      nextSequence: 1,
      consecutiveMissedAcks: 0,
      beatsOnFallback: 0,
      acksReceived: 0,
      acksMissed: 0,
      switches: 0,
    };
  },
  initial: "beating",
  states: {
    beating: {
      entry: [
        { type: "sendHeartbeat", params: ({ context }) => ({ monitorId: currentTarget(context), sequence: context.nextSequence }) },
        assign({
          nextSequence: ({ context }) => context.nextSequence + 1,
          beatsOnFallback: ({ context }) => (context.targetIndex === 0 ? 0 : context.beatsOnFallback + 1),
        }),
      ],
      after: {
        heartbeatInterval: [
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
      },
      on: { "haring.resume": { target: "beating", reenter: true } },
    },
  },
  on: {
    "heartbeat.acked": {
      guard: "ackIsForCurrentTarget",
      actions: assign({ consecutiveMissedAcks: 0, acksReceived: ({ context }) => context.acksReceived + 1 }),
    },
    "heartbeat.missed": [
      {
        guard: "missCompletesStreak",
        // re-entering sends to the new target at once instead of waiting out the interval
        target: ".beating",
        reenter: true,
        actions: [{ type: "targetSwitched", params: missedAcksSwitchParams }, "moveToNextTarget"],
      },
      {
        guard: "missIsForCurrentTarget",
        actions: assign({
          consecutiveMissedAcks: ({ context }) => context.consecutiveMissedAcks + 1,
          acksMissed: ({ context }) => context.acksMissed + 1,
        }),
      },
    ],
  },
});

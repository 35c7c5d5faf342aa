import { assign, enqueueActions, setup } from "xstate";
import { defaultGuestHeartbeatIntervalMs, maxGuestHeartbeatIntervalMs, minGuestHeartbeatIntervalMs } from "./guestAgent.ts";
import type { GuestCheckResult } from "./guestChecks.ts";

/**
 * The host side of guest OS monitoring (ARCHITECTURE §3): one per VM, fed
 * with the heartbeats its guest agent publishes on `guest.<vm>`.
 *
 * - `alive` (or `app-failed` when a beat reports a failing application check)
 *   while beats arrive. The first beat is awaited up to `guestBootGraceMs`
 *   (the guest may be booting); after that, if an agent was ever heard, the
 *   guest counts as hung, otherwise as `no-agent`.
 * - No beat for `guestMissedHeartbeatsBeforeHung` intervals: when the driver
 *   has a guest-agent channel (`useGuestPing`), the guest is pinged through the
 *   hypervisor first. An answer means the guest runs but its beats do not
 *   arrive (`silent`: a network problem, not a reason to reset it); no answer,
 *   or no channel, means `hung`.
 * - Any beat brings it back to `alive` (a recovery is reported like any change).
 * - While the VM is not running (`guest.vm-power`), nothing is expected.
 *
 * The interval used is the one the agent announces in its beats (clamped),
 * so a watchdog and an agent configured differently still agree.
 *
 * Effects: `pingGuest({ sequence, timeoutMs })`, answered by one
 * `guest.ping-answered` with that sequence; `reportGuestHealth(report)`.
 */
export type GuestHealth = "unmonitored" | "alive" | "app-failed" | "silent" | "hung" | "no-agent";

export interface GuestWatchdogConfig {
  /** Expected until the agent announces its own. */
  readonly guestHeartbeatIntervalMs: number;
  readonly guestMissedHeartbeatsBeforeHung: number;
  readonly useGuestPing: boolean;
  readonly guestPingTimeoutMs: number;
  /** How long after the watchdog starts (or the VM starts again) the first beat may take. */
  readonly guestBootGraceMs: number;
}

export const defaultGuestWatchdogConfig: GuestWatchdogConfig = {
  guestHeartbeatIntervalMs: defaultGuestHeartbeatIntervalMs,
  guestMissedHeartbeatsBeforeHung: 8,
  useGuestPing: true,
  guestPingTimeoutMs: 500,
  guestBootGraceMs: 60_000,
};

export const maxGuestMissedHeartbeatsBeforeHung = 1_000;
export const maxGuestPingTimeoutMs = 60_000;
export const maxGuestBootGraceMs = 3_600_000;
/** A ping whose answer is this much later than its timeout is given up (the port promises an answer; this is the backstop). */
export const guestPingAnswerSlackMs = 1_000;

export function guestWatchdogConfigProblem(config: GuestWatchdogConfig): string | undefined {
  const interval = config.guestHeartbeatIntervalMs;
  if (!Number.isFinite(interval) || interval < minGuestHeartbeatIntervalMs || interval > maxGuestHeartbeatIntervalMs) {
    return `guestHeartbeatIntervalMs must be within [${minGuestHeartbeatIntervalMs}, ${maxGuestHeartbeatIntervalMs}], got ${interval}`;
  }
  const missed = config.guestMissedHeartbeatsBeforeHung;
  if (!Number.isSafeInteger(missed) || missed < 1 || missed > maxGuestMissedHeartbeatsBeforeHung) {
    return `guestMissedHeartbeatsBeforeHung must be an integer within [1, ${maxGuestMissedHeartbeatsBeforeHung}], got ${missed}`;
  }
  if (!Number.isFinite(config.guestPingTimeoutMs) || config.guestPingTimeoutMs < 1 || config.guestPingTimeoutMs > maxGuestPingTimeoutMs) {
    return `guestPingTimeoutMs must be within [1, ${maxGuestPingTimeoutMs}], got ${config.guestPingTimeoutMs}`;
  }
  if (!Number.isFinite(config.guestBootGraceMs) || config.guestBootGraceMs < 0 || config.guestBootGraceMs > maxGuestBootGraceMs) {
    return `guestBootGraceMs must be within [0, ${maxGuestBootGraceMs}], got ${config.guestBootGraceMs}`;
  }
  return undefined;
}

export interface GuestWatchdogInput {
  readonly vmId: string;
  readonly config: GuestWatchdogConfig;
}

export interface GuestHealthReport {
  readonly vmId: string;
  readonly health: GuestHealth;
  readonly previousHealth: GuestHealth;
  /** Names of the application checks failing in the last beat. */
  readonly failingChecks: readonly string[];
  readonly bootId: string;
  readonly detail: string;
}

export interface PingGuestParams {
  readonly sequence: number;
  readonly timeoutMs: number;
}

export interface GuestWatchdogContext {
  readonly vmId: string;
  readonly config: GuestWatchdogConfig;
  readonly health: GuestHealth;
  /** health plus failing checks: a report is due when it changes. */
  readonly reportedKey: string;
  readonly intervalMs: number;
  readonly agentSeen: boolean;
  readonly bootId: string;
  readonly lastSequence: number;
  readonly failingChecks: readonly string[];
  readonly failingDetail: string;
  /** Cleared when the driver says it has no guest-agent channel for this VM. */
  readonly pingUsable: boolean;
  readonly nextPingSequence: number;
  /** Why the guest counts as hung, for the report. */
  readonly hungDetail: string;
  readonly beats: number;
  readonly reports: number;
}

export type GuestWatchdogEvent =
  | {
      readonly type: "guest.heartbeat";
      readonly vmId: string;
      readonly bootId: string;
      readonly sequence: number;
      readonly intervalMs: number;
      readonly checks: readonly GuestCheckResult[];
    }
  | { readonly type: "guest.ping-answered"; readonly sequence: number; readonly ok: boolean; readonly unsupported: boolean; readonly error: string }
  | { readonly type: "guest.vm-power"; readonly running: boolean }
  | { readonly type: "haring.resume" };

function clampInterval(intervalMs: number): number {
  if (!Number.isFinite(intervalMs)) return defaultGuestHeartbeatIntervalMs;
  return Math.min(maxGuestHeartbeatIntervalMs, Math.max(minGuestHeartbeatIntervalMs, intervalMs));
}

const silenceMs = (context: GuestWatchdogContext): number => context.intervalMs * context.config.guestMissedHeartbeatsBeforeHung;

function healthDetail(context: GuestWatchdogContext, health: GuestHealth): string {
  switch (health) {
    case "alive":
      return "heartbeats arriving";
    case "app-failed":
      return context.failingDetail;
    case "silent":
      return `no heartbeat for ${silenceMs(context)} ms, but the guest answers its hypervisor channel: its network path is broken`;
    case "hung":
      return context.hungDetail;
    case "no-agent":
      return `no heartbeat within ${context.config.guestBootGraceMs} ms; is the guest agent installed?`;
    case "unmonitored":
      return "";
  }
}

export const guestWatchdogMachine = setup({
  types: {
    context: {} as GuestWatchdogContext,
    events: {} as GuestWatchdogEvent,
    input: {} as GuestWatchdogInput,
  },
  actions: {
    pingGuest: (_, _params: PingGuestParams) => {},
    reportGuestHealth: (_, _params: GuestHealthReport) => {},
    /** Entry action of every reporting state: reports when health or the failing checks changed. */
    enterHealth: enqueueActions(({ context, enqueue }, params: { readonly health: GuestHealth | "from-checks" }) => {
      const health: GuestHealth = params.health === "from-checks" ? (context.failingChecks.length > 0 ? "app-failed" : "alive") : params.health;
      const failingChecks = health === "app-failed" ? context.failingChecks : [];
      const key = `${health}:${failingChecks.join(",")}`;
      if (key === context.reportedKey) return;
      const report: GuestHealthReport = {
        vmId: context.vmId,
        health,
        previousHealth: context.health,
        failingChecks,
        bootId: context.bootId,
        detail: healthDetail(context, health),
      };
      // Inside setup() the enqueue type cannot name its sibling actions yet; the name resolves to the provided implementation when it runs.
      enqueue({ type: "reportGuestHealth", params: report } as never);
      enqueue.assign({ health, reportedKey: key, reports: context.reports + 1 });
    }),
  },
  guards: {
    forThisVm: ({ context, event }) => event.type === "guest.heartbeat" && event.vmId === context.vmId,
    agentSeen: ({ context }) => context.agentSeen,
    pingUsable: ({ context }) => context.config.useGuestPing && context.pingUsable,
  },
  delays: {
    bootGrace: ({ context }) => context.config.guestBootGraceMs,
    silence: ({ context }) => silenceMs(context),
    pingAnswer: ({ context }) => context.config.guestPingTimeoutMs + guestPingAnswerSlackMs,
  },
}).createMachine({
  id: "guestWatchdog",
  context: ({ input }) => {
    const problem = guestWatchdogConfigProblem(input.config);
    if (problem !== undefined) throw new RangeError(problem);
    return {
      vmId: input.vmId,
      config: input.config,
      health: "unmonitored",
      reportedKey: "unmonitored:",
      intervalMs: input.config.guestHeartbeatIntervalMs,
      agentSeen: false,
      bootId: "",
      lastSequence: 0,
      failingChecks: [],
      failingDetail: "",
      pingUsable: true,
      nextPingSequence: 1,
      hungDetail: "",
      beats: 0,
      reports: 0,
    };
  },
  initial: "awaiting",
  states: {
    awaiting: {
      after: {
        bootGrace: [
          {
            guard: "agentSeen",
            target: "hung",
            actions: assign({ hungDetail: ({ context }) => `no heartbeat within ${context.config.guestBootGraceMs} ms of the vm starting` }),
          },
          { target: "noAgent" },
        ],
      },
      on: { "haring.resume": { target: "awaiting", reenter: true } },
    },
    noAgent: {
      entry: { type: "enterHealth", params: { health: "no-agent" } },
    },
    alive: {
      entry: { type: "enterHealth", params: { health: "from-checks" } },
      after: {
        silence: [
          { guard: "pingUsable", target: "confirming" },
          { target: "hung", actions: assign({ hungDetail: ({ context }) => `no heartbeat for ${silenceMs(context)} ms; no guest-agent channel to ask` }) },
        ],
      },
      on: { "haring.resume": { target: "alive", reenter: true } },
    },
    confirming: {
      entry: enqueueActions(({ context, enqueue }) => {
        enqueue({ type: "pingGuest", params: { sequence: context.nextPingSequence, timeoutMs: context.config.guestPingTimeoutMs } });
        enqueue.assign({ nextPingSequence: context.nextPingSequence + 1 });
      }),
      after: {
        pingAnswer: { target: "hung", actions: assign({ hungDetail: ({ context }) => `no heartbeat for ${silenceMs(context)} ms; the guest ping got no answer at all` }) },
      },
      on: {
        "guest.ping-answered": [
          { guard: ({ context, event }) => event.sequence !== context.nextPingSequence - 1 },
          { guard: ({ event }) => event.ok, target: "silent" },
          {
            guard: ({ event }) => event.unsupported,
            target: "hung",
            actions: assign({
              pingUsable: false,
              hungDetail: ({ context }) => `no heartbeat for ${silenceMs(context)} ms; no guest-agent channel to ask`,
            }),
          },
          {
            target: "hung",
            actions: assign({ hungDetail: ({ context, event }) => `no heartbeat for ${silenceMs(context)} ms and the guest ping failed: ${event.error}` }),
          },
        ],
        "haring.resume": { target: "confirming", reenter: true },
      },
    },
    silent: {
      entry: { type: "enterHealth", params: { health: "silent" } },
      after: { silence: { target: "confirming" } },
      on: { "haring.resume": { target: "silent", reenter: true } },
    },
    hung: {
      entry: { type: "enterHealth", params: { health: "hung" } },
    },
    vmOff: {
      on: { "guest.vm-power": { guard: ({ event }) => event.running, target: "awaiting" } },
    },
  },
  on: {
    "guest.heartbeat": {
      guard: "forThisVm",
      target: ".alive",
      reenter: true,
      actions: assign(({ context, event }) => {
        const failing = event.checks.filter((check) => !check.ok);
        return {
          agentSeen: true,
          bootId: event.bootId,
          lastSequence: event.sequence,
          intervalMs: clampInterval(event.intervalMs),
          failingChecks: failing.map((check) => check.name),
          failingDetail: failing.map((check) => `${check.name}: ${check.detail}`).join("; "),
          beats: context.beats + 1,
        };
      }),
    },
    "guest.vm-power": { guard: ({ event }) => !event.running, target: ".vmOff" },
  },
});

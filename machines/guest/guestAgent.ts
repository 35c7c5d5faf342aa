import { assign, enqueueActions, setup } from "xstate";
import { boundedCheckDetail, guestChecksProblem, type GuestCheck, type GuestCheckResult } from "./guestChecks.ts";

/**
 * The agent inside a VM (ARCHITECTURE §3, guest OS level): heartbeats every
 * `guestHeartbeatIntervalMs` and reruns its application checks every
 * `guestCheckIntervalMs`, each beat carrying the latest result of every check
 * that has one. It needs nothing from the hypervisor, so it works the same in
 * fully and para-virtualized guests.
 *
 * Effects the actor layer provides:
 * - `sendGuestHeartbeat(beat)`: publish it (fire and forget).
 * - `runGuestChecks({ round, checks, timeoutMs })`: run each check, answering
 *   each with one `guest.check-result` of that round and index, within the timeout.
 */
export interface GuestAgentConfig {
  readonly guestHeartbeatIntervalMs: number;
  readonly guestCheckIntervalMs: number;
  /** A check still running after this counts as failed; below the check interval so rounds do not pile up. */
  readonly guestCheckTimeoutMs: number;
}

export const defaultGuestHeartbeatIntervalMs = 250;
export const minGuestHeartbeatIntervalMs = 10;
export const maxGuestHeartbeatIntervalMs = 10_000;

export const defaultGuestAgentConfig: GuestAgentConfig = {
  guestHeartbeatIntervalMs: defaultGuestHeartbeatIntervalMs,
  guestCheckIntervalMs: 2_000,
  guestCheckTimeoutMs: 1_000,
};

export const maxGuestCheckIntervalMs = 3_600_000;

export function guestAgentConfigProblem(config: GuestAgentConfig): string | undefined {
  const interval = config.guestHeartbeatIntervalMs;
  if (!Number.isFinite(interval) || interval < minGuestHeartbeatIntervalMs || interval > maxGuestHeartbeatIntervalMs) {
    return `guestHeartbeatIntervalMs must be within [${minGuestHeartbeatIntervalMs}, ${maxGuestHeartbeatIntervalMs}], got ${interval}`;
  }
  if (!Number.isFinite(config.guestCheckIntervalMs) || config.guestCheckIntervalMs < 100 || config.guestCheckIntervalMs > maxGuestCheckIntervalMs) {
    return `guestCheckIntervalMs must be within [100, ${maxGuestCheckIntervalMs}], got ${config.guestCheckIntervalMs}`;
  }
  if (!Number.isFinite(config.guestCheckTimeoutMs) || config.guestCheckTimeoutMs < 1 || config.guestCheckTimeoutMs >= config.guestCheckIntervalMs) {
    return `guestCheckTimeoutMs must be within [1, guestCheckIntervalMs), got ${config.guestCheckTimeoutMs}`;
  }
  return undefined;
}

export interface GuestAgentInput {
  readonly vmId: string;
  /** Distinguishes this run of the agent from earlier ones (a reboot, a restart). */
  readonly bootId: string;
  readonly config: GuestAgentConfig;
  readonly checks: readonly GuestCheck[];
}

export interface GuestHeartbeat {
  readonly vmId: string;
  readonly bootId: string;
  readonly sequence: number;
  /** The agent's own interval, so the watchdog can judge silence by it. */
  readonly intervalMs: number;
  readonly checks: readonly GuestCheckResult[];
}

export interface RunGuestChecksParams {
  readonly round: number;
  readonly checks: readonly GuestCheck[];
  readonly timeoutMs: number;
}

interface StoredResult extends GuestCheckResult {
  readonly round: number;
}

export interface GuestAgentContext {
  readonly vmId: string;
  readonly bootId: string;
  readonly config: GuestAgentConfig;
  readonly checks: readonly GuestCheck[];
  /** Latest result per check, by index; undefined until its first result. */
  readonly results: readonly (StoredResult | undefined)[];
  readonly nextSequence: number;
  readonly nextRound: number;
}

export type GuestAgentEvent =
  | { readonly type: "guest.check-result"; readonly round: number; readonly index: number; readonly ok: boolean; readonly detail: string }
  | { readonly type: "haring.resume" };

function heartbeat(context: GuestAgentContext): GuestHeartbeat {
  const checks: GuestCheckResult[] = [];
  for (const result of context.results) if (result !== undefined) checks.push({ name: result.name, ok: result.ok, detail: result.detail });
  return {
    vmId: context.vmId,
    bootId: context.bootId,
    sequence: context.nextSequence,
    intervalMs: context.config.guestHeartbeatIntervalMs,
    checks,
  };
}

export const guestAgentMachine = setup({
  types: {
    context: {} as GuestAgentContext,
    events: {} as GuestAgentEvent,
    input: {} as GuestAgentInput,
  },
  actions: {
    sendGuestHeartbeat: (_, _params: GuestHeartbeat) => {},
    runGuestChecks: (_, _params: RunGuestChecksParams) => {},
  },
  delays: {
    heartbeatInterval: ({ context }) => context.config.guestHeartbeatIntervalMs,
    checkInterval: ({ context }) => context.config.guestCheckIntervalMs,
  },
}).createMachine({
  id: "guestAgent",
  context: ({ input }) => {
    const problem = guestAgentConfigProblem(input.config) ?? guestChecksProblem(input.checks);
    if (problem !== undefined) throw new RangeError(problem);
    return {
      vmId: input.vmId,
      bootId: input.bootId,
      config: input.config,
      checks: input.checks,
      results: input.checks.map(() => undefined),
      nextSequence: 1,
      nextRound: 1,
    };
  },
  type: "parallel",
  states: {
    beating: {
      entry: [
        { type: "sendGuestHeartbeat", params: ({ context }) => heartbeat(context) },
        assign({ nextSequence: ({ context }) => context.nextSequence + 1 }),
      ],
      after: { heartbeatInterval: { target: "beating", reenter: true } },
      on: { "haring.resume": { target: "beating", reenter: true } },
    },
    checking: {
      entry: enqueueActions(({ context, enqueue }) => {
        if (context.checks.length === 0) return;
        enqueue({ type: "runGuestChecks", params: { round: context.nextRound, checks: context.checks, timeoutMs: context.config.guestCheckTimeoutMs } });
        enqueue.assign({ nextRound: context.nextRound + 1 });
      }),
      after: { checkInterval: { target: "checking", reenter: true } },
      on: {
        "haring.resume": { target: "checking", reenter: true },
        "guest.check-result": {
          // A late answer of an older round never overwrites a newer one.
          guard: ({ context, event }) => {
            const check = context.checks[event.index];
            const stored = context.results[event.index];
            return check !== undefined && event.round < context.nextRound && (stored === undefined || stored.round <= event.round);
          },
          actions: assign({
            results: ({ context, event }) =>
              context.results.map((stored, index) =>
                index === event.index
                  ? { name: context.checks[index]!.name, ok: event.ok, detail: event.ok ? "" : boundedCheckDetail(event.detail), round: event.round }
                  : stored,
              ),
          }),
        },
      },
    },
  },
});

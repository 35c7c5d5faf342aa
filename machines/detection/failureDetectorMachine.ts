/**
 * The failure detector core as an xstate v5 machine, so the actor host can run
 * it like every other machine. One event is one core step; each output becomes
 * a named action (`replyAuthority`, `proposeHostFailed`, `proposeHostUp`,
 * `note`) that the actor layer provides. No timers live here: the actor feeds
 * `tick` events with the node's clock reading.
 */
import { assign, enqueueActions, setup } from "xstate";
import type { AuthorityGrant } from "../heartbeat/heartbeatMonitor.ts";
import type { FailureDetectorConfig } from "./detectionConfig.ts";
import { createFailureDetector, stepFailureDetector, type DetectorInput, type DetectorNoteKind, type DetectorOutput, type FailureDetectorState } from "./failureDetector.ts";
import type { ProposeHostFailed, ProposeHostUp } from "./hostProposals.ts";

export interface FailureDetectorInput {
  readonly selfId: string;
  readonly config: FailureDetectorConfig;
}

export interface FailureDetectorContext {
  readonly core: FailureDetectorState;
  readonly outputs: readonly DetectorOutput[];
  readonly steps: number;
}

export type FailureDetectorEvent = DetectorInput | { readonly type: "haring.resume" };

export interface ReplyAuthorityParams {
  readonly replyTo: string;
  readonly monitorId: string;
  readonly grant: AuthorityGrant;
}

export interface DetectorNoteParams {
  readonly note: DetectorNoteKind;
  readonly fields: Readonly<Record<string, string | number | boolean>>;
}

export const failureDetectorMachine = setup({
  types: {
    context: {} as FailureDetectorContext,
    events: {} as FailureDetectorEvent,
    input: {} as FailureDetectorInput,
  },
  actions: {
    replyAuthority: (_, _params: ReplyAuthorityParams) => {},
    proposeHostFailed: (_, _params: Omit<ProposeHostFailed, "type">) => {},
    proposeHostUp: (_, _params: Omit<ProposeHostUp, "type">) => {},
    note: (_, _params: DetectorNoteParams) => {},
  },
}).createMachine({
  id: "failureDetector",
  context: ({ input }) => ({ core: createFailureDetector(input.selfId, input.config), outputs: [], steps: 0 }),
  on: {
    // Nothing to re-arm: the actor's ticks drive time.
    "haring.resume": {},
    "*": {
      actions: [
        assign(({ context, event }) => {
          const step = stepFailureDetector(context.core, event as DetectorInput);
          return { outputs: step.outputs, steps: context.steps + 1 };
        }),
        enqueueActions(({ context, enqueue }) => {
          for (const output of context.outputs) {
            switch (output.kind) {
              case "reply-authority":
                enqueue({ type: "replyAuthority", params: { replyTo: output.replyTo, monitorId: output.monitorId, grant: output.grant } });
                break;
              case "propose-host-failed":
                enqueue({ type: "proposeHostFailed", params: { hostId: output.hostId, incarnation: output.incarnation, leaseExpiresByMs: output.leaseExpiresByMs } });
                break;
              case "propose-host-up":
                enqueue({ type: "proposeHostUp", params: { hostId: output.hostId, incarnation: output.incarnation } });
                break;
              case "note":
                enqueue({ type: "note", params: { note: output.note, fields: output.fields } });
                break;
            }
          }
        }),
      ],
    },
  },
});

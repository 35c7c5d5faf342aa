/**
 * The recovery planner (recoveryPlanner.ts) as an xstate v5 machine, so the
 * actor host runs it like every other machine. One event is one planner
 * step; each output becomes a named action (`proposeViewCommand`,
 * `sendHostCommand`, `note`) that the actor layer provides. No timers live
 * here: the actor feeds `tick` events with the controller's clock reading.
 */
import { assign, enqueueActions, setup } from "xstate";
import type { ViewCommand } from "../view/viewCommands.ts";
import type { ManagerConfig } from "./managerConfig.ts";
import { createRecoveryPlanner, stepRecoveryPlanner, type HostCommand, type ManagerInput, type ManagerNoteKind, type ManagerOutput, type RecoveryPlannerState } from "./recoveryPlanner.ts";

export interface ManagerMachineInput {
  readonly config: ManagerConfig;
}

export interface ManagerContext {
  readonly planner: RecoveryPlannerState;
  readonly outputs: readonly ManagerOutput[];
  readonly steps: number;
}

export type ManagerEvent = ManagerInput | { readonly type: "haring.resume" };

export interface ManagerNoteParams {
  readonly note: ManagerNoteKind;
  readonly fields: Readonly<Record<string, string | number | boolean>>;
}

export const managerMachine = setup({
  types: {
    context: {} as ManagerContext,
    events: {} as ManagerEvent,
    input: {} as ManagerMachineInput,
  },
  actions: {
    proposeViewCommand: (_, _params: { command: ViewCommand }) => {},
    sendHostCommand: (_, _params: { command: HostCommand }) => {},
    note: (_, _params: ManagerNoteParams) => {},
  },
}).createMachine({
  id: "manager",
  context: ({ input }) => ({ planner: createRecoveryPlanner(input.config), outputs: [], steps: 0 }),
  on: {
    // Nothing to re-arm: the actor's ticks drive time.
    "haring.resume": {},
    "*": {
      actions: [
        assign(({ context, event }) => ({ outputs: stepRecoveryPlanner(context.planner, event as ManagerInput), steps: context.steps + 1 })),
        enqueueActions(({ context, enqueue }) => {
          for (const output of context.outputs) {
            if (output.kind === "propose") enqueue({ type: "proposeViewCommand", params: { command: output.command } });
            else if (output.kind === "host-command") enqueue({ type: "sendHostCommand", params: { command: output.command } });
            else enqueue({ type: "note", params: { note: output.note, fields: output.fields } });
          }
        }),
      ],
    },
  },
});

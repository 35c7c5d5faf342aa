/**
 * Admission control on the proposal path of the leader's manager: a command
 * that adds demand (`vm.add` of a running VM, `vm.set-desired` running) is
 * proposed only if `admitCommand` (machines/view/admission.ts) admits it
 * against the committed view with every command this gate admitted but has
 * not yet seen resolved applied on top. Applying those with the view's own
 * transition function keeps the check exact: two adds racing each other are
 * judged one after the other, as the log will apply them.
 *
 * Why here and not in the view's apply: see docs/recovery.md ("Admission
 * control: where"). In short, F is not part of the replicated view today,
 * and putting it there changes the view's wire schema.
 */
import { admitCommand } from "../../machines/view/admission.ts";
import { applyViewCommands } from "../../machines/view/applyViewCommands.ts";
import type { ViewCommand } from "../../machines/view/viewCommands.ts";
import type { View } from "../../machines/view/viewTypes.ts";

/** Admitted commands not yet seen resolved, at most; more are refused until some resolve. */
export const maxAdmittedInFlight = 1_024;
/** An admitted command whose outcome never came is forgotten after this long (it was lost, or it is in the view by then). */
export const admittedInFlightTimeoutMs = 30_000;

export type AdmissionOutcome = { readonly admitted: true } | { readonly admitted: false; readonly error: string };

export interface AdmissionGate {
  /** Checks `command`; when admitted it counts as in flight until `resolved` or the view shows it. */
  check(view: View, command: ViewCommand, nowMs: number): AdmissionOutcome;
  resolved(commandId: string): void;
  readonly inFlight: number;
}

/** `hostFailuresToTolerate(view)`: the F to judge by on that view. */
export function createAdmissionGate(hostFailuresToTolerate: (view: View) => number): AdmissionGate {
  const inFlight = new Map<string, { readonly command: ViewCommand; readonly atMs: number }>();
  return {
    check(view, command, nowMs) {
      for (const [commandId, entry] of [...inFlight]) {
        if (view.recentCommandIndex.get(commandId) !== undefined || nowMs - entry.atMs >= admittedInFlightTimeoutMs) inFlight.delete(commandId);
      }
      const pending = [...inFlight.values()].map((entry) => entry.command);
      const projected = pending.length === 0 ? view : applyViewCommands(view, Number.MAX_SAFE_INTEGER, pending).view;
      const decision = admitCommand(projected, command, hostFailuresToTolerate(projected));
      if (!decision.admitted) return { admitted: false, error: decision.error };
      if (command.type === "vm.add" || command.type === "vm.set-desired") {
        if (inFlight.size >= maxAdmittedInFlight) return { admitted: false, error: `more than ${maxAdmittedInFlight} admitted commands in flight; retry later` };
        inFlight.set(command.id, { command, atMs: nowMs });
      }
      return { admitted: true };
    },
    resolved(commandId) {
      inFlight.delete(commandId);
    },
    get inFlight() {
      return inFlight.size;
    },
  };
}

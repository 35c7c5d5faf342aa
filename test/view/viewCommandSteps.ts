/** Applies hand-written view commands one at a time in tests, each with a fresh id and slot. */
import { applyViewCommands } from "../../machines/view/applyViewCommands.ts";
import type { ViewCommand } from "../../machines/view/viewCommands.ts";
import type { View } from "../../machines/view/viewTypes.ts";

/** A view command without its id (distributed over the union, so each variant keeps its own fields). */
export type Draft = ViewCommand extends infer T ? (T extends ViewCommand ? Omit<T, "id"> : never) : never;

export interface ViewCommandSteps {
  /** The view after `command`, and "committed" or the rejection's reason. */
  outcome(view: View, command: Draft): { view: View; reason: string };
  /** The view after every command; throws naming the first that was not committed. */
  ok(view: View, ...commands: Draft[]): View;
}

export function viewCommandSteps(idPrefix: string): ViewCommandSteps {
  let counter = 0;
  const outcome = (view: View, command: Draft): { view: View; reason: string } => {
    const slot = counter++;
    const applied = applyViewCommands(view, slot, [{ ...command, id: `${idPrefix}-${slot}` } as ViewCommand]);
    const first = applied.outcomes[0]!;
    return { view: applied.view, reason: first.kind === "rejected" ? first.reason : first.kind };
  };
  return {
    outcome,
    ok(view, ...commands) {
      for (const command of commands) {
        const result = outcome(view, command);
        if (result.reason !== "committed") throw new Error(`${command.type}: ${result.reason}`);
        view = result.view;
      }
      return view;
    },
  };
}

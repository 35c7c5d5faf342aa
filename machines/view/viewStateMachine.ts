/**
 * The view as the replicated state machine the Paxos learner applies.
 */
import type { ReplicatedStateMachine } from "../paxos/replicatedStateMachine.ts";
import { applyViewCommands } from "./applyViewCommands.ts";
import type { ViewCommand } from "./viewCommands.ts";
import { viewFromSnapshot, viewToSnapshot } from "./viewSnapshot.ts";
import { emptyView, type View } from "./viewTypes.ts";

export const viewStateMachine: ReplicatedStateMachine<View, ViewCommand> = {
  initialState: emptyView,
  apply: (view, slot, commands) => {
    const application = applyViewCommands(view, slot, commands);
    return { state: application.view, outcomes: application.outcomes };
  },
  toSnapshot: viewToSnapshot,
  fromSnapshot: viewFromSnapshot,
};

/** The command a new leader proposes first, so the view names the current leader. */
export function leaderElectedCommand(controllerId: string, round: number): ViewCommand {
  return { id: `leader-${round}-${controllerId}`, type: "leader.elected", controllerId, round };
}

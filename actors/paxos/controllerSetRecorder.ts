/**
 * The view names its controllers (`controllers.set`): the acceptor set that
 * every controller's config and Paxos log agree on (docs/paxos.md, "The
 * acceptor set"). The leader records it when the view it has applied names
 * another list, at most once per leadership, so that `haring view`, the KV
 * mirror and the hosts read it from the view instead of from configs.
 *
 * A controller that does not lead warns when the view names another set than
 * its own config, once per set named (`paxos.controller-set-differs`): while
 * controllers are added or removed that is expected, but once the change is
 * done it means this controller was not stepped (docs/paxos.md, "Adding
 * controllers", "Removing controllers"), which nothing else would tell.
 */
import type { NodePorts } from "../ports/nodePorts.ts";
import type { ControllerActor } from "./controllerActor.ts";
import type { View } from "../../machines/view/viewTypes.ts";
import { viewControllerSetDifference } from "../../machines/paxos/acceptorSet.ts";

export const controllerSetRecordedLogEvent = "paxos.controllers-recorded";
export const controllerSetDiffersLogEvent = "paxos.controller-set-differs";
/** Distinct sets warned about, at most: a view flapping between lists cannot flood the log. */
export const maxWarnedControllerSets = 64;

export interface ControllerSetRecorder {
  stop(): void;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((id, index) => id === b[index]);
}

export function startControllerSetRecorder(ports: Pick<NodePorts, "log">, controller: ControllerActor, acceptorIds: readonly string[]): ControllerSetRecorder {
  // The leadership (ballot) whose proposal is out or done: one per leadership, and none while it is out.
  let proposedFor = "";
  let stopped = false;
  const warnedSets = new Set<string>();
  // The view's list changes rarely and keeps its identity meanwhile: a follower judges each list once, not each applied slot.
  let judgedList: readonly string[] | undefined;
  const warnIfDiffers = (view: View): void => {
    if (view.controllerIds === judgedList) return;
    judgedList = view.controllerIds;
    const difference = viewControllerSetDifference(view.controllerIds, acceptorIds);
    const named = view.controllerIds.join(",");
    if (difference === null || warnedSets.has(named) || warnedSets.size >= maxWarnedControllerSets) return;
    warnedSets.add(named);
    ports.log.write("warn", controllerSetDiffersLogEvent, {
      error: difference,
      note: "expected while controllers are added or removed; if it stays after the change, this controller was not stepped: stop it, run haring acceptors grow or shrink on its data directory, correct controllerIds, start it",
    });
  };
  const check = (view: View): void => {
    if (stopped || sameList(view.controllerIds, acceptorIds)) return;
    const leadership = controller.leadership();
    if (leadership.role !== "leader") warnIfDiffers(view);
    // A leader without the lease may be deposed already; its proposal would only wait for the next leader.
    if (leadership.role !== "leader" || !controller.holdsLease()) return;
    const ballot = `${leadership.ballot.round}.${leadership.ballot.controllerId}`;
    if (proposedFor === ballot) return;
    proposedFor = ballot;
    const id = `controllers-${leadership.ballot.round}-${leadership.ballot.controllerId}`;
    const sent = controller.propose({ id, type: "controllers.set", controllerIds: [...acceptorIds] }, (outcome) => {
      if (outcome.kind === "committed") ports.log.write("info", controllerSetRecordedLogEvent, { controllers: acceptorIds.join(","), slot: outcome.slot, was: view.controllerIds.join(",") || "-" });
      // Not chosen (the leadership ended meanwhile): whoever leads next records it.
      else if (proposedFor === ballot) proposedFor = "";
    });
    if (!sent.ok) proposedFor = "";
  };
  const applied = controller.onApplied((_commands, view) => check(view));
  const leadership = controller.onLeadership(() => check(controller.view()));
  return {
    stop() {
      stopped = true;
      applied.unsubscribe();
      leadership.unsubscribe();
    },
  };
}

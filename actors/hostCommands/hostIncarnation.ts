/**
 * Whether the view's incarnation number for this host names the incarnation
 * its agent runs now. The view takes the agent's number when the host comes
 * up (and on a rejoin); a view from before that (a host registered and
 * brought up at 0, as older views and the stand-in without detection do)
 * numbers the first life 0. So a view number matches when it equals the
 * agent's incarnation, or when it is 0 and the agent still runs the
 * incarnation it first held a lease with in this process.
 *
 * This is what keeps a host with a stale view safe: a host cut off long
 * enough to isolate itself moves to a new incarnation, and until its learner
 * has seen the rejoin, its view still names the old one — which no longer
 * matches, so it starts nothing on the strength of that old view.
 */
import type { TimerId } from "../ports/clock.ts";
import type { NodePorts } from "../ports/nodePorts.ts";
import type { HostLeaseState } from "./hostCommandExecutor.ts";

/** How often the agent's lease is looked at: far below a lease, so the first leased incarnation is never missed. */
export const incarnationObserveIntervalMs = 50;

export interface HostIncarnation {
  /** Whether `viewIncarnation` (the view's number for this host) names the agent's `agentIncarnation`. */
  matches(viewIncarnation: number, agentIncarnation: number): boolean;
  stop(): void;
}

export function trackHostIncarnation(ports: Pick<NodePorts, "clock">, lease: () => HostLeaseState | undefined): HostIncarnation {
  let firstLeased: number | undefined;
  let timer: TimerId | undefined;
  const observe = (): void => {
    const now = lease();
    if (now !== undefined && now.phase === "leased" && firstLeased === undefined) firstLeased = now.incarnation;
    timer = firstLeased === undefined ? ports.clock.setTimeout(observe, incarnationObserveIntervalMs) : undefined;
  };
  observe();
  return {
    matches(viewIncarnation, agentIncarnation) {
      if (viewIncarnation === agentIncarnation) return true;
      if (firstLeased === undefined) observe();
      return viewIncarnation === 0 && firstLeased !== undefined && agentIncarnation === firstLeased;
    },
    stop() {
      if (timer !== undefined) ports.clock.clearTimeout(timer);
      timer = undefined;
    },
  };
}

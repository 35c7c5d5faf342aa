/**
 * What the failure detector asks the Paxos leader to commit, and the view
 * commands (machines/view/viewCommands.ts) that carry it. Command ids are
 * derived from the host and the incarnation the detector saw, so a proposal
 * repeated by a later term, or by a new leader, is the same command and the
 * view applies it once.
 */
import type { ViewCommand } from "../view/viewCommands.ts";
import type { HostState } from "../view/viewTypes.ts";

export interface ProposeHostFailed {
  readonly type: "host-failed";
  readonly hostId: string;
  /** The host agent's incarnation that is gone. */
  readonly incarnation: number;
  /** Leader clock: the host's lease, and the time its VMs take to stop, have surely run out by now. */
  readonly leaseExpiresByMs: number;
}

export interface ProposeHostUp {
  readonly type: "host-up";
  readonly hostId: string;
  /** The host agent's incarnation, heard alive: a new one after a failure, or the first one of a joining host. */
  readonly incarnation: number;
}

export type HostProposal = ProposeHostFailed | ProposeHostUp;

/** The view's record of the host, when the caller has the view. */
export interface ViewHostState {
  readonly state: HostState;
  readonly incarnation: number;
}

/**
 * The view commands for a proposal, given what the view holds for the host.
 *
 * The view numbers a host's incarnations itself: it starts a registered host
 * at 0 and takes a new number only on `host.rejoin`, while a host agent counts
 * its own from its disk. So a failure is recorded against the view's current
 * incarnation (unless the view already knows a newer one than the failed
 * agent incarnation: then the proposal is stale), a joining host is brought up
 * at the view's incarnation, and only a rejoin carries the agent's number into
 * the view. Without the view's record the agent's numbers are used as they are.
 */
export function viewCommandsFor(proposal: HostProposal, viewHost?: ViewHostState): ViewCommand[] {
  const { hostId } = proposal;
  if (proposal.type === "host-failed") {
    const id = `host-failed-${hostId}-${proposal.incarnation}`;
    if (viewHost === undefined) return [{ id, type: "host.failed", hostId, incarnation: proposal.incarnation }];
    if (viewHost.state !== "joining" && viewHost.state !== "up" && viewHost.state !== "suspect") return [];
    if (viewHost.incarnation > proposal.incarnation) return [];
    return [{ id, type: "host.failed", hostId, incarnation: viewHost.incarnation }];
  }
  const rejoin: ViewCommand[] = [
    { id: `host-rejoin-${hostId}-${proposal.incarnation}`, type: "host.rejoin", hostId, incarnation: proposal.incarnation },
    { id: `host-up-${hostId}-${proposal.incarnation}`, type: "host.up", hostId, incarnation: proposal.incarnation },
  ];
  if (viewHost === undefined) return rejoin;
  if (viewHost.state === "failed" || viewHost.state === "fenced") return proposal.incarnation > viewHost.incarnation ? rejoin : [];
  if (viewHost.state === "joining") return [{ id: `host-joined-${hostId}-${proposal.incarnation}`, type: "host.up", hostId, incarnation: viewHost.incarnation }];
  return [];
}

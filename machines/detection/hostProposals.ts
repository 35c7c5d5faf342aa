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
 * The view carries the host agent's incarnation: a registered host is
 * `joining` at 0 (nobody has heard its agent yet), and `host.up` from
 * `joining` takes the agent's number, as `host.rejoin` does. So a joining host
 * is brought up at the agent's incarnation, and a failure is recorded at the
 * agent's incarnation when the view holds that one. Two cases still differ: a
 * failure of an incarnation newer than the view's (the host came back and
 * died again before the view caught up) ends the view's older one as well,
 * so it is recorded against the view's number; and a failure of an
 * incarnation older than the view's is stale and dropped. Without the view's
 * record the agent's numbers are used as they are.
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
  const up: ViewCommand = { id: `host-up-${hostId}-${proposal.incarnation}`, type: "host.up", hostId, incarnation: proposal.incarnation };
  const rejoin: ViewCommand[] = [{ id: `host-rejoin-${hostId}-${proposal.incarnation}`, type: "host.rejoin", hostId, incarnation: proposal.incarnation }, up];
  if (viewHost === undefined) return rejoin;
  if (viewHost.state === "failed" || viewHost.state === "fenced") return proposal.incarnation > viewHost.incarnation ? rejoin : [];
  if (viewHost.state === "joining") return proposal.incarnation >= viewHost.incarnation ? [up] : [];
  return [];
}

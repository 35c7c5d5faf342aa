/**
 * What the failure detector asks the Paxos leader to commit, and the view
 * commands (machines/view/viewCommands.ts) that carry it. Command ids are
 * derived from the host and incarnation, so a proposal repeated by a later
 * leader term, or by a new leader, is the same command and the view applies
 * it once.
 */
import type { ViewCommand } from "../view/viewCommands.ts";

export interface ProposeHostFailed {
  readonly type: "host-failed";
  readonly hostId: string;
  readonly incarnation: number;
  /** Leader clock: the host's lease, and the time its VMs take to stop, have surely run out by now. */
  readonly leaseExpiresByMs: number;
}

export interface ProposeHostUp {
  readonly type: "host-up";
  readonly hostId: string;
  /** A new incarnation: the host rejoined after it was declared failed (or fenced itself). */
  readonly incarnation: number;
}

export type HostProposal = ProposeHostFailed | ProposeHostUp;

/**
 * The view commands for a proposal. A rejoin is two commands, `host.rejoin`
 * (failed or fenced → joining, with the new incarnation) then `host.up`.
 */
export function viewCommandsFor(proposal: HostProposal): ViewCommand[] {
  if (proposal.type === "host-failed") {
    return [{ id: `host-failed-${proposal.hostId}-${proposal.incarnation}`, type: "host.failed", hostId: proposal.hostId, incarnation: proposal.incarnation }];
  }
  return [
    { id: `host-rejoin-${proposal.hostId}-${proposal.incarnation}`, type: "host.rejoin", hostId: proposal.hostId, incarnation: proposal.incarnation },
    { id: `host-up-${proposal.hostId}-${proposal.incarnation}`, type: "host.up", hostId: proposal.hostId, incarnation: proposal.incarnation },
  ];
}

/**
 * Tells a controller when too many acceptors are rejoining after lost disks for
 * any of them to finish: a rejoin needs a majority of the *other* acceptors to
 * vote (docs/paxos.md, "Rejoining from an empty disk"), so once fewer than a
 * majority still hold their state, nobody can fence anybody, no leader can be
 * elected, and nothing commits until an operator acts (docs/paxos.md, "A
 * majority without state"). Paxos is right to stop there; this only makes the
 * stop say what it is, instead of endless pre-votes and fence attempts.
 *
 * The evidence is the fences themselves: an acceptor sends `rejoin-fence` to
 * every peer each `rejoinRetryMs` for as long as it rejoins, so every
 * controller that hears from it knows it is rejoining. A peer counts as
 * rejoining while its last fence is at most `rejoinEvidenceFreshForRetries`
 * retries old; a finished rejoin stops its fences and so clears itself. The
 * judgement errs one way only: a rejoiner this node cannot hear is not
 * counted, so a partition can hide the condition but never invent it.
 */
import { majorityOf } from "../../machines/paxos/config.ts";

/** A peer's last fence stays evidence that it is rejoining for this many of its retry intervals. */
export const rejoinEvidenceFreshForRetries = 4;

export interface RejoiningMajorityWatchConfig {
  readonly acceptorIds: readonly string[];
  readonly rejoinRetryMs: number;
}

export interface RejoiningAcceptors {
  /** Every acceptor known to be rejoining now (this one included when it is), sorted. */
  readonly rejoining: readonly string[];
  /** Fewer than a majority of the acceptors can still vote: no rejoin can complete and no leader be elected. */
  readonly majorityWithoutState: boolean;
}

export class RejoiningMajorityWatch {
  private readonly lastFenceAtMs = new Map<string, number>();
  private readonly freshForMs: number;

  constructor(
    private readonly config: RejoiningMajorityWatchConfig,
    private readonly selfId: string,
  ) {
    this.freshForMs = rejoinEvidenceFreshForRetries * config.rejoinRetryMs;
  }

  /** A `rejoin-fence` arrived from `peerId`; anyone outside the acceptor set (or this node) is no evidence. */
  fenceFrom(peerId: string, nowMs: number): void {
    if (peerId === this.selfId || !this.config.acceptorIds.includes(peerId)) return;
    this.lastFenceAtMs.set(peerId, nowMs);
  }

  /** Who is rejoining as of `nowMs`, given whether this node's own acceptor is. */
  judge(nowMs: number, selfRejoining: boolean): RejoiningAcceptors {
    const rejoining: string[] = selfRejoining ? [this.selfId] : [];
    for (const [peerId, atMs] of this.lastFenceAtMs) {
      if (nowMs - atMs <= this.freshForMs) rejoining.push(peerId);
      else this.lastFenceAtMs.delete(peerId);
    }
    rejoining.sort();
    const acceptors = this.config.acceptorIds.length;
    return { rejoining, majorityWithoutState: acceptors - rejoining.length < majorityOf(acceptors) };
  }
}

/**
 * Everything a controller keeps on disk, as plain records in one append-only
 * log (the actor encodes and frames them). Each core reads the kinds it owns
 * and ignores the others.
 *
 * A torn or corrupt tail is cut off by the storage layer before these records
 * are seen (actors/recordFraming.ts); the cores trust what they are given.
 */
import type { Ballot } from "./ballot.ts";
import type { CommandEnvelope, SlotValue } from "./values.ts";

export type DurableRecord<C extends CommandEnvelope> =
  /**
   * Written once when the acceptor first votes: its absence means "this disk never voted", see acceptor.ts.
   * `fencedBy`: after a rejoin from an empty disk, the controllers whose fences it counted (they forgot what they
   * saw of its earlier life); absent for a bootstrapped disk, which had no earlier life.
   * `acceptors`: the acceptor set its promises and votes count in (acceptorSet.ts); absent in logs from before it was kept.
   */
  | { readonly kind: "init"; readonly fencedBy?: readonly string[]; readonly acceptors?: readonly string[] }
  /** Acceptor: the promised ballot rose to `ballot`. */
  | { readonly kind: "promise"; readonly ballot: Ballot }
  /** Acceptor: voted for `value` in `slot` at `ballot` (which also promises `ballot`). */
  | { readonly kind: "accept"; readonly slot: number; readonly ballot: Ballot; readonly value: SlotValue<C> }
  /**
   * Acceptor, after rejoining from an empty disk: the highest vote a majority of the others reported
   * for this slot. Reported in promises like a vote, but it is not one (this acceptor never accepted
   * it), so it never counts toward a majority; see docs/paxos.md.
   */
  | { readonly kind: "inherit"; readonly slot: number; readonly ballot: Ballot; readonly value: SlotValue<C> }
  /** Acceptor: every slot below `slot` is chosen and covered by a snapshot (written by compaction). */
  | { readonly kind: "floor"; readonly slot: number }
  /** Proposer: the highest round it has used, so a restarted proposer never reuses a ballot. */
  | { readonly kind: "round"; readonly round: number }
  /**
   * The controller actor: what `peer`'s messages showed its disk holds (voteEvidence.ts), replacing the record
   * before it for that peer; all zero when the peer began a new life (its rejoin fence). Read by no core: it lets
   * the vote recall of that peer catch an old copy of its directory after this controller restarted too.
   */
  | {
      readonly kind: "peer-evidence";
      readonly peer: string;
      readonly promised: Ballot;
      readonly votedSlot: number;
      readonly votedBallot: Ballot;
      readonly roundUsed: number;
    }
  /** Learner: the replicated state after applying every slot below `throughSlot`, in plain form. */
  | { readonly kind: "snapshot"; readonly throughSlot: number; readonly snapshot: unknown };

export type DurableRecordKind = DurableRecord<CommandEnvelope>["kind"];

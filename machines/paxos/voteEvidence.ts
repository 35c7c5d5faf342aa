/**
 * What a controller has seen another controller's disk hold. A controller
 * makes its promises, votes and proposer rounds durable before any message
 * that speaks for them leaves (stepResult.ts), so every such message it sent
 * is evidence of a lower bound on its disk. A controller restarted on an old
 * copy of its own data directory (a restored backup or VM snapshot) holds
 * less than its peers saw, and voting with it could choose a second value
 * for a slot: it would take ballots it had promised to refuse, and forget
 * votes a quorum counted. The restart asks its peers for their evidence
 * (actors/paxos/voteRecall.ts) and refuses a log that falls short of it.
 *
 * Only messages that attest the sender's disk count: an acceptor's replies
 * (promise, accepted, heartbeat ack, refusal, pre-vote reply, rejoin state)
 * and a proposer's ballots (prepare, and the accepts and heartbeats of a
 * round made durable before its prepares). A controller rejoining after a lost
 * disk has, by design, forgotten its earlier life: its rejoin fence makes the
 * peer forget the evidence too.
 */
import { compareBallots, formatBallot, zeroBallot, type Ballot } from "./ballot.ts";
import { recoverAcceptor } from "./acceptor.ts";
import type { PaxosConfig } from "./config.ts";
import type { PaxosMessage } from "./messages.ts";
import { createProposer } from "./proposer.ts";
import type { DurableRecord } from "./records.ts";
import type { CommandEnvelope } from "./values.ts";

export interface VoteEvidence {
  /** The highest ballot it was seen to have promised (a vote at a ballot promises it too). */
  readonly promised: Ballot;
  /** The highest slot it was seen to vote in, and the ballot of that vote; -1 when none. */
  readonly votedSlot: number;
  readonly votedBallot: Ballot;
  /** The highest round of its own ballots it was seen to use as a proposer; 0 when none. */
  readonly roundUsed: number;
}

export const noVoteEvidence: VoteEvidence = { promised: zeroBallot, votedSlot: -1, votedBallot: zeroBallot, roundUsed: 0 };

/** The evidence after `message` from `message.from`; `null` when the sender is rejoining (its earlier life is forgotten). */
export function evidenceAfter<C extends CommandEnvelope>(evidence: VoteEvidence, message: PaxosMessage<C>): VoteEvidence | null {
  switch (message.type) {
    case "paxos.rejoin-fence":
      return null;
    case "paxos.reject":
      return message.reason === "rejoining" ? null : promising(evidence, message.promised);
    case "paxos.pre-vote-reply":
      return promising(evidence, message.promised);
    case "paxos.promise":
    case "paxos.heartbeat-ack":
      return promising(evidence, message.ballot);
    case "paxos.rejoin-state":
      return promising(evidence, message.fence);
    case "paxos.accepted": {
      const promised = promising(evidence, message.ballot);
      const later = message.slot > evidence.votedSlot || (message.slot === evidence.votedSlot && compareBallots(message.ballot, evidence.votedBallot) > 0);
      return later ? { ...promised, votedSlot: message.slot, votedBallot: message.ballot } : promised;
    }
    case "paxos.prepare":
    case "paxos.accept":
    case "paxos.heartbeat":
      return message.ballot.controllerId === message.from && message.ballot.round > evidence.roundUsed ? { ...evidence, roundUsed: message.ballot.round } : evidence;
    default:
      return evidence;
  }
}

function promising(evidence: VoteEvidence, ballot: Ballot): VoteEvidence {
  return compareBallots(ballot, evidence.promised) > 0 ? { ...evidence, promised: ballot } : evidence;
}

/** A controller's record of what `peer`'s disk was seen to hold; noVoteEvidence clears what came before. */
export function peerEvidenceRecord(peer: string, evidence: VoteEvidence): Extract<DurableRecord<never>, { kind: "peer-evidence" }> {
  return { kind: "peer-evidence", peer, promised: evidence.promised, votedSlot: evidence.votedSlot, votedBallot: evidence.votedBallot, roundUsed: evidence.roundUsed };
}

/**
 * The evidence a controller kept on disk, the last record per other controller in its set (a later record
 * replaces an earlier one; a cleared one leaves nothing).
 */
export function evidenceFromRecords<C extends CommandEnvelope>(records: readonly DurableRecord<C>[], selfId: string, controllerIds: readonly string[]): Map<string, VoteEvidence> {
  const kept = new Map<string, VoteEvidence>();
  for (const record of records) {
    if (record.kind !== "peer-evidence" || record.peer === selfId || !controllerIds.includes(record.peer)) continue;
    const evidence: VoteEvidence = { promised: record.promised, votedSlot: record.votedSlot, votedBallot: record.votedBallot, roundUsed: record.roundUsed };
    if (isNoEvidence(evidence)) kept.delete(record.peer);
    else kept.set(record.peer, evidence);
  }
  return kept;
}

function isNoEvidence(evidence: VoteEvidence): boolean {
  return evidence.votedSlot === -1 && evidence.roundUsed === 0 && compareBallots(evidence.promised, zeroBallot) === 0 && compareBallots(evidence.votedBallot, zeroBallot) === 0;
}

/** What a controller's own log holds, as its acceptor and proposer recover it. */
export interface DurableVotingState {
  readonly promised: Ballot;
  /** Votes are kept from this slot on; below it everything is chosen and compacted. */
  readonly floorSlot: number;
  /** The ballot of the vote held for `slot` (inherited or its own), or undefined. */
  voteBallotAt(slot: number): Ballot | undefined;
  /**
   * Its proposer's next ballot takes a round above this one: above the rounds it used, and above every round it
   * promised or voted at (proposer.ts, nextRound). A round at or below it can never be used again.
   */
  readonly roundsKnownUpTo: number;
  /**
   * After a rejoin from an empty disk, the controllers whose fences it counted; null for a bootstrapped disk.
   * Only they are known to have forgotten what they saw of its earlier life (recallPeers).
   */
  readonly fencedBy: readonly string[] | null;
}

/**
 * Why the log cannot be the one the peer saw (one line naming both sides), or
 * undefined when it holds everything the evidence shows. A vote replaced by one
 * at a higher ballot, or compacted under the floor, still holds it.
 */
export function evidenceShortfall(own: DurableVotingState, evidence: VoteEvidence): string | undefined {
  if (compareBallots(own.promised, evidence.promised) < 0) {
    return `it promised ballot ${formatBallot(evidence.promised)}, the log only ${formatBallot(own.promised)}`;
  }
  if (evidence.votedSlot >= own.floorSlot) {
    const held = own.voteBallotAt(evidence.votedSlot);
    if (held === undefined || compareBallots(held, evidence.votedBallot) < 0) {
      return `it voted in slot ${evidence.votedSlot} at ballot ${formatBallot(evidence.votedBallot)}, the log holds ${held === undefined ? "no vote there" : `a vote at ${formatBallot(held)}`} (its floor is slot ${own.floorSlot})`;
    }
  }
  if (own.roundsKnownUpTo < evidence.roundUsed) {
    return `it proposed in round ${evidence.roundUsed}, the log knows rounds only up to ${own.roundsKnownUpTo} (it could use round ${evidence.roundUsed} again)`;
  }
  return undefined;
}

/** The voting state a controller recovers from its log's records; null when it would rejoin (no `init`: it never voted here). */
export function durableVotingState<C extends CommandEnvelope>(acceptorId: string, config: PaxosConfig, records: readonly DurableRecord<C>[]): DurableVotingState | null {
  const { state } = recoverAcceptor({ acceptorId, config, records, nowMs: 0, bootstrap: false });
  if (state.mode === "rejoining") return null;
  // The proposer's own recovery: its next round goes above both (nextRound).
  const proposer = createProposer({ proposerId: acceptorId, config, records, nowMs: 0, randomSeed: 0 });
  const roundsKnownUpTo = Math.max(proposer.roundUsed, proposer.maxRoundSeen, state.promised.round);
  return { promised: state.promised, floorSlot: state.floorSlot, voteBallotAt: (slot) => state.votes.get(slot)?.ballot, roundsKnownUpTo, fencedBy: state.fencedBy };
}

/**
 * The controllers whose evidence can speak for this log. A controller that missed the rejoin that began the
 * log's life (its fence went to others) may still hold what it saw of the earlier life, which the log rightly
 * lacks: its evidence cannot tell an old copy from the real log, so it is not asked. The fence majority forgot
 * the earlier life when it answered. An old copy of an earlier life asks that life's fence majority (or, for a
 * bootstrapped life, everyone), which meets this life's in at least one controller: two majorities always meet.
 */
export function recallPeers(own: DurableVotingState, controllerIds: readonly string[], selfId: string): { readonly asked: readonly string[]; readonly missedRejoin: readonly string[] } {
  const others = controllerIds.filter((id) => id !== selfId);
  if (own.fencedBy === null) return { asked: others, missedRejoin: [] };
  const fencedBy = own.fencedBy;
  return { asked: others.filter((id) => fencedBy.includes(id)), missedRejoin: others.filter((id) => !fencedBy.includes(id)) };
}

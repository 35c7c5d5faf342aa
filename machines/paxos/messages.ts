/**
 * The Paxos wire messages as plain typed objects (no Maps, Sets or classes, so
 * the codec in actors/ can encode them as they are). Every message names its
 * sender and recipient; `to: "*"` addresses every learner that is not an
 * acceptor (the commit broadcast, carried on the view.commit subject).
 *
 * `type` values follow the envelope's type pattern (actors/codec/envelope.ts),
 * so the actor can use them as the envelope's `t` unchanged.
 */
import type { Ballot } from "./ballot.ts";
import type { ChosenEntry, CommandEnvelope, SlotValue } from "./values.ts";

export const learnerBroadcast = "*";

export interface AcceptedVote<C extends CommandEnvelope> {
  readonly ballot: Ballot;
  readonly value: SlotValue<C>;
}

export interface ReportedVote<C extends CommandEnvelope> extends AcceptedVote<C> {
  readonly slot: number;
}

interface Addressed {
  readonly from: string;
  readonly to: string;
}

/** Phase 1a: one prepare covers every slot from `fromSlot` on. */
export interface PrepareMessage extends Addressed {
  readonly type: "paxos.prepare";
  readonly ballot: Ballot;
  readonly fromSlot: number;
}

/**
 * Pre-vote (as Raft's, §9.6 of Ongaro's thesis): before a follower prepares, it asks every acceptor
 * whether it would take a prepare now. The acceptor changes nothing, persists nothing and grants
 * unless a lease it granted to another controller still runs (it heard a live leader within
 * `leaseDurationMs`) or it is rejoining. `ballot` is the one the follower would prepare, and only
 * correlates the replies.
 */
export interface PreVoteMessage extends Addressed {
  readonly type: "paxos.pre-vote";
  readonly ballot: Ballot;
}

export interface PreVoteReplyMessage extends Addressed {
  readonly type: "paxos.pre-vote-reply";
  readonly ballot: Ballot;
  readonly granted: boolean;
  /** The acceptor's promise, so the real prepare can start above it. */
  readonly promised: Ballot;
  readonly leaseHolderId: string;
  readonly leaseRemainingMs: number;
}

/** Phase 1b. Slots below `floorSlot` were compacted: they are chosen, and only snapshots hold them. */
export interface PromiseMessage<C extends CommandEnvelope> extends Addressed {
  readonly type: "paxos.promise";
  readonly ballot: Ballot;
  readonly floorSlot: number;
  readonly votes: readonly ReportedVote<C>[];
}

/** Phase 2a, with the leader's commit index piggy-backed: every slot below it is chosen. */
export interface AcceptMessage<C extends CommandEnvelope> extends Addressed {
  readonly type: "paxos.accept";
  readonly ballot: Ballot;
  readonly slot: number;
  readonly value: SlotValue<C>;
  readonly commitIndex: number;
}

/** Phase 2b. */
export interface AcceptedMessage extends Addressed {
  readonly type: "paxos.accepted";
  readonly ballot: Ballot;
  readonly slot: number;
}

/** Lease renewal and liveness from the leader; carries the commit index when no accept does. */
export interface HeartbeatMessage extends Addressed {
  readonly type: "paxos.heartbeat";
  readonly ballot: Ballot;
  readonly commitIndex: number;
  readonly sequence: number;
}

export interface HeartbeatAckMessage extends Addressed {
  readonly type: "paxos.heartbeat-ack";
  readonly ballot: Ballot;
  readonly sequence: number;
}

export type RejectReason =
  /** The acceptor promised a higher ballot (`promised`). */
  | "stale-ballot"
  /** Another controller holds the lease this acceptor granted, for `leaseRemainingMs` more. */
  | "lease-held"
  /** The acceptor lost its disk and does not vote until it has fenced. */
  | "rejoining"
  /** The slot lies below the acceptor's compaction floor: it is chosen. */
  | "compacted"
  /** The acceptor holds as many votes as it may (its learner lags): not voting is always safe. */
  | "vote-log-full";

/** A refusal of a prepare, accept or heartbeat made with `ballot`. */
export interface RejectMessage extends Addressed {
  readonly type: "paxos.reject";
  readonly ballot: Ballot;
  readonly reason: RejectReason;
  readonly promised: Ballot;
  readonly leaseHolderId: string;
  readonly leaseRemainingMs: number;
  readonly floorSlot: number;
  /** The slot of a refused accept; -1 for prepares and heartbeats. */
  readonly slot: number;
}

/** Sent by an acceptor that restarted from an empty disk (see docs/paxos.md). */
export interface RejoinFenceMessage extends Addressed {
  readonly type: "paxos.rejoin-fence";
  /** Ties replies to this attempt. */
  readonly attempt: number;
}

/** A voting acceptor's answer: it promised `fence` (above all it had promised) and reports its votes. */
export interface RejoinStateMessage<C extends CommandEnvelope> extends Addressed {
  readonly type: "paxos.rejoin-state";
  readonly attempt: number;
  readonly fence: Ballot;
  readonly floorSlot: number;
  readonly votes: readonly ReportedVote<C>[];
}

/** Chosen values, from the leader to non-acceptor learners. */
export interface CommitMessage<C extends CommandEnvelope> extends Addressed {
  readonly type: "paxos.commit";
  readonly entries: readonly ChosenEntry<C>[];
  readonly commitIndex: number;
}

/** Catch-up request from a lagging learner. */
export interface FetchMessage extends Addressed {
  readonly type: "paxos.fetch";
  readonly fromSlot: number;
  readonly maxSlots: number;
}

export interface FetchReplyMessage<C extends CommandEnvelope> extends Addressed {
  readonly type: "paxos.fetch-reply";
  readonly entries: readonly ChosenEntry<C>[];
  readonly commitIndex: number;
}

/** The answer to a fetch below the peer's retained log: its whole state as of `throughSlot` (exclusive). */
export interface SnapshotMessage extends Addressed {
  readonly type: "paxos.snapshot";
  readonly throughSlot: number;
  /** The replicated state machine's plain snapshot form; validated before use. */
  readonly snapshot: unknown;
  readonly commitIndex: number;
}

/** A client asks a controller to propose a command. */
export interface ProposeMessage<C extends CommandEnvelope> extends Addressed {
  readonly type: "paxos.propose";
  readonly command: C;
  /**
   * Sent to a controller other than the known leader because that leader stayed silent: besides
   * refusing it as usual, a follower passes it on to the leader it knows (once, without this mark), so a
   * proposer cut off from the leader one way still reaches it through a third controller.
   */
  readonly relay?: boolean;
}

export type ProposeRefusal = "not-leader" | "overloaded";

/** Only refusals are answered: the outcome of an accepted proposal is learned from the log. */
export interface ProposeReplyMessage extends Addressed {
  readonly type: "paxos.propose-reply";
  readonly commandId: string;
  readonly refusal: ProposeRefusal;
  readonly leaderHint: string;
}

export type PaxosMessage<C extends CommandEnvelope> =
  | PreVoteMessage
  | PreVoteReplyMessage
  | PrepareMessage
  | PromiseMessage<C>
  | AcceptMessage<C>
  | AcceptedMessage
  | HeartbeatMessage
  | HeartbeatAckMessage
  | RejectMessage
  | RejoinFenceMessage
  | RejoinStateMessage<C>
  | CommitMessage<C>
  | FetchMessage
  | FetchReplyMessage<C>
  | SnapshotMessage
  | ProposeMessage<C>
  | ProposeReplyMessage;

export type PaxosMessageType = PaxosMessage<CommandEnvelope>["type"];

/**
 * The only messages a node outside the acceptor set (a host's learner) sends: a proposal and a catch-up request.
 * Everything else speaks for an acceptor, a leader or a chosen value, and counts only from a controller of the set
 * (a process with another set, or none, must not steer anyone's votes or learning).
 */
export const messageTypesFromLearners: ReadonlySet<PaxosMessageType> = new Set<PaxosMessageType>(["paxos.propose", "paxos.fetch"]);

export const paxosMessageTypes: readonly PaxosMessageType[] = [
  "paxos.pre-vote",
  "paxos.pre-vote-reply",
  "paxos.prepare",
  "paxos.promise",
  "paxos.accept",
  "paxos.accepted",
  "paxos.heartbeat",
  "paxos.heartbeat-ack",
  "paxos.reject",
  "paxos.rejoin-fence",
  "paxos.rejoin-state",
  "paxos.commit",
  "paxos.fetch",
  "paxos.fetch-reply",
  "paxos.snapshot",
  "paxos.propose",
  "paxos.propose-reply",
];

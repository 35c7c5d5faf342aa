/**
 * The contract between a pure core and the actor that runs it (as in
 * etcd-io/raft's Ready): the core decides, the caller persists, sends and
 * applies.
 *
 * The caller must append `persist` to the node's durable log (or replace the
 * log with `rewrite`), sync it, and only when the sync has completed send
 * `sendAfterSync`. Messages from later steps must not overtake earlier ones.
 * A promise or vote that left the node before it was durable could be
 * forgotten by a crash, which is exactly what Paxos cannot survive.
 */
import type { PaxosMessage } from "./messages.ts";
import type { DurableRecord } from "./records.ts";
import type { CommandEnvelope } from "./values.ts";

export interface Effects<C extends CommandEnvelope> {
  /** Append these, then sync. */
  readonly persist: readonly DurableRecord<C>[];
  /** Send only once `persist` (and every earlier record) is durable. */
  readonly sendAfterSync: readonly PaxosMessage<C>[];
}

export const noEffects: Effects<never> = { persist: [], sendAfterSync: [] };

/**
 * Message types that attest nothing about the sender's durable state, so a caller may send them
 * before the records of earlier steps are durable (the narrower rule controller processes use,
 * DurableWriterOptions.sendsAtOnce; docs/paxos.md "Persist before send"):
 * - a proposer's accepts and heartbeats carry a ballot whose round was made durable before its
 *   prepares went out, a value phase 1 fixed from others' durable promises, and a commit index of
 *   slots chosen by durable votes (its own vote counts only once its `accepted` to itself, which
 *   waits, has arrived);
 * - commits, fetches, fetch replies and snapshots carry chosen values and learner state, chosen by
 *   a majority of durable votes whatever this node's disk holds;
 * - proposals and their replies are client traffic.
 * Everything else (promise, accepted, reject, heartbeat-ack, pre-vote and its reply, prepare,
 * rejoin-fence, rejoin-state) speaks for a promise, a vote or a round, and waits.
 */
const attestsSenderDisk: Readonly<Record<PaxosMessage<CommandEnvelope>["type"], boolean>> = {
  "paxos.pre-vote": true,
  "paxos.pre-vote-reply": true,
  "paxos.prepare": true,
  "paxos.promise": true,
  "paxos.accept": false,
  "paxos.accepted": true,
  "paxos.heartbeat": false,
  "paxos.heartbeat-ack": true,
  "paxos.reject": true,
  "paxos.rejoin-fence": true,
  "paxos.rejoin-state": true,
  "paxos.commit": false,
  "paxos.fetch": false,
  "paxos.fetch-reply": false,
  "paxos.snapshot": false,
  "paxos.propose": false,
  "paxos.propose-reply": false,
};

/** Every message type must be classified above: a new one does not compile until someone decides. */
export const unattestedMessageTypes: ReadonlySet<PaxosMessage<CommandEnvelope>["type"]> = new Set(
  (Object.keys(attestsSenderDisk) as PaxosMessage<CommandEnvelope>["type"][]).filter((type) => !attestsSenderDisk[type]),
);

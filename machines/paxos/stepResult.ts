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

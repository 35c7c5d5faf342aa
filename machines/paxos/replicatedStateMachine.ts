/**
 * What the learner applies the log to. Paxos is generic over it; the cluster
 * view (machines/view/) is the one real instance. `apply` must be a
 * deterministic function of its arguments: every learner applies the same
 * slots in the same order and must end in the same state, including the same
 * rejections.
 */
import type { CommandEnvelope } from "./values.ts";

export type FirstOutcome = { readonly kind: "committed" } | { readonly kind: "rejected"; readonly reason: string };

/** A command id seen again (a retried proposal) changes nothing and reports what its first application did. */
export type CommandOutcome = FirstOutcome | { readonly kind: "duplicate"; readonly firstSlot: number; readonly first: FirstOutcome };

export interface AppliedCommand {
  readonly slot: number;
  readonly commandId: string;
  readonly outcome: CommandOutcome;
}

export type SnapshotParse<S> = { readonly ok: true; readonly state: S } | { readonly ok: false; readonly error: string };

export interface ReplicatedStateMachine<S, C extends CommandEnvelope> {
  readonly initialState: S;
  /** Applies one slot's commands in order; `outcomes[i]` belongs to `commands[i]`. */
  apply(state: S, slot: number, commands: readonly C[]): { readonly state: S; readonly outcomes: readonly CommandOutcome[] };
  /** A plain-data form (JSON-compatible, no Maps) that survives the wire and the disk. */
  toSnapshot(state: S): unknown;
  /** Validates a snapshot from a peer or the disk: it is hostile input like any message. */
  fromSnapshot(snapshot: unknown): SnapshotParse<S>;
}

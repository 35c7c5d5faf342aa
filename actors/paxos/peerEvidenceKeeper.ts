/**
 * What this controller has seen the other controllers' disks hold
 * (machines/paxos/voteEvidence.ts), in memory and, a little behind, in its own
 * Paxos log (`peer-evidence` records), so that the vote recall of a peer
 * restarted on an old copy of its directory is answered from disk too, after
 * this controller restarted as well (a whole cluster restarted after a power
 * cut, then one controller restored from a backup).
 *
 * Kept late is safe: evidence only ever understates a disk. Kept early is
 * not, in one case: a peer's rejoin fence makes this controller forget the
 * peer's earlier life, and the fence's answer counts this controller among
 * those that forgot (the rejoined log's `fencedBy`, which the recall asks). So
 * the forgetting is written before anything else is: its record goes with the
 * records of the next step that writes, which for the fence is the step that
 * answers it (a fence is answered with a promise, and the answer leaves only
 * after it is durable, stepResult.ts). Changes are written at most every
 * `peerEvidenceKeepIntervalMs`, with the records of a step that writes anyway:
 * never a sync of their own, so the commit path and the simulator's timing are
 * untouched. A controller that writes nothing keeps nothing new; its peers'
 * votes and promises mostly come with its own (it votes in the same slots,
 * promises the same ballots).
 */
import type { ViewDurableRecord } from "./paxosRecords.ts";
import type { ViewPaxosMessage } from "./paxosMessages.ts";
import { evidenceAfter, evidenceFromRecords, noVoteEvidence, peerEvidenceRecord, type VoteEvidence } from "../../machines/paxos/voteEvidence.ts";

/** Evidence that changed is written at most this often (one small record per changed peer). */
export const peerEvidenceKeepIntervalMs = 1_000;

export class PeerEvidenceKeeper {
  private readonly evidence: Map<string, VoteEvidence>;
  /** Peers whose evidence changed since it was last written. */
  private readonly changed = new Set<string>();
  /** Forgotten peers, to be written before anything else. */
  private readonly forgotten: string[] = [];
  private keptAtMs: number;

  constructor(
    private readonly selfId: string,
    private readonly controllerIds: readonly string[],
    records: readonly ViewDurableRecord[],
    nowMs: number,
  ) {
    this.evidence = evidenceFromRecords(records, selfId, controllerIds);
    this.keptAtMs = nowMs;
  }

  of(controllerId: string): VoteEvidence {
    return this.evidence.get(controllerId) ?? noVoteEvidence;
  }

  /** A message from another controller, before its step. */
  note(message: ViewPaxosMessage): void {
    const from = message.from;
    if (from === this.selfId || !this.controllerIds.includes(from)) return;
    const before = this.evidence.get(from) ?? noVoteEvidence;
    const after = evidenceAfter(before, message);
    if (after === null) {
      // A rejoin fence comes again every retry: forgetting what is already forgotten writes nothing.
      if (this.evidence.delete(from)) this.forgotten.push(from);
      this.changed.delete(from);
    } else if (after !== before) {
      this.evidence.set(from, after);
      this.changed.add(from);
    }
  }

  /** The records a step that writes `persist` writes first: what was forgotten, and what changed when due; none for a step that writes nothing. */
  withStepRecords(persist: readonly ViewDurableRecord[], nowMs: number): readonly ViewDurableRecord[] {
    if (persist.length === 0) return persist;
    const due = this.changed.size > 0 && nowMs - this.keptAtMs >= peerEvidenceKeepIntervalMs;
    if (this.forgotten.length === 0 && !due) return persist;
    return [...this.take(due, nowMs), ...persist];
  }

  /** All evidence as records, for a rewrite of the log (which replaces everything written before). */
  recordsForRewrite(nowMs: number): ViewDurableRecord[] {
    this.forgotten.length = 0;
    this.changed.clear();
    this.keptAtMs = nowMs;
    return [...this.evidence.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([peer, evidence]) => peerEvidenceRecord(peer, evidence));
  }

  private take(withChanges: boolean, nowMs: number): ViewDurableRecord[] {
    const records: ViewDurableRecord[] = this.forgotten.map((peer) => peerEvidenceRecord(peer, noVoteEvidence));
    this.forgotten.length = 0;
    if (withChanges) {
      for (const peer of [...this.changed].sort()) records.push(peerEvidenceRecord(peer, this.of(peer)));
      this.changed.clear();
      this.keptAtMs = nowMs;
    }
    return records;
  }
}

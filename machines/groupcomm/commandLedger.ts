/**
 * The member's ledger of commands it has taken on (ARCHITECTURE §5): what
 * makes "exactly once in effect" hold across redelivery, duplicate publishes
 * and restarts. Pure state; the actor persists the records this returns and
 * acts only once they are durable.
 *
 * A command is `begun` (durably) before the applier runs and `done`, with its
 * result, after. A command found begun but not done when the ledger is
 * restored was interrupted by a crash: its effect is unknown, so it is never
 * applied again; it is finished as failed and that answer is given from then
 * on (at most once, never twice).
 *
 * Bounded: beyond `maxEntries` the oldest finished entries are forgotten. The
 * log is compacted (rewritten as one record per kept entry) once it holds
 * `compactAfterRecords` records.
 */
export type ApplyOutcome = { readonly ok: true; readonly result: Uint8Array } | { readonly ok: false; readonly error: string };

export interface LedgerCommand {
  readonly commandId: string;
  readonly senderId: string;
  readonly kind: string;
}

export type LedgerRecord =
  | ({ readonly type: "begin" } & LedgerCommand)
  | ({ readonly type: "done"; readonly outcome: ApplyOutcome } & LedgerCommand);

export type LedgerEntry =
  | ({ readonly state: "begun" } & LedgerCommand)
  | ({ readonly state: "done"; readonly outcome: ApplyOutcome } & LedgerCommand);

export interface LedgerLimits {
  /** Entries kept at most; the oldest finished ones go first. */
  readonly maxEntries: number;
  /** Records the log may hold before it is rewritten down to the kept entries. */
  readonly compactAfterRecords: number;
}

export const interruptedCommandError =
  "interrupted: the member restarted while applying this command; its effect is unknown and it is not applied again";

export class CommandLedger {
  private readonly entries = new Map<string, LedgerEntry>();
  private logRecords = 0;
  private forgotten = 0;

  constructor(private readonly limits: LedgerLimits) {
    if (!Number.isSafeInteger(limits.maxEntries) || limits.maxEntries < 1) throw new RangeError(`maxEntries must be ≥ 1, got ${limits.maxEntries}`);
    if (!Number.isSafeInteger(limits.compactAfterRecords) || limits.compactAfterRecords <= limits.maxEntries) {
      throw new RangeError(`compactAfterRecords must exceed maxEntries, got ${limits.compactAfterRecords}`);
    }
  }

  /**
   * Replays a log. Returns the records that finish the commands the crash
   * interrupted: the caller must persist them before answering anything.
   */
  restore(records: readonly LedgerRecord[]): LedgerRecord[] {
    for (const record of records) this.applyRecord(record);
    this.logRecords = records.length;
    const finishing: LedgerRecord[] = [];
    for (const entry of this.entries.values()) {
      if (entry.state !== "begun") continue;
      finishing.push(this.finish(entry.commandId, { ok: false, error: interruptedCommandError }));
    }
    return finishing;
  }

  lookup(commandId: string): LedgerEntry | undefined {
    return this.entries.get(commandId);
  }

  get size(): number {
    return this.entries.size;
  }

  get recordsInLog(): number {
    return this.logRecords;
  }

  /** Finished entries dropped by the bound so far (their commands would be applied again if redelivered). */
  get forgottenEntries(): number {
    return this.forgotten;
  }

  begin(command: LedgerCommand): LedgerRecord {
    if (this.entries.has(command.commandId)) throw new RangeError(`command ${command.commandId} is already in the ledger`);
    const record: LedgerRecord = { type: "begin", commandId: command.commandId, senderId: command.senderId, kind: command.kind };
    this.applyRecord(record);
    this.logRecords++;
    return record;
  }

  finish(commandId: string, outcome: ApplyOutcome): LedgerRecord {
    const entry = this.entries.get(commandId);
    if (!entry || entry.state !== "begun") throw new RangeError(`command ${commandId} is not begun`);
    const record: LedgerRecord = { type: "done", commandId, senderId: entry.senderId, kind: entry.kind, outcome };
    this.applyRecord(record);
    this.logRecords++;
    return record;
  }

  get needsCompaction(): boolean {
    return this.logRecords >= this.limits.compactAfterRecords;
  }

  /** The whole ledger as records, oldest first: what the compacted log holds. */
  compactedRecords(): LedgerRecord[] {
    const records: LedgerRecord[] = [];
    for (const entry of this.entries.values()) {
      const { commandId, senderId, kind } = entry;
      records.push(entry.state === "done" ? { type: "done", commandId, senderId, kind, outcome: entry.outcome } : { type: "begin", commandId, senderId, kind });
    }
    return records;
  }

  /** The caller is rewriting the log with compactedRecords(), taken just now. */
  markCompacted(): void {
    this.logRecords = this.entries.size;
  }

  private applyRecord(record: LedgerRecord): void {
    const { commandId, senderId, kind } = record;
    if (record.type === "begin") {
      if (this.entries.has(commandId)) return; // a done entry is never reopened
      this.entries.set(commandId, { state: "begun", commandId, senderId, kind });
      this.evict();
    } else {
      // Keeps its place in insertion order when it was begun; a done record of a forgotten begin is added anew.
      const known = this.entries.has(commandId);
      this.entries.set(commandId, { state: "done", commandId, senderId, kind, outcome: record.outcome });
      if (!known) this.evict();
    }
  }

  private evict(): void {
    if (this.entries.size <= this.limits.maxEntries) return;
    for (const [commandId, entry] of this.entries) {
      if (this.entries.size <= this.limits.maxEntries) return;
      if (entry.state !== "done") continue; // begun entries are in flight, bounded by the consumer's max ack pending
      this.entries.delete(commandId);
      this.forgotten++;
    }
  }
}

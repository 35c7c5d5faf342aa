/**
 * Durable storage as a port: named append-only record logs.
 *
 * `append` buffers; only `sync` makes records durable. A crash loses every
 * record appended after the last completed sync (the simulator enforces this;
 * the file implementation fsyncs). Records are framed with a length and a
 * checksum, so a torn or corrupt tail is detected on open and cut off, never
 * trusted.
 */
export type SyncOutcome = { readonly ok: true } | { readonly ok: false; readonly error: string };

export interface SyncOptions {
  readonly background?: boolean;
}

export interface RecordLog {
  /** Every intact record, oldest first, as found when the log was opened plus appends since. */
  readAll(): readonly Uint8Array[];
  append(record: Uint8Array): void;
  /**
   * Calls `done` once every record appended so far is durable. `options.background` is a hint that
   * the caller's thread should not wait on the disk meanwhile (the file storage then writes in the
   * thread pool even where it writes on the event loop otherwise); durability is the same either way.
   */
  sync(done: (outcome: SyncOutcome) => void, options?: SyncOptions): void;
  /** Atomically replaces the whole log with `records` (compaction); durable when `done` reports ok. */
  rewrite(records: readonly Uint8Array[], done: (outcome: SyncOutcome) => void): void;
  /** How many bytes of a torn or corrupt tail were cut off when the log was opened. */
  readonly discardedTailBytes: number;
}

export interface Storage {
  /** Opens (creating if absent) the log of that name. Names are [A-Za-z0-9_-]{1,64}. */
  open(name: string): RecordLog;
}

export const storageNamePattern = /^[A-Za-z0-9_-]{1,64}$/;

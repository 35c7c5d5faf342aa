/**
 * The Storage port over files: one file per record log, `<name>.log` in a
 * directory, records framed with length and crc32 (actors/recordFraming.ts).
 *
 * Appends stay in memory until `sync`, which writes them at the known end of
 * the intact data through a descriptor opened with O_DSYNC: the write returns
 * only once its data (and the file size) is on disk, as write + fdatasync
 * would, in one system call. By default that call runs in Node's thread pool;
 * with `durableWrites: "event-loop"` it runs on the event loop itself, which
 * then waits for the disk (≈ 0.1 ms for a small record here) but skips two
 * thread hand-offs, and on a machine whose CPUs are taken each hand-off waits
 * for a CPU: the Paxos controller's accept → accepted path went from a median
 * 2.9 to 2.3 ms at load 10 (docs/benchmarks-paxos.md). A sync with the
 * `background` hint goes to the thread pool in either mode (a Paxos leader's
 * own vote: it counts its followers' votes meanwhile). Either way `done`
 * runs later, never inside `sync`. A crash loses exactly the unsynced
 * records, as in the simulator. A torn or corrupt tail found on open is truncated away
 * (and counted) before anything new is written after it. `rewrite` writes a
 * temp file, fsyncs it, renames it over the log and fsyncs the directory, so
 * a crash leaves either the old log or the new one.
 */
import { closeSync, constants as fsConstants, existsSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { open as openAsync, rename, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { concatBytes } from "../actors/concatBytes.ts";
import { frameRecord, frameRecords, parseRecords } from "../actors/recordFraming.ts";
import { fastCrc32 } from "./nativeCrc32.ts";
import { storageNamePattern, type RecordLog, type Storage, type SyncOptions, type SyncOutcome } from "../actors/ports/storage.ts";

export const logFileSuffix = ".log";
export const rewriteTempSuffix = ".log.rewrite";
/** Bytes written per sync at most; a bigger backlog is written over several writes of the same sync. */
export const maxWriteChunkBytes = 4 * 1024 * 1024;
export const maxOpenLogs = 1_024;
/** Unsynced bytes a log buffers at most; appending past this throws (callers must sync). */
export const maxUnsyncedBytes = 256 * 1024 * 1024;
/** Every write through this descriptor is durable when it returns (data and size; not atime/mtime). */
const durableWriteFlags = fsConstants.O_RDWR | fsConstants.O_DSYNC;

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function fsyncDirectory(directory: string): void {
  const descriptor = openSync(directory, "r");
  try {
    fsyncSync(descriptor);
  } finally {
    closeSync(descriptor);
  }
}

/** Where the durable writes of `sync` run (see the file comment). */
export type DurableWriteMode = "thread-pool" | "event-loop";

export interface FileStorageOptions {
  readonly durableWrites?: DurableWriteMode;
}

function writeFullyOnEventLoop(handle: FileHandle, bytes: Uint8Array, position: number): void {
  let written = 0;
  while (written < bytes.length) {
    const length = Math.min(maxWriteChunkBytes, bytes.length - written);
    const bytesWritten = writeSync(handle.fd, bytes, written, length, position + written);
    if (bytesWritten <= 0) throw new Error("write made no progress");
    written += bytesWritten;
  }
}

async function writeFully(handle: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let written = 0;
  while (written < bytes.length) {
    const length = Math.min(maxWriteChunkBytes, bytes.length - written);
    const { bytesWritten } = await handle.write(bytes, written, length, position + written);
    if (bytesWritten <= 0) throw new Error("write made no progress");
    written += bytesWritten;
  }
}

class FileRecordLog implements RecordLog {
  readonly discardedTailBytes: number;
  private records: Uint8Array[];
  /** Framed records appended since the last sync() call. */
  private unwritten: Uint8Array[] = [];
  private unwrittenBytes = 0;
  /** Length of the file's intact prefix: every write goes here, so a failed write is overwritten by the next. */
  private intactFileBytes: number;
  private handle: Promise<FileHandle>;
  /** Operations run one after another, in call order. */
  private queue: Promise<void> = Promise.resolve();
  /** After a failed fsync or rewrite the file's state is unknown: every later sync fails (reopen to recover). */
  private failure: string | undefined;

  constructor(
    private readonly directory: string,
    readonly name: string,
    private readonly durableWrites: DurableWriteMode = "thread-pool",
  ) {
    const path = this.path();
    // A crash in the middle of a rewrite leaves its temp file behind; the log itself is whole.
    rmSync(this.tempPath(), { force: true });
    const bytes = existsSync(path) ? new Uint8Array(readFileSync(path)) : new Uint8Array();
    const parsed = parseRecords(bytes, fastCrc32);
    this.records = parsed.records;
    this.discardedTailBytes = parsed.discardedTailBytes;
    this.intactFileBytes = parsed.intactBytes;
    const descriptor = openSync(path, existsSync(path) ? "r+" : "w+");
    try {
      if (parsed.discardedTailBytes > 0) {
        ftruncateSync(descriptor, parsed.intactBytes);
        fsyncSync(descriptor);
      }
    } finally {
      closeSync(descriptor);
    }
    fsyncDirectory(directory);
    this.handle = openAsync(path, durableWriteFlags);
    this.handle.catch((error: unknown) => {
      this.failure = `cannot open ${path}: ${errorMessage(error)}`;
    });
  }

  readAll(): readonly Uint8Array[] {
    return this.records.slice();
  }

  append(record: Uint8Array): void {
    const framed = frameRecord(record, fastCrc32);
    if (this.unwrittenBytes + framed.length > maxUnsyncedBytes) {
      throw new RangeError(`log ${this.name}: more than ${maxUnsyncedBytes} unsynced bytes`);
    }
    this.records.push(record.slice());
    this.unwritten.push(framed);
    this.unwrittenBytes += framed.length;
  }

  sync(done: (outcome: SyncOutcome) => void, options?: SyncOptions): void {
    // Exactly the records appended before this call belong to this sync.
    const chunks = this.unwritten;
    this.unwritten = [];
    this.unwrittenBytes = 0;
    this.enqueue(done, async () => {
      const handle = await this.handle;
      // Nothing new: every earlier write was durable when it returned, and operations run in order.
      if (chunks.length === 0) return;
      const bytes = concatBytes(chunks);
      try {
        if (this.durableWrites === "event-loop" && options?.background !== true) writeFullyOnEventLoop(handle, bytes, this.intactFileBytes);
        else await writeFully(handle, bytes, this.intactFileBytes);
      } catch (error) {
        // A failed O_DSYNC write is a failed fdatasync: what reached the disk is unknown.
        this.failure = `log ${this.name}: durable write failed, state unknown until reopened: ${errorMessage(error)}`;
        throw error;
      }
      this.intactFileBytes += bytes.length;
    });
  }

  rewrite(records: readonly Uint8Array[], done: (outcome: SyncOutcome) => void): void {
    // One copy of a log that may hold a snapshot of tens of MB, framed as it is copied.
    const bytes = frameRecords(records, fastCrc32);
    this.records = records.map((record) => record.slice());
    this.unwritten = [];
    this.unwrittenBytes = 0;
    this.enqueue(done, async () => {
      try {
        const temp = await openAsync(this.tempPath(), "w");
        try {
          await writeFully(temp, bytes, 0);
          await temp.sync();
        } finally {
          await temp.close();
        }
        await rename(this.tempPath(), this.path());
        fsyncDirectory(this.directory);
        const previous = await this.handle;
        this.handle = openAsync(this.path(), durableWriteFlags);
        await previous.close().catch(() => undefined);
        await this.handle;
        this.intactFileBytes = bytes.length;
      } catch (error) {
        this.failure = `log ${this.name}: rewrite failed, state unknown until reopened: ${errorMessage(error)}`;
        throw error;
      }
    });
  }

  /** Closes the file after every queued operation; unsynced appends are lost, as in a crash. */
  close(): Promise<void> {
    const closing = this.queue.then(async () => {
      const handle = await this.handle.catch(() => undefined);
      await handle?.close().catch(() => undefined);
    });
    this.queue = closing;
    return closing;
  }

  private path(): string {
    return join(this.directory, `${this.name}${logFileSuffix}`);
  }

  private tempPath(): string {
    return join(this.directory, `${this.name}${rewriteTempSuffix}`);
  }

  private enqueue(done: (outcome: SyncOutcome) => void, operation: () => Promise<void>): void {
    const run = async (): Promise<SyncOutcome> => {
      if (this.failure) return { ok: false, error: this.failure };
      try {
        await operation();
        return { ok: true };
      } catch (error) {
        return { ok: false, error: this.failure ?? `log ${this.name}: ${errorMessage(error)}` };
      }
    };
    this.queue = this.queue.then(run).then((outcome) => {
      // A throwing callback is the caller's bug: it must not poison the queue or become an unhandled rejection.
      try {
        done(outcome);
      } catch (error) {
        process.emitWarning(`storage callback for log ${this.name} threw: ${errorMessage(error)}`);
      }
    });
  }
}

export class FileStorage implements Storage {
  private readonly logs = new Map<string, FileRecordLog>();

  private readonly durableWrites: DurableWriteMode;

  /** Creates the directory if absent. */
  constructor(
    readonly directory: string,
    options: FileStorageOptions = {},
  ) {
    mkdirSync(directory, { recursive: true });
    this.durableWrites = options.durableWrites ?? "thread-pool";
  }

  /** Opens (creating if absent) the log of that name; the same object for the same name. */
  open(name: string): RecordLog {
    if (!storageNamePattern.test(name)) throw new RangeError(`invalid log name ${JSON.stringify(name)}: use 1-64 of [A-Za-z0-9_-]`);
    const existing = this.logs.get(name);
    if (existing) return existing;
    if (this.logs.size >= maxOpenLogs) throw new RangeError(`more than ${maxOpenLogs} open logs`);
    const log = new FileRecordLog(this.directory, name, this.durableWrites);
    this.logs.set(name, log);
    return log;
  }

  /** Waits for queued operations and closes every file. Unsynced appends are dropped. */
  async close(): Promise<void> {
    const logs = [...this.logs.values()];
    this.logs.clear();
    await Promise.all(logs.map((log) => log.close()));
  }
}

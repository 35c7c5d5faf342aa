/**
 * Simulated disks: the Storage port over in-memory bytes, framed exactly like
 * the file storage (actors/recordFraming.ts).
 *
 * A node's SimDisk outlives its incarnations; each incarnation mounts a fresh
 * SimStorage face. `append` only writes to the (simulated) page cache; `sync`
 * makes the bytes durable after a virtual fsync latency (global time: the disk
 * keeps working while the node is paused) and then reports back through the
 * node's own clock, so a paused node hears of it after it resumes and a
 * crashed one never does. A crash keeps the durable bytes, optionally
 * plus a torn prefix of the unsynced ones; the next open detects the torn or
 * corrupt tail by its framing and cuts it (`discardedTailBytes`). A disk can
 * also be lost whole while its node is down (`wipe`): the next incarnation
 * starts on an empty disk.
 */
import type { Random } from "../actors/ports/random.ts";
import { storageNamePattern } from "../actors/ports/storage.ts";
import type { RecordLog, Storage, SyncOutcome } from "../actors/ports/storage.ts";
import { frameRecord, parseRecords, recordHeaderBytes } from "../actors/recordFraming.ts";
import type { Clock } from "../actors/ports/clock.ts";
import type { VirtualClock } from "./virtualClock.ts";

/** Virtual fsync time of an SSD-class disk. */
export const defaultSyncLatencyMs = 2;
/** One log may not grow past this; appends beyond it are refused and the next sync reports the error. */
export const maxLogBytes = 256 * 1024 * 1024;
export const maxLogsPerNode = 1024;
const initialFileCapacityBytes = 256;

export interface StorageFaultSettings {
  /** Virtual time from sync()/rewrite() to durability. */
  syncLatencyMs: number;
  /** Chance that a crash leaves a torn prefix of the unsynced bytes behind instead of nothing. */
  tornTailOnCrashProbability: number;
}

export function defaultStorageFaultSettings(): StorageFaultSettings {
  return { syncLatencyMs: defaultSyncLatencyMs, tornTailOnCrashProbability: 0 };
}

export interface CrashDamage {
  /** Unsynced bytes that did not survive. */
  readonly lostBytes: number;
  /** Bytes of a torn fragment that did survive (cut on the next open). */
  readonly tornBytes: number;
}

/** One named log as bytes on the simulated disk. */
class SimFile {
  bytes = new Uint8Array(initialFileCapacityBytes);
  length = 0;
  /** Prefix of `bytes` that survives a crash (unless a rewrite is pending, see `durableBeforeRewrite`). */
  durableLength = 0;
  /** Bumped by every rewrite and crash: a sync marks bytes durable only within the content it was issued for. */
  epoch = 0;
  /** While a rewrite has not completed, a crash leaves this image (the old file) instead. */
  durableBeforeRewrite: Uint8Array | undefined = undefined;

  write(chunk: Uint8Array): void {
    const needed = this.length + chunk.length;
    if (needed > this.bytes.length) {
      let capacity = this.bytes.length * 2;
      while (capacity < needed) capacity *= 2;
      const grown = new Uint8Array(capacity);
      grown.set(this.bytes.subarray(0, this.length));
      this.bytes = grown;
    }
    this.bytes.set(chunk, this.length);
    this.length = needed;
  }

  replaceWith(image: Uint8Array): void {
    this.bytes = new Uint8Array(Math.max(initialFileCapacityBytes, image.length));
    this.bytes.set(image);
    this.length = image.length;
  }

  durableImage(): Uint8Array {
    return this.durableBeforeRewrite ?? this.bytes.slice(0, this.durableLength);
  }
}

export class SimDisk {
  private readonly files = new Map<string, SimFile>();
  private mounted: SimStorage | undefined = undefined;

  constructor(
    /** The disk's own time: I/O completes whether or not the node is running. */
    readonly global: VirtualClock,
    private readonly random: Random,
    private readonly faults: StorageFaultSettings,
  ) {}

  /** A fresh face for a new incarnation, reporting through that incarnation's clock; the previous face (if any) goes dead. */
  mount(clock: Clock): SimStorage {
    this.mounted?.kill();
    this.mounted = new SimStorage(this, clock, this.faults);
    return this.mounted;
  }

  /** Power loss: every file keeps only its durable bytes, maybe plus a torn piece of the rest. */
  crash(): CrashDamage {
    this.mounted?.kill();
    this.mounted = undefined;
    let lostBytes = 0;
    let tornBytes = 0;
    for (const file of this.files.values()) {
      const pendingRewrite = file.durableBeforeRewrite !== undefined;
      const image = file.durableImage();
      const unsyncedBytes = pendingRewrite ? file.length : file.length - file.durableLength;
      let fragmentBytes = 0;
      if (!pendingRewrite && unsyncedBytes > 1 && this.random.next() < this.faults.tornTailOnCrashProbability) {
        fragmentBytes = 1 + this.random.int(unsyncedBytes - 1);
      }
      const fragment = file.bytes.slice(file.durableLength, file.durableLength + fragmentBytes);
      file.replaceWith(image);
      file.write(fragment);
      file.durableLength = file.length;
      file.durableBeforeRewrite = undefined;
      file.epoch++;
      lostBytes += unsyncedBytes - fragmentBytes;
      tornBytes += fragmentBytes;
    }
    return { lostBytes, tornBytes };
  }

  /**
   * The disk is lost (replaced by an empty one): every log is gone, durable or not. Only while the
   * node is down (crashed), as a real disk is swapped; returns the bytes lost.
   */
  wipe(): number {
    if (this.mounted?.isAlive) throw new RangeError("a disk can only be lost while its node is down (crash it first)");
    let lostBytes = 0;
    for (const file of this.files.values()) lostBytes += file.length;
    this.files.clear();
    return lostBytes;
  }

  /**
   * Flips one byte of the last durable record of a log (bit rot, a misdirected
   * write). The running incarnation does not notice; the next open cuts the
   * record off. Returns false when the log has no durable record.
   */
  corruptTail(name: string): boolean {
    const file = this.files.get(name);
    if (!file) return false;
    const image = file.durableBeforeRewrite ?? file.bytes.subarray(0, file.durableLength);
    const parsed = parseRecords(image);
    const last = parsed.records[parsed.records.length - 1];
    if (!last) return false;
    const recordStart = parsed.intactBytes - recordHeaderBytes - last.length;
    // A payload byte, or a checksum byte for an empty record: either way the crc no longer matches.
    const offset = last.length > 0 ? recordStart + recordHeaderBytes + this.random.int(last.length) : recordStart + 4;
    image[offset] = image[offset]! ^ 0xff;
    return true;
  }

  /** The log's durable records (a torn tail cut), as an operator's tool reads them from the node's directory. */
  durableRecords(name: string): readonly Uint8Array[] {
    const file = this.files.get(name);
    return file === undefined ? [] : parseRecords(file.durableImage()).records;
  }

  /** Appends a record durably while the node is down, as an operator's tool does to a stopped node's log (written and synced). */
  appendDurably(name: string, record: Uint8Array): void {
    if (this.mounted?.isAlive) throw new RangeError("a stopped node's log is written while it is down (crash it first)");
    const file = this.fileFor(name);
    if (!file) throw new RangeError(`more than ${maxLogsPerNode} logs on one node`);
    // Like the tool's own open of the file, the torn tail a crash left is cut first.
    file.length = parseRecords(file.bytes.subarray(0, file.length)).intactBytes;
    file.write(frameRecord(record));
    file.durableLength = file.length;
  }

  /** Bytes currently on disk per log (durable or not), for tests and reports. */
  fileLength(name: string): number | undefined {
    return this.files.get(name)?.length;
  }

  durableLength(name: string): number | undefined {
    const file = this.files.get(name);
    if (!file) return undefined;
    return file.durableBeforeRewrite?.length ?? file.durableLength;
  }

  /** @internal used by SimStorage. */
  fileFor(name: string): SimFile | undefined {
    let file = this.files.get(name);
    if (!file) {
      if (this.files.size >= maxLogsPerNode) return undefined;
      file = new SimFile();
      this.files.set(name, file);
    }
    return file;
  }
}

export class SimStorage implements Storage {
  private readonly logs = new Map<string, SimRecordLog>();
  private alive = true;

  constructor(
    readonly disk: SimDisk,
    readonly clock: Clock,
    readonly faults: StorageFaultSettings,
  ) {}

  /** @internal After the fsync latency runs `complete` (unless the incarnation died), then `report` on the node's clock. */
  afterSync(complete: () => void, report: () => void): void {
    this.disk.global.schedule(this.faults.syncLatencyMs, () => {
      if (!this.alive) return;
      complete();
      this.clock.setTimeout(report, 0);
    });
  }

  open(name: string): RecordLog {
    if (!storageNamePattern.test(name)) {
      throw new RangeError(`invalid log name ${JSON.stringify(name)}: use 1-64 of [A-Za-z0-9_-]`);
    }
    const existing = this.logs.get(name);
    if (existing) return existing;
    const file = this.disk.fileFor(name);
    if (!file) throw new RangeError(`more than ${maxLogsPerNode} logs on one node`);
    const log = new SimRecordLog(this, name, file);
    this.logs.set(name, log);
    return log;
  }

  get isAlive(): boolean {
    return this.alive;
  }

  /** @internal the incarnation died: nothing it does reaches the disk any more. */
  kill(): void {
    this.alive = false;
  }
}

class SimRecordLog implements RecordLog {
  readonly discardedTailBytes: number;
  private records: Uint8Array[];
  private refusedAppends = 0;

  constructor(
    private readonly storage: SimStorage,
    readonly name: string,
    private readonly file: SimFile,
  ) {
    const parsed = parseRecords(file.bytes.subarray(0, file.length));
    this.records = parsed.records;
    this.discardedTailBytes = parsed.discardedTailBytes;
    if (parsed.discardedTailBytes > 0) {
      file.length = parsed.intactBytes;
      if (file.durableLength > file.length) file.durableLength = file.length;
    }
  }

  readAll(): readonly Uint8Array[] {
    return this.records;
  }

  append(record: Uint8Array): void {
    if (!this.storage.isAlive) return;
    const framed = frameRecord(record);
    if (this.file.length + framed.length > maxLogBytes) {
      this.refusedAppends++;
      return;
    }
    this.file.write(framed);
    this.records.push(record.slice());
  }

  sync(done: (outcome: SyncOutcome) => void): void {
    if (!this.storage.isAlive) return;
    const refusal = this.takeRefusal();
    const file = this.file;
    const epoch = file.epoch;
    const markLength = file.length;
    this.storage.afterSync(
      () => {
        if (file.epoch === epoch && markLength > file.durableLength) file.durableLength = markLength;
      },
      () => done(refusal ?? { ok: true }),
    );
  }

  rewrite(records: readonly Uint8Array[], done: (outcome: SyncOutcome) => void): void {
    if (!this.storage.isAlive) return;
    this.refusedAppends = 0;
    const framedRecords = records.map((record) => frameRecord(record));
    const imageLength = framedRecords.reduce((total, framed) => total + framed.length, 0);
    if (imageLength > maxLogBytes) {
      this.storage.clock.setTimeout(
        () => done({ ok: false, error: `rewrite of ${imageLength} bytes exceeds ${maxLogBytes} for log ${this.name}` }),
        0,
      );
      return;
    }
    const image = new Uint8Array(imageLength);
    let offset = 0;
    for (const framed of framedRecords) {
      image.set(framed, offset);
      offset += framed.length;
    }
    const file = this.file;
    // Until the atomic replace completes, a crash leaves the old file's durable bytes.
    file.durableBeforeRewrite ??= file.bytes.slice(0, file.durableLength);
    file.epoch++;
    const epoch = file.epoch;
    file.replaceWith(image);
    file.durableLength = 0;
    this.records = records.map((record) => record.slice());
    this.storage.afterSync(
      () => {
        if (file.epoch === epoch) {
          file.durableBeforeRewrite = undefined;
          if (image.length > file.durableLength) file.durableLength = image.length;
        } else {
          // A later rewrite is still pending: this one's image is now what a crash would leave.
          file.durableBeforeRewrite = image;
        }
      },
      () => done({ ok: true }),
    );
  }

  private takeRefusal(): SyncOutcome | undefined {
    if (this.refusedAppends === 0) return undefined;
    const refused = this.refusedAppends;
    this.refusedAppends = 0;
    return { ok: false, error: `${refused} appends refused: log ${this.name} would exceed ${maxLogBytes} bytes` };
  }
}

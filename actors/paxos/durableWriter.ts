/**
 * The persist-before-send rule of machines/paxos/stepResult.ts, carried out
 * over a RecordLog: each step's records are appended (or the log rewritten),
 * synced, and only once the sync has completed are the step's messages
 * handed to `send`, in step order. Messages of a step without records still
 * wait behind any earlier step whose records are not durable yet, so nothing
 * overtakes.
 *
 * Steps that arrive while a sync is in flight are grouped into the next sync
 * (group commit): one fsync per batch, not per step. With `deferFlush`, the
 * first step of a burst does not start a sync at once either: every step
 * submitted before the deferred flush runs (in the controller process, every
 * step of one mailbox drain) shares one write, and no step's messages leave
 * before it. A rewrite supersedes the records of the steps before it in the
 * same batch (it holds the node's whole durable state as of its step).
 *
 * A failed sync is fatal: the log's state on disk is unknown, and sending
 * anything that depended on it could break Paxos. The writer stops and
 * reports; the node must restart and recover from what is on disk.
 */
import type { RecordLog, SyncOutcome } from "../ports/storage.ts";

export interface StepWrite<R, M> {
  readonly persist: readonly R[];
  readonly rewrite: readonly R[] | null;
  readonly messages: readonly M[];
}

export interface DurableWriterOptions<R, M> {
  readonly log: RecordLog;
  readonly encode: (record: R) => Uint8Array;
  readonly send: (messages: readonly M[]) => void;
  /** The records that just became durable (a rewrite's whole image, or appended records), before their messages go. */
  readonly synced?: (records: readonly R[], rewritten: boolean) => void;
  readonly fatal: (error: string) => void;
  /**
   * Messages that attest nothing about this node's durable state (what `sendsAtOnce` says yes to) are
   * sent at submit, ahead of any sync in flight; the rest keep the rule above. Absent: every message
   * waits, as the pure cores' contract says and the recorded scenarios assume.
   */
  readonly sendsAtOnce?: (message: M) => boolean;
  /** Asked at each sync: true lets the log write without holding this thread (SyncOptions.background). */
  readonly syncInBackground?: () => boolean;
  /**
   * Runs `flush` once the current burst of submits is over (the controller process passes
   * `queueMicrotask`: after the actor host's mailbox drain). Absent, a submit with nothing in flight
   * starts its sync at once, as in the simulator.
   */
  readonly deferFlush?: (flush: () => void) => void;
}

/** Steps waiting for the next sync at most; beyond it the node is hopelessly behind its disk, which is fatal. */
export const maxQueuedStepWrites = 65_536;

export class DurableWriter<R, M> {
  private queue: StepWrite<R, M>[] = [];
  private syncing = false;
  private flushDeferred = false;
  private failed = false;
  private stopped = false;
  private syncs = 0;

  constructor(private readonly options: DurableWriterOptions<R, M>) {}

  /** Completed syncs and rewrites, for metrics and tests. */
  get syncCount(): number {
    return this.syncs;
  }

  get isFailed(): boolean {
    return this.failed;
  }

  get queuedSteps(): number {
    return this.queue.length;
  }

  submit(step: StepWrite<R, M>): void {
    if (this.failed || this.stopped) return;
    const write = this.sendUnattested(step);
    const hasRecords = write.rewrite !== null || write.persist.length > 0;
    if (!hasRecords && !this.syncing && this.queue.length === 0 && !this.flushDeferred) {
      if (write.messages.length > 0) this.options.send(write.messages);
      return;
    }
    if (this.queue.length >= maxQueuedStepWrites) {
      this.fail(`more than ${maxQueuedStepWrites} steps waiting for the disk`);
      return;
    }
    this.queue.push(write);
    if (this.syncing || this.flushDeferred) return;
    const defer = this.options.deferFlush;
    if (!defer) {
      this.flush();
      return;
    }
    this.flushDeferred = true;
    defer(() => {
      this.flushDeferred = false;
      if (!this.syncing && !this.stopped && !this.failed && this.queue.length > 0) this.flush();
    });
  }

  /** Sends the step's messages that depend on no record at once; returns the step with the rest. */
  private sendUnattested(step: StepWrite<R, M>): StepWrite<R, M> {
    const sendsAtOnce = this.options.sendsAtOnce;
    if (sendsAtOnce === undefined || step.messages.length === 0) return step;
    let atOnce: M[] | undefined;
    let held: M[] | undefined;
    for (const message of step.messages) {
      if (sendsAtOnce(message)) (atOnce ??= []).push(message);
      else (held ??= []).push(message);
    }
    if (atOnce === undefined) return step;
    this.options.send(atOnce);
    return { ...step, messages: held ?? [] };
  }

  /** Nothing more is written or sent (the node is stopping or crashed). */
  stop(): void {
    this.stopped = true;
    this.queue = [];
  }

  private flush(): void {
    const batch = this.queue;
    this.queue = [];
    let lastRewrite = -1;
    for (let index = 0; index < batch.length; index++) if (batch[index]!.rewrite !== null) lastRewrite = index;
    const appended: R[] = [];
    for (let index = lastRewrite + 1; index < batch.length; index++) appended.push(...batch[index]!.persist);
    if (lastRewrite < 0 && appended.length === 0) {
      // Only messages: every record they depend on is already durable.
      this.sendBatch(batch);
      return;
    }
    this.syncing = true;
    let pending = 0;
    let problem: string | undefined;
    const rewrite = lastRewrite >= 0 ? batch[lastRewrite]!.rewrite! : null;
    const settle = (outcome: SyncOutcome) => {
      if (!outcome.ok) problem ??= outcome.error;
      if (--pending > 0) return;
      this.syncing = false;
      if (this.stopped) return;
      if (problem !== undefined) {
        this.fail(problem);
        return;
      }
      this.syncs++;
      if (rewrite) this.options.synced?.(rewrite, true);
      if (appended.length > 0) this.options.synced?.(appended, false);
      this.sendBatch(batch);
      if (this.queue.length > 0 && !this.syncing) this.flush();
    };
    try {
      // Count both operations before starting either: a callback never runs inside the call, but be exact anyway.
      pending = (rewrite ? 1 : 0) + (appended.length > 0 ? 1 : 0);
      if (rewrite) this.options.log.rewrite(rewrite.map(this.options.encode), settle);
      if (appended.length > 0) {
        for (const record of appended) this.options.log.append(this.options.encode(record));
        this.options.log.sync(settle, this.options.syncInBackground?.() === true ? { background: true } : undefined);
      }
    } catch (error) {
      this.syncing = false;
      this.fail(error instanceof Error ? error.message : String(error));
    }
  }

  private sendBatch(batch: readonly StepWrite<R, M>[]): void {
    for (const write of batch) if (write.messages.length > 0 && !this.stopped) this.options.send(write.messages);
  }

  private fail(error: string): void {
    if (this.failed) return;
    this.failed = true;
    this.queue = [];
    this.options.fatal(error);
  }
}

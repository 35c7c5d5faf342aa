/**
 * The Stream port over real JetStream (@nats-io/jetstream, @nats-io/kv).
 *
 * nats-server 2.9.10 is the floor: one filter subject per consumer, no
 * per-message TTL, no stream metadata or compression. Every callback comes
 * from a settled promise, never from inside the call that asked for it.
 *
 * Retries: a publish that carries a msg id is retried on transient errors
 * (JetStream unavailable during a leader election, timeouts, reconnects),
 * because the server's duplicate window makes the retry safe. Without a msg
 * id only a publish no stream answered is retried: anything else might
 * already be stored. Nothing else is retried here; callers see the failure.
 */
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiError,
  ReplayPolicy,
  RetentionPolicy,
  StorageType,
  jetstream,
  jetstreamManager,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
} from "@nats-io/jetstream";
import { Kvm, KvWatchInclude, type KV } from "@nats-io/kv";
import {
  ClosedConnectionError,
  ConnectionError,
  DrainingConnectionError,
  RequestError,
  TimeoutError,
  nanos,
  type NatsConnection,
  type QueuedIterator,
} from "@nats-io/nats-core";
import type { KvWatchEntry } from "@nats-io/kv";
import { isPublishSubject, isSubscribeSubject, type Subscription } from "../actors/ports/network.ts";
import type {
  ConsumerConfig,
  KvBucketConfig,
  KvEntry,
  KvResult,
  PubAck,
  Stream,
  StreamConfig,
  StreamFailure,
  StreamMessage,
} from "../actors/ports/stream.ts";
import { isValidKvKey, isValidKvKeyPattern, kvRevisionConflict, kvRevisionConflictPrefix } from "../actors/ports/stream.ts";
import { fromNatsHeaders, toNatsHeaders } from "./natsNetwork.ts";

export const defaultApiTimeoutMs = 5_000;
export const defaultMaxPublishAttempts = 6;
export const publishRetryBaseDelayMs = 100;
export const publishRetryMaxDelayMs = 1_000;
/** Messages one pull asks for at most (also bounded by the consumer's maxAckPending). */
export const maxPullBatchMessages = 256;
export const watchRestartBaseDelayMs = 250;
export const watchRestartMaxDelayMs = 5_000;
export const maxActiveConsumers = 10_000;
export const maxActiveWatchers = 10_000;
/**
 * JetStream's max_msg_size counts headers too (KV sends an expected-revision
 * header); the value limit itself is checked before publishing.
 */
export const kvHeaderAllowanceBytes = 512;
const kvBucketPattern = /^[-_a-zA-Z0-9]{1,64}$/;

export { isValidKvKey, isValidKvKeyPattern, kvRevisionConflict, kvRevisionConflictPrefix };

export function kvValueTooLarge(bucket: string, bytes: number, limit: number): StreamFailure {
  return { ok: false, error: `kv value of ${bytes} bytes exceeds bucket ${bucket}'s limit of ${limit} bytes` };
}

export interface NatsStreamOptions {
  /** Timeout of each JetStream API request and publish acknowledgement. */
  readonly apiTimeoutMs?: number;
  readonly maxPublishAttempts?: number;
  /** Problems nobody asked about (a failed watch, a lost consumer, a throwing callback). */
  readonly onError?: (context: string, message: string) => void;
}

/** Not exported from the package's public entry point: recognised by name. */
function isJetStreamNotEnabled(error: unknown): error is Error {
  return error instanceof Error && error.name === "JetStreamNotEnabled";
}

function nobodyAnswered(error: unknown): boolean {
  return isJetStreamNotEnabled(error) && error.cause instanceof RequestError && error.cause.isNoResponders();
}

function errorMessage(error: unknown): string {
  if (nobodyAnswered(error)) {
    return "no JetStream stream answered (no stream for the subject, or JetStream unavailable)";
  }
  return error instanceof Error ? error.message : String(error);
}

function isTransient(error: unknown): boolean {
  return (
    isJetStreamNotEnabled(error) ||
    error instanceof TimeoutError ||
    error instanceof RequestError ||
    error instanceof ConnectionError
  );
}

function isFinal(error: unknown): boolean {
  return error instanceof ClosedConnectionError || error instanceof DrainingConnectionError;
}

function apiCode(error: unknown): number | undefined {
  return error instanceof JetStreamApiError ? error.code : undefined;
}

/** JetStream uses -1 for "no limit"; the port's non-positive limits mean the same. */
function limit(value: number): number {
  return Number.isFinite(value) && value > 0 ? Math.floor(value) : -1;
}

const apiCodes = {
  streamNameInUse: 10058,
  wrongLastSequence: 10071,
  wrongLastSequenceUnknown: 10164,
} as const;

interface ActiveConsumer {
  active: boolean;
  messages: ConsumerMessages | undefined;
}

interface ActiveWatcher {
  active: boolean;
  iterator: QueuedIterator<KvWatchEntry> | undefined;
  timer: NodeJS.Timeout | undefined;
}

export class NatsStream implements Stream {
  private readonly js: JetStreamClient;
  private readonly kvm: Kvm;
  private manager: Promise<JetStreamManager> | undefined;
  private readonly buckets = new Map<string, Promise<KV>>();
  private readonly valueLimits = new Map<string, number>();
  private readonly consumers = new Set<ActiveConsumer>();
  private readonly watchers = new Set<ActiveWatcher>();
  private readonly apiTimeoutMs: number;
  private readonly maxPublishAttempts: number;
  private readonly reportError: (context: string, message: string) => void;
  private closed = false;

  constructor(
    private readonly connection: NatsConnection,
    options: NatsStreamOptions = {},
  ) {
    this.apiTimeoutMs = options.apiTimeoutMs ?? defaultApiTimeoutMs;
    this.maxPublishAttempts = Math.max(1, options.maxPublishAttempts ?? defaultMaxPublishAttempts);
    this.reportError =
      options.onError ?? ((context, message) => process.emitWarning(`${context}: ${message}`, { code: "HARING_STREAM" }));
    this.js = jetstream(connection, { timeout: this.apiTimeoutMs });
    this.kvm = new Kvm(this.js);
  }

  ensureStream(config: StreamConfig, done: (outcome: { readonly ok: true } | StreamFailure) => void): void {
    const settings = {
      name: config.name,
      subjects: [...config.subjects],
      duplicate_window: nanos(Math.max(0, config.duplicateWindowMs)),
      num_replicas: config.replicas,
      max_msgs: limit(config.maxMessages),
      max_bytes: limit(config.maxBytes),
      discard: DiscardPolicy.Old,
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
    };
    this.settle(`ensureStream ${config.name}`, done, async () => {
      const jsm = await this.jsm();
      try {
        await jsm.streams.add(settings);
      } catch (error) {
        if (apiCode(error) !== apiCodes.streamNameInUse) throw error;
        await jsm.streams.update(config.name, settings);
      }
      return { ok: true } as const;
    });
  }

  publish(
    subject: string,
    data: Uint8Array,
    options: { readonly msgId?: string; readonly headers?: Readonly<Record<string, string>> },
    done: (outcome: PubAck | StreamFailure) => void,
  ): void {
    if (!isPublishSubject(subject)) return this.failLater(done, `invalid publish subject ${JSON.stringify(subject)}`);
    let headers;
    try {
      headers = toNatsHeaders(options.headers);
    } catch (error) {
      return this.failLater(done, errorMessage(error));
    }
    const msgId = options.msgId;
    const attempt = (attemptNumber: number) => {
      if (this.closed) return this.failLater(done, `publish to ${subject}: stream client closed`);
      this.js
        .publish(subject, data, {
          timeout: this.apiTimeoutMs,
          ...(msgId !== undefined ? { msgID: msgId } : {}),
          ...(headers ? { headers } : {}),
        })
        .then(
          (ack) => this.call(done, { ok: true, stream: ack.stream, sequence: ack.seq, duplicate: ack.duplicate }, "publish"),
          (error: unknown) => {
            const retrySafe = msgId !== undefined ? isTransient(error) : nobodyAnswered(error);
            if (retrySafe && !isFinal(error) && attemptNumber < this.maxPublishAttempts && !this.closed) {
              const delayMs = Math.min(publishRetryMaxDelayMs, publishRetryBaseDelayMs * 2 ** (attemptNumber - 1));
              setTimeout(() => attempt(attemptNumber + 1), delayMs);
              return;
            }
            this.call(done, { ok: false, error: `publish to ${subject}: ${errorMessage(error)}` }, "publish");
          },
        );
    };
    attempt(1);
  }

  consume(
    stream: string,
    config: ConsumerConfig,
    handler: (message: StreamMessage) => void,
    ready: (outcome: { readonly ok: true; readonly subscription: Subscription } | StreamFailure) => void,
  ): void {
    if (!isSubscribeSubject(config.filterSubject)) {
      return this.failLater(ready, `invalid filter subject ${JSON.stringify(config.filterSubject)}`);
    }
    if (this.consumers.size >= maxActiveConsumers) return this.failLater(ready, `more than ${maxActiveConsumers} consumers`);
    const consumerSettings = {
      durable_name: config.durableName,
      ack_policy: AckPolicy.Explicit,
      ack_wait: nanos(Math.max(1, config.ackWaitMs)),
      max_deliver: limit(config.maxDeliver),
      max_ack_pending: limit(config.maxAckPending),
      filter_subject: config.filterSubject,
      deliver_policy: DeliverPolicy.All,
      replay_policy: ReplayPolicy.Instant,
    };
    const state: ActiveConsumer = { active: true, messages: undefined };
    this.consumers.add(state);
    const context = `consumer ${stream}/${config.durableName}`;
    const subscription: Subscription = {
      unsubscribe: () => {
        if (!state.active) return;
        state.active = false;
        this.consumers.delete(state);
        // Closing the pull stops deliveries; the durable consumer and its unacked messages stay on the server.
        void state.messages?.close().catch(() => undefined);
      },
    };
    this.settle(context, ready, async () => {
      const jsm = await this.jsm();
      // On 2.9 creating a durable that exists updates it to this configuration.
      await jsm.consumers.add(stream, consumerSettings);
      const consumer = await this.js.consumers.get(stream, config.durableName);
      const messages = await consumer.consume({
        max_messages: limit(config.maxAckPending) === -1 ? maxPullBatchMessages : Math.min(maxPullBatchMessages, limit(config.maxAckPending)),
        callback: (message) => {
          if (!state.active) return; // left unacked: the server redelivers it after ack wait
          try {
            handler(this.toStreamMessage(message));
          } catch (error) {
            this.reportError(`${context} handler`, errorMessage(error));
          }
        },
      });
      state.messages = messages;
      if (!state.active) {
        await messages.close();
        this.consumers.delete(state);
        return { ok: true, subscription } as const;
      }
      void this.followConsumerStatus(messages, state, context, stream, consumerSettings);
      return { ok: true, subscription } as const;
    }, () => {
      state.active = false;
      this.consumers.delete(state);
    });
  }

  ensureKv(config: KvBucketConfig, done: (outcome: { readonly ok: true } | StreamFailure) => void): void {
    if (!kvBucketPattern.test(config.bucket)) return this.failLater(done, `invalid kv bucket name ${JSON.stringify(config.bucket)}`);
    this.valueLimits.set(config.bucket, config.maxValueBytes);
    this.settle(`ensureKv ${config.bucket}`, done, async () => {
      const bucket = this.kvm.create(config.bucket, {
        replicas: config.replicas,
        history: Math.max(1, config.history),
        maxValueSize: limit(config.maxValueBytes) === -1 ? -1 : config.maxValueBytes + kvHeaderAllowanceBytes,
      });
      this.buckets.set(config.bucket, bucket);
      try {
        await bucket;
      } catch (error) {
        this.buckets.delete(config.bucket);
        throw error;
      }
      return { ok: true } as const;
    });
  }

  kvGet(bucket: string, key: string, done: (outcome: KvResult<KvEntry | undefined>) => void): void {
    const invalid = this.checkKey(bucket, key);
    if (invalid) return this.failLater(done, invalid);
    this.settle(`kvGet ${bucket}/${key}`, done, async () => {
      const entry = await (await this.bucket(bucket)).get(key);
      const value: KvEntry | undefined =
        entry && entry.operation === "PUT" ? { key: entry.key, value: entry.value, revision: entry.revision } : undefined;
      return { ok: true, value } as const;
    });
  }

  kvPut(bucket: string, key: string, value: Uint8Array, done: (outcome: KvResult<number>) => void): void {
    const invalid = this.checkKey(bucket, key) ?? this.checkValue(bucket, value);
    if (invalid) return this.failLater(done, invalid);
    this.settle(`kvPut ${bucket}/${key}`, done, async () => {
      const revision = await (await this.bucket(bucket)).put(key, value);
      return { ok: true, value: revision } as const;
    });
  }

  kvUpdate(
    bucket: string,
    key: string,
    value: Uint8Array,
    expectedRevision: number,
    done: (outcome: KvResult<number>) => void,
  ): void {
    const invalid =
      this.checkKey(bucket, key) ??
      this.checkValue(bucket, value) ??
      (Number.isSafeInteger(expectedRevision) && expectedRevision >= 0 ? undefined : `invalid expected revision ${expectedRevision}`);
    if (invalid) return this.failLater(done, invalid);
    this.settle(`kvUpdate ${bucket}/${key}`, done, async () => {
      const kv = await this.bucket(bucket);
      try {
        const revision = expectedRevision === 0 ? await kv.create(key, value) : await kv.update(key, value, expectedRevision);
        return { ok: true, value: revision } as const;
      } catch (error) {
        const code = apiCode(error);
        if (code === apiCodes.wrongLastSequence || code === apiCodes.wrongLastSequenceUnknown) {
          return kvRevisionConflict(key, expectedRevision);
        }
        throw error;
      }
    });
  }

  kvKeys(bucket: string, keyPattern: string, maxKeys: number, done: (outcome: KvResult<readonly string[]>) => void): void {
    if (!kvBucketPattern.test(bucket)) return this.failLater(done, `invalid kv bucket name ${JSON.stringify(bucket)}`);
    if (!isValidKvKeyPattern(keyPattern)) return this.failLater(done, `invalid kv key pattern ${JSON.stringify(keyPattern)}`);
    const context = `kvKeys ${bucket}/${keyPattern}`;
    this.settle(context, done, async () => {
      const iterator = await (await this.bucket(bucket)).keys(keyPattern);
      const keys: string[] = [];
      // The listing ends when the server says nothing is pending; a bound keeps a lost answer from hanging the caller.
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        iterator.stop();
      }, this.apiTimeoutMs);
      try {
        for await (const key of iterator) {
          if (keys.length >= maxKeys) {
            iterator.stop();
            return { ok: false, error: `${context}: more than ${maxKeys} keys` } as const;
          }
          keys.push(key);
        }
      } finally {
        clearTimeout(timer);
      }
      if (timedOut) return { ok: false, error: `${context}: no complete answer within ${this.apiTimeoutMs} ms` } as const;
      return { ok: true, value: keys } as const;
    });
  }

  kvWatch(bucket: string, keyPattern: string, handler: (entry: KvEntry) => void): Subscription {
    if (!kvBucketPattern.test(bucket)) throw new RangeError(`invalid kv bucket name ${JSON.stringify(bucket)}`);
    if (!isValidKvKeyPattern(keyPattern)) throw new RangeError(`invalid kv key pattern ${JSON.stringify(keyPattern)}`);
    if (this.watchers.size >= maxActiveWatchers) throw new RangeError(`more than ${maxActiveWatchers} kv watchers`);
    const watcher: ActiveWatcher = { active: true, iterator: undefined, timer: undefined };
    this.watchers.add(watcher);
    const context = `kvWatch ${bucket}/${keyPattern}`;
    let lastRevision = 0;
    let failures = 0;
    const run = async () => {
      watcher.timer = undefined;
      if (!watcher.active) return;
      try {
        const kv = await this.bucket(bucket);
        // After a restart, resume after the last revision seen instead of replaying current values.
        const iterator = await kv.watch({
          key: keyPattern,
          include: KvWatchInclude.LastValue,
          ignoreDeletes: true,
          ...(lastRevision > 0 ? { resumeFromRevision: lastRevision + 1 } : {}),
        });
        if (!watcher.active) return iterator.stop();
        watcher.iterator = iterator;
        failures = 0;
        for await (const entry of iterator) {
          if (!watcher.active) break;
          if (entry.revision <= lastRevision || entry.operation !== "PUT") continue;
          lastRevision = entry.revision;
          try {
            handler({ key: entry.key, value: entry.value, revision: entry.revision });
          } catch (error) {
            this.reportError(`${context} handler`, errorMessage(error));
          }
        }
      } catch (error) {
        failures++;
        this.buckets.delete(bucket);
        this.reportError(context, errorMessage(error));
      }
      watcher.iterator = undefined;
      if (watcher.active && !this.closed && !this.connection.isClosed()) {
        const delayMs = Math.min(watchRestartMaxDelayMs, watchRestartBaseDelayMs * 2 ** Math.min(failures, 10));
        watcher.timer = setTimeout(() => void run(), delayMs);
      }
    };
    void run();
    return {
      unsubscribe: () => {
        if (!watcher.active) return;
        watcher.active = false;
        this.watchers.delete(watcher);
        if (watcher.timer) clearTimeout(watcher.timer);
        watcher.iterator?.stop();
      },
    };
  }

  /** Stops every consumer pull and watcher; durable consumers stay on the server. Does not close the connection. */
  async close(): Promise<void> {
    this.closed = true;
    const consumers = [...this.consumers];
    this.consumers.clear();
    for (const watcher of this.watchers) {
      watcher.active = false;
      if (watcher.timer) clearTimeout(watcher.timer);
      watcher.iterator?.stop();
    }
    this.watchers.clear();
    await Promise.all(
      consumers.map(async (consumer) => {
        consumer.active = false;
        await consumer.messages?.close().catch(() => undefined);
      }),
    );
  }

  private toStreamMessage(message: JsMsg): StreamMessage {
    const guarded = (action: () => void) => () => {
      try {
        action();
      } catch {
        // The connection is gone: the server redelivers after ack wait.
      }
    };
    return {
      subject: message.subject,
      data: message.data,
      headers: fromNatsHeaders(message.headers),
      streamSequence: message.seq,
      deliveryCount: message.info.deliveryCount,
      ack: guarded(() => message.ack()),
      nak: (delayMs?: number) =>
        guarded(() => message.nak(delayMs !== undefined && Number.isFinite(delayMs) && delayMs > 0 ? delayMs : undefined))(),
      term: guarded(() => message.term()),
    };
  }

  private async followConsumerStatus(
    messages: ConsumerMessages,
    state: ActiveConsumer,
    context: string,
    stream: string,
    settings: Parameters<JetStreamManager["consumers"]["add"]>[1],
  ): Promise<void> {
    for await (const status of messages.status()) {
      if (!state.active) break;
      if (status.type === "consumer_not_found" || status.type === "consumer_deleted") {
        // The durable vanished (a server lost its state): recreate it so the pull loop finds it again.
        this.reportError(context, `${status.type}; recreating`);
        try {
          await (await this.jsm()).consumers.add(stream, settings);
        } catch (error) {
          this.reportError(context, `recreate failed: ${errorMessage(error)}`);
        }
      } else if (status.type === "stream_not_found") {
        this.reportError(context, "stream not found");
      }
    }
  }

  private jsm(): Promise<JetStreamManager> {
    if (!this.manager) {
      const pending = jetstreamManager(this.connection, { timeout: this.apiTimeoutMs, checkAPI: false });
      this.manager = pending;
      pending.catch(() => {
        if (this.manager === pending) this.manager = undefined;
      });
    }
    return this.manager;
  }

  private bucket(name: string): Promise<KV> {
    let bucket = this.buckets.get(name);
    if (!bucket) {
      bucket = this.kvm.open(name);
      this.buckets.set(name, bucket);
      const opened = bucket;
      opened.catch(() => {
        if (this.buckets.get(name) === opened) this.buckets.delete(name);
      });
    }
    return bucket;
  }

  private checkKey(bucket: string, key: string): string | undefined {
    if (!kvBucketPattern.test(bucket)) return `invalid kv bucket name ${JSON.stringify(bucket)}`;
    if (!isValidKvKey(key)) return `invalid kv key ${JSON.stringify(key)}`;
    return undefined;
  }

  private checkValue(bucket: string, value: Uint8Array): string | undefined {
    const valueLimit = this.valueLimits.get(bucket);
    if (valueLimit !== undefined && limit(valueLimit) !== -1 && value.length > valueLimit) {
      return kvValueTooLarge(bucket, value.length, valueLimit).error;
    }
    return undefined;
  }

  /** Runs an async operation and hands its outcome (or its error as a failure) to `done`, once. */
  private settle<T>(
    context: string,
    done: (outcome: T | StreamFailure) => void,
    operation: () => Promise<T | StreamFailure>,
    onFailure?: () => void,
  ): void {
    if (this.closed) return this.failLater(done, `${context}: stream client closed`);
    operation().then(
      (outcome) => this.call(done, outcome, context),
      (error: unknown) => {
        onFailure?.();
        this.call(done, { ok: false, error: `${context}: ${errorMessage(error)}` }, context);
      },
    );
  }

  private failLater<T>(done: (outcome: T | StreamFailure) => void, error: string): void {
    queueMicrotask(() => this.call(done, { ok: false, error }, "validation"));
  }

  private call<T>(done: (outcome: T) => void, outcome: T, context: string): void {
    try {
      done(outcome);
    } catch (error) {
      this.reportError(`${context} callback`, errorMessage(error));
    }
  }
}


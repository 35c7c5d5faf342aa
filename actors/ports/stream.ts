/**
 * The JetStream subset haring uses for group communication, as a port
 * (ARCHITECTURE §1, §5). Server 2.9.10 is the floor: one filter subject per
 * consumer, no per-message TTL.
 *
 * Callback-based like Network, for the same reason.
 */
import type { Headers, Subscription } from "./network.ts";

export interface StreamConfig {
  readonly name: string;
  readonly subjects: readonly string[];
  /** Publishes with the same msg id inside this window are stored once. */
  readonly duplicateWindowMs: number;
  readonly replicas: 1 | 3;
  readonly maxMessages: number;
  readonly maxBytes: number;
}

export interface ConsumerConfig {
  readonly durableName: string;
  readonly filterSubject: string;
  readonly ackWaitMs: number;
  /** Deliveries before the server gives up on a message (counting the first). */
  readonly maxDeliver: number;
  /** Unacknowledged messages in flight to this consumer at most. */
  readonly maxAckPending: number;
}

export type StreamFailure = { readonly ok: false; readonly error: string };

export type PubAck = { readonly ok: true; readonly stream: string; readonly sequence: number; readonly duplicate: boolean };

export interface StreamMessage {
  readonly subject: string;
  readonly data: Uint8Array;
  readonly headers: Headers;
  readonly streamSequence: number;
  /** 1 on first delivery, then 2, 3, ... on redeliveries. */
  readonly deliveryCount: number;
  ack(): void;
  /** Ask for redelivery, after `delayMs` when given. */
  nak(delayMs?: number): void;
  /** Never redeliver. */
  term(): void;
}

export type KvEntry = { readonly key: string; readonly value: Uint8Array; readonly revision: number };

export type KvResult<T> = { readonly ok: true; readonly value: T } | StreamFailure;

export interface KvBucketConfig {
  readonly bucket: string;
  readonly replicas: 1 | 3;
  readonly history: number;
  readonly maxValueBytes: number;
}

export interface Stream {
  ensureStream(config: StreamConfig, done: (outcome: { readonly ok: true } | StreamFailure) => void): void;
  publish(
    subject: string,
    data: Uint8Array,
    options: { readonly msgId?: string; readonly headers?: Headers },
    done: (outcome: PubAck | StreamFailure) => void,
  ): void;
  /** Durable push-style consumption with explicit ack; the consumer is created if absent. */
  consume(
    stream: string,
    config: ConsumerConfig,
    handler: (message: StreamMessage) => void,
    ready: (outcome: { readonly ok: true; readonly subscription: Subscription } | StreamFailure) => void,
  ): void;

  ensureKv(config: KvBucketConfig, done: (outcome: { readonly ok: true } | StreamFailure) => void): void;
  kvGet(bucket: string, key: string, done: (outcome: KvResult<KvEntry | undefined>) => void): void;
  /** Unconditional put; resolves to the new revision. */
  kvPut(bucket: string, key: string, value: Uint8Array, done: (outcome: KvResult<number>) => void): void;
  /** Compare-and-set: succeeds only if the key's current revision is `expectedRevision` (0: key must not exist). */
  kvUpdate(
    bucket: string,
    key: string,
    value: Uint8Array,
    expectedRevision: number,
    done: (outcome: KvResult<number>) => void,
  ): void;
  /** Current values of matching keys first, then every later change. */
  kvWatch(bucket: string, keyPattern: string, handler: (entry: KvEntry) => void): Subscription;
  /**
   * The keys matching `keyPattern` that hold a value now, in no particular
   * order; more than `maxKeys` is a failure (the caller asked for a bound).
   * Optional so that other implementations of the port stay valid.
   */
  kvKeys?(bucket: string, keyPattern: string, maxKeys: number, done: (outcome: KvResult<readonly string[]>) => void): void;
}

/** Prefix of the error a compare-and-set reports when the key is not at the expected revision (both backends). */
export const kvRevisionConflictPrefix = "kv revision conflict";
export const maxKvKeyLength = 1_024;

const kvKeyPattern = /^[-/_=a-zA-Z0-9]+(\.[-/_=a-zA-Z0-9]+)*$/;
const kvKeyTokenPattern = /^[-/_=a-zA-Z0-9]+$/;

/** A KV key as JetStream accepts it: dot-separated tokens of [-/_=a-zA-Z0-9]. */
export function isValidKvKey(key: string): boolean {
  return key.length <= maxKvKeyLength && kvKeyPattern.test(key);
}

/** A key pattern: key tokens, `*` for one token, a trailing `>` for the rest. */
export function isValidKvKeyPattern(pattern: string): boolean {
  if (pattern.length === 0 || pattern.length > maxKvKeyLength) return false;
  const tokens = pattern.split(".");
  return tokens.every((token, index) => token === "*" || (token === ">" && index === tokens.length - 1) || kvKeyTokenPattern.test(token));
}

export function kvRevisionConflict(key: string, expectedRevision: number): StreamFailure {
  return { ok: false, error: `${kvRevisionConflictPrefix}: key "${key}" is not at revision ${expectedRevision}` };
}

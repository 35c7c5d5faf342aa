/**
 * A model of JetStream for the simulator: one SimStreamServer (the NATS
 * server's JetStream) shared by every node, and a SimStreamClient per node
 * incarnation implementing the Stream port.
 *
 * What it models, after nats-server 2.9: streams bound to subjects, one
 * sequence per stream, msg-id dedupe inside the duplicate window (a duplicate
 * answers with the first copy's sequence), max messages / max bytes limits
 * with discard-old; durable consumers with one filter subject, explicit ack,
 * ack wait → redelivery with the delivery count raised (redeliveries before
 * new messages), max deliver, max ack pending, nak with delay, term; KV
 * buckets as streams `KV_<bucket>` on `$KV.<bucket>.>`, so a revision is the
 * bucket stream's sequence, history per key, compare-and-set on the key's
 * last revision, and watches that send the current values and then follow
 * the stream from where they are.
 *
 * Time comes only from Clock ports: the server's clock runs ack waits, nak
 * delays and the dedupe window; each client's clock (a node's, which may be
 * paused or crash) carries requests and deliveries, one `latencyMs` each way.
 * No callback ever runs inside the call that caused it.
 *
 * Faults: the whole server can be lost and restored (setAvailable), and a
 * node can be cut off from it (setReachable). Requests then fail after the
 * client's request timeout, like a real client's; deliveries stop, unacked
 * messages come back after ack wait, and consumers and watches resume once
 * the server is back. Stored data survives server loss, as JetStream's file
 * store does.
 */
import type { Clock, TimerId } from "../actors/ports/clock.ts";
import { isPublishSubject, isSubscribeSubject, subjectMatches, type Headers, type Subscription } from "../actors/ports/network.ts";
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

export { isValidKvKey, isValidKvKeyPattern, kvRevisionConflictPrefix };

/** Loopback-class one-way latency between a node and the NATS server. */
export const defaultSimStreamLatencyMs = 0.5;
/** How long a client waits before reporting a request the server never answered (the real client's API timeout). */
export const defaultSimRequestTimeoutMs = 5_000;
export const maxSimStreamLatencyMs = 60_000;
export const maxSimStreams = 1_000;
export const maxSimConsumersPerStream = 10_000;
/** Messages a stream holds at most whatever its config says; the oldest go first. */
export const maxSimMessagesPerStream = 1_000_000;
/** Msg ids remembered per stream at most, whatever the duplicate window. */
export const maxSimDedupeEntriesPerStream = 1_000_000;
export const maxSimKvBuckets = 1_000;
/** JetStream's own limit on KV history. */
export const maxSimKvHistory = 64;
export const maxSimWatchersPerBucket = 100_000;
export const maxSimBindingsPerConsumer = 1_000;
export const maxSimClients = 1_000_000;
/** NATS' default max_payload. */
export const maxSimPayloadBytes = 1024 * 1024;
/** Per-message bytes counted against max_bytes on top of subject, headers and data (2.9's file store record overhead). */
export const simStoredMessageOverheadBytes = 30;
export const maxSimAckWaitMs = 24 * 3_600_000;

export const simServerDownMessage = "JetStream unavailable (NATS server down)";
export const simUnreachableMessage = "NATS server unreachable";
export const noStreamAnsweredMessage = "no JetStream stream answered (no stream for the subject, or JetStream unavailable)";

const streamNamePattern = /^[A-Za-z0-9_-]{1,256}$/;
const durableNamePattern = /^[A-Za-z0-9_-]{1,256}$/;
const kvBucketPattern = /^[-_a-zA-Z0-9]{1,64}$/;
const kvStreamPrefix = "KV_";
const kvSubjectPrefix = "$KV.";
const msgIdHeader = "Nats-Msg-Id";

/** Whether some subject matches both patterns. */
export function subjectPatternsOverlap(first: string, second: string): boolean {
  const a = first.split(".");
  const b = second.split(".");
  for (let index = 0; ; index++) {
    const x = a[index];
    const y = b[index];
    if (x === undefined || y === undefined) return x === y;
    if (x === ">" || y === ">") return true;
    if (x !== "*" && y !== "*" && x !== y) return false;
  }
}

function fail(error: string): StreamFailure {
  return { ok: false, error };
}


/** JetStream's -1 for "no limit"; the port's non-positive limits mean the same. */
function limitOrInfinity(value: number): number {
  return Number.isFinite(value) && value > 0 ? Math.floor(value) : Number.POSITIVE_INFINITY;
}

function utf8Length(text: string): number {
  let bytes = 0;
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code < 0xdc00) {
      bytes += 4; // a surrogate pair is one 4-byte code point
      index++;
    } else bytes += 3;
  }
  return bytes;
}

/** Size of the headers as NATS sends them ("NATS/1.0\r\nName: value\r\n...\r\n"). */
function headerWireBytes(headers: Headers): number {
  let bytes = 0;
  for (const name in headers) bytes += utf8Length(name) + utf8Length(headers[name]!) + 4;
  return bytes === 0 ? 0 : bytes + 12;
}

interface StoredMessage {
  readonly sequence: number;
  readonly subject: string;
  readonly data: Uint8Array;
  readonly headers: Headers;
  readonly bytes: number;
}

interface StreamSettings {
  subjects: readonly string[];
  duplicateWindowMs: number;
  maxMessages: number;
  maxBytes: number;
  /** KV buckets only: values kept per key. */
  maxPerSubject: number;
  /** KV buckets only: largest value accepted. */
  maxValueBytes: number;
}

interface DedupeEntry {
  readonly msgId: string;
  readonly sequence: number;
  readonly atMs: number;
}

class SimStreamState {
  readonly messages = new Map<number, StoredMessage>();
  /** Kept as a number: finding a Map's oldest entry means walking past deleted slots. */
  firstSequence = 1;
  lastSequence = 0;
  bytes = 0;
  /** msg id → its dedupe entry; `dedupeOrder` holds the same entries oldest first, from `dedupeHead` on. */
  readonly dedupe = new Map<string, DedupeEntry>();
  dedupeOrder: DedupeEntry[] = [];
  dedupeHead = 0;
  /** KV buckets only: the sequences held per subject, oldest first. */
  readonly perSubject = new Map<string, number[]>();
  readonly consumers = new Map<string, SimConsumer>();
  /** Consumers by literal filter subject, so a publish finds its consumers without testing every filter. */
  readonly literalFilterConsumers = new Map<string, SimConsumer[]>();
  readonly wildcardFilterConsumers = new Set<SimConsumer>();
  readonly watchers = new Set<SimWatcher>();

  constructor(
    readonly name: string,
    public settings: StreamSettings,
    readonly isKv: boolean,
  ) {}

  get dedupeEntries(): number {
    return this.dedupeOrder.length - this.dedupeHead;
  }
}

interface PendingDelivery {
  deliveryCount: number;
  timer: TimerId | undefined;
}

interface Binding {
  readonly client: SimStreamClient;
  readonly handler: (message: StreamMessage) => void;
  active: boolean;
}

class SimConsumer {
  /** Highest stream sequence looked at for first delivery so far. */
  deliveredUpTo = 0;
  /** Matching sequences not yet delivered for the first time, oldest first, from `backlogHead` on. */
  private backlog: number[] = [];
  private backlogHead = 0;
  /** Delivered and waiting for ack (or for a nak delay). */
  readonly pending = new Map<number, PendingDelivery>();
  /** Deliveries made so far of messages not yet finished, including those waiting for redelivery. */
  readonly deliveryCounts = new Map<number, number>();
  /** Sequences due for redelivery, in the order they became due. */
  readonly redeliveries: number[] = [];
  readonly bindings: Binding[] = [];
  private nextBinding = 0;

  constructor(
    readonly stream: SimStreamState,
    readonly durableName: string,
    public config: ConsumerConfig,
  ) {
    this.rebuildBacklog();
  }

  get isLiteralFilter(): boolean {
    return !this.config.filterSubject.split(".").some((token) => token === "*" || token === ">");
  }

  /** Deliver policy "all": every stored message after what was already delivered that the filter matches. */
  rebuildBacklog(): void {
    this.backlog = [];
    this.backlogHead = 0;
    for (const message of this.stream.messages.values()) {
      if (message.sequence > this.deliveredUpTo && subjectMatches(this.config.filterSubject, message.subject)) {
        this.backlog.push(message.sequence);
      }
    }
  }

  enqueue(sequence: number): void {
    // Sequences the stream has already discarded are dropped here, so an idle consumer's backlog stays bounded.
    const firstSequence = this.stream.firstSequence;
    while (this.backlogHead < this.backlog.length && this.backlog[this.backlogHead]! < firstSequence) this.backlogHead++;
    if (this.backlogHead > 1024 && this.backlogHead * 2 > this.backlog.length) {
      this.backlog = this.backlog.slice(this.backlogHead);
      this.backlogHead = 0;
    }
    this.backlog.push(sequence);
  }

  /**
   * The oldest message not yet delivered that is still stored. Finding none
   * counts as having looked at the whole stream, as the server's scan for a
   * waiting pull does (it matters when the filter changes later).
   */
  takeNew(): StoredMessage | undefined {
    while (this.backlogHead < this.backlog.length) {
      const sequence = this.backlog[this.backlogHead++]!;
      this.deliveredUpTo = sequence;
      const message = this.stream.messages.get(sequence);
      if (message) return message;
    }
    this.deliveredUpTo = Math.max(this.deliveredUpTo, this.stream.lastSequence);
    return undefined;
  }

  /** The next live binding, round robin; undefined when nobody is listening. */
  chooseBinding(server: SimStreamServer): Binding | undefined {
    for (let tried = 0; tried < this.bindings.length; tried++) {
      const binding = this.bindings[(this.nextBinding + tried) % this.bindings.length]!;
      if (binding.active && server.canReach(binding.client)) {
        this.nextBinding = (this.nextBinding + tried + 1) % this.bindings.length;
        return binding;
      }
    }
    return undefined;
  }
}

class SimWatcher {
  /** Next bucket stream sequence to send; 0 until the current values have been sent. */
  cursor = 0;
  active = true;

  constructor(
    readonly client: SimStreamClient,
    readonly subjectPattern: string,
    readonly keyOffset: number,
    readonly handler: (entry: KvEntry) => void,
  ) {}
}

export interface SimStreamServerOptions {
  /** 1 refuses replicas 3 like a single server does; 3 (default) accepts both. */
  readonly clusterSize?: 1 | 3;
}

export interface SimStreamClientOptions {
  /** The node's clock; the server's clock when absent. */
  readonly clock?: Clock;
  readonly latencyMs?: number;
  readonly requestTimeoutMs?: number;
}

export interface SimStreamCounters {
  published: number;
  duplicates: number;
  delivered: number;
  redelivered: number;
  acked: number;
  maxDeliverReached: number;
  discardedByLimits: number;
  failedRequests: number;
}

export interface SimStreamInfo {
  readonly firstSequence: number;
  readonly lastSequence: number;
  readonly messages: number;
  readonly bytes: number;
}

export interface SimConsumerInfo {
  readonly ackPending: number;
  readonly waitingForRedelivery: number;
  readonly nextSequence: number;
  readonly bindings: number;
}

export class SimStreamServer {
  private readonly streams = new Map<string, SimStreamState>();
  private readonly unreachable = new Set<string>();
  private readonly clients = new Set<SimStreamClient>();
  private up = true;
  readonly clusterSize: 1 | 3;
  readonly counters: SimStreamCounters = {
    published: 0,
    duplicates: 0,
    delivered: 0,
    redelivered: 0,
    acked: 0,
    maxDeliverReached: 0,
    discardedByLimits: 0,
    failedRequests: 0,
  };

  constructor(
    readonly clock: Clock,
    options: SimStreamServerOptions = {},
  ) {
    this.clusterSize = options.clusterSize ?? 3;
  }

  /** A Stream port for one node incarnation. close() it when the node crashes. */
  client(nodeId: string, options: SimStreamClientOptions = {}): SimStreamClient {
    if (this.clients.size >= maxSimClients) throw new RangeError(`more than ${maxSimClients} stream clients`);
    const latencyMs = options.latencyMs ?? defaultSimStreamLatencyMs;
    if (!Number.isFinite(latencyMs) || latencyMs < 0 || latencyMs > maxSimStreamLatencyMs) {
      throw new RangeError(`stream latency must be within [0, ${maxSimStreamLatencyMs}] ms, got ${latencyMs}`);
    }
    const requestTimeoutMs = options.requestTimeoutMs ?? defaultSimRequestTimeoutMs;
    if (!Number.isFinite(requestTimeoutMs) || requestTimeoutMs < 2 * latencyMs) {
      throw new RangeError(`request timeout must be at least twice the latency, got ${requestTimeoutMs}`);
    }
    const client = new SimStreamClient(this, nodeId, options.clock ?? this.clock, latencyMs, requestTimeoutMs);
    this.clients.add(client);
    return client;
  }

  get available(): boolean {
    return this.up;
  }

  /** NATS server loss (false) and recovery (true). Stored messages, consumers and KV survive; deliveries resume. */
  setAvailable(available: boolean): void {
    if (this.up === available) return;
    this.up = available;
    if (available) this.resumeAll();
  }

  /** Cuts one node off from the NATS server (false) or reconnects it (true). */
  setReachable(nodeId: string, reachable: boolean): void {
    const changed = reachable ? this.unreachable.delete(nodeId) : !this.unreachable.has(nodeId);
    if (!reachable) this.unreachable.add(nodeId);
    if (changed && reachable) this.resumeAll();
  }

  isReachable(nodeId: string): boolean {
    return !this.unreachable.has(nodeId);
  }

  streamInfo(name: string): SimStreamInfo | undefined {
    const stream = this.streams.get(name);
    if (!stream) return undefined;
    return { firstSequence: stream.firstSequence, lastSequence: stream.lastSequence, messages: stream.messages.size, bytes: stream.bytes };
  }

  consumerInfo(streamName: string, durableName: string): SimConsumerInfo | undefined {
    const consumer = this.streams.get(streamName)?.consumers.get(durableName);
    if (!consumer) return undefined;
    return {
      ackPending: consumer.pending.size,
      waitingForRedelivery: consumer.redeliveries.length,
      nextSequence: consumer.deliveredUpTo + 1,
      bindings: consumer.bindings.filter((binding) => binding.active).length,
    };
  }

  /** @internal Whether requests from this client get through right now. */
  canReach(client: SimStreamClient): boolean {
    return this.up && !client.isClosed && !this.unreachable.has(client.nodeId);
  }

  /** @internal A crashed node's connection is gone: its consumers and watches stop at once. */
  detach(client: SimStreamClient): void {
    this.clients.delete(client);
    for (const stream of this.streams.values()) {
      for (const consumer of stream.consumers.values()) {
        for (let index = consumer.bindings.length - 1; index >= 0; index--) {
          if (consumer.bindings[index]!.client === client) {
            consumer.bindings[index]!.active = false;
            consumer.bindings.splice(index, 1);
          }
        }
      }
      for (const watcher of stream.watchers) {
        if (watcher.client === client) {
          watcher.active = false;
          stream.watchers.delete(watcher);
        }
      }
    }
  }

  // ---- server-side operations; each runs when a request arrives ----

  /** @internal */
  ensureStream(config: StreamConfig): { readonly ok: true } | StreamFailure {
    const context = `ensureStream ${config.name}`;
    if (!streamNamePattern.test(config.name) || config.name.startsWith(kvStreamPrefix)) {
      return fail(`${context}: invalid stream name`);
    }
    if (config.subjects.length === 0 || !config.subjects.every(isSubscribeSubject) || config.subjects.some((subject) => subject.startsWith("$"))) {
      return fail(`${context}: invalid subjects ${JSON.stringify(config.subjects)}`);
    }
    const invalid = this.checkReplicas(config.replicas);
    if (invalid) return fail(`${context}: ${invalid}`);
    for (const other of this.streams.values()) {
      if (other.name === config.name) continue;
      if (config.subjects.some((subject) => other.settings.subjects.some((taken) => subjectPatternsOverlap(subject, taken)))) {
        return fail(`${context}: subjects overlap with an existing stream`);
      }
    }
    const settings: StreamSettings = {
      subjects: [...config.subjects],
      duplicateWindowMs: Math.max(0, config.duplicateWindowMs),
      maxMessages: limitOrInfinity(config.maxMessages),
      maxBytes: limitOrInfinity(config.maxBytes),
      maxPerSubject: Number.POSITIVE_INFINITY,
      maxValueBytes: Number.POSITIVE_INFINITY,
    };
    const existing = this.streams.get(config.name);
    if (existing) {
      // Like 2.9: a different configuration is an update; new limits apply at once.
      existing.settings = settings;
      this.enforceLimits(existing);
      return { ok: true };
    }
    if (this.streams.size >= maxSimStreams) return fail(`${context}: more than ${maxSimStreams} streams`);
    this.streams.set(config.name, new SimStreamState(config.name, settings, false));
    return { ok: true };
  }

  /** @internal */
  ensureKv(config: KvBucketConfig): { readonly ok: true } | StreamFailure {
    const context = `ensureKv ${config.bucket}`;
    if (!kvBucketPattern.test(config.bucket)) return fail(`invalid kv bucket name ${JSON.stringify(config.bucket)}`);
    const invalid = this.checkReplicas(config.replicas);
    if (invalid) return fail(`${context}: ${invalid}`);
    const name = `${kvStreamPrefix}${config.bucket}`;
    // Like the client library: an existing bucket is opened as it is.
    if (this.streams.has(name)) return { ok: true };
    if (this.streams.size >= maxSimStreams) return fail(`${context}: more than ${maxSimStreams} streams`);
    const settings: StreamSettings = {
      subjects: [`${kvSubjectPrefix}${config.bucket}.>`],
      duplicateWindowMs: 120_000,
      maxMessages: Number.POSITIVE_INFINITY,
      maxBytes: Number.POSITIVE_INFINITY,
      maxPerSubject: Math.min(maxSimKvHistory, Math.max(1, Math.floor(config.history))),
      maxValueBytes: limitOrInfinity(config.maxValueBytes),
    };
    if (this.buckets() >= maxSimKvBuckets) return fail(`${context}: more than ${maxSimKvBuckets} buckets`);
    this.streams.set(name, new SimStreamState(name, settings, true));
    return { ok: true };
  }

  /** @internal */
  publish(subject: string, data: Uint8Array, msgId: string | undefined, headers: Headers): PubAck | StreamFailure {
    const context = `publish to ${subject}`;
    let target: SimStreamState | undefined;
    for (const stream of this.streams.values()) {
      if (!stream.isKv && stream.settings.subjects.some((pattern) => subjectMatches(pattern, subject))) {
        target = stream;
        break;
      }
    }
    if (!target) return fail(`${context}: ${noStreamAnsweredMessage}`);
    this.expireDedupe(target);
    if (msgId !== undefined) {
      const earlier = target.dedupe.get(msgId);
      if (earlier) {
        this.counters.duplicates++;
        return { ok: true, stream: target.name, sequence: earlier.sequence, duplicate: true };
      }
    }
    const storedHeaders: Headers = msgId !== undefined ? { ...headers, [msgIdHeader]: msgId } : headers;
    const sequence = this.store(target, subject, data, storedHeaders);
    if (msgId !== undefined && target.settings.duplicateWindowMs > 0) {
      if (target.dedupeEntries >= maxSimDedupeEntriesPerStream) this.forgetOldestMsgId(target);
      const entry: DedupeEntry = { msgId, sequence, atMs: this.clock.now() };
      target.dedupe.set(msgId, entry);
      target.dedupeOrder.push(entry);
    }
    return { ok: true, stream: target.name, sequence, duplicate: false };
  }

  /** @internal Registers a subscriber on a durable consumer, creating or updating it. */
  bind(streamName: string, config: ConsumerConfig, binding: Binding): { readonly ok: true } | StreamFailure {
    const context = `consumer ${streamName}/${config.durableName}`;
    const stream = this.streams.get(streamName);
    if (!stream) return fail(`${context}: stream not found`);
    if (!durableNamePattern.test(config.durableName)) return fail(`${context}: invalid durable name`);
    if (!isSubscribeSubject(config.filterSubject)) return fail(`invalid filter subject ${JSON.stringify(config.filterSubject)}`);
    if (!Number.isFinite(config.ackWaitMs) || config.ackWaitMs <= 0 || config.ackWaitMs > maxSimAckWaitMs) {
      return fail(`${context}: ack wait must be within (0, ${maxSimAckWaitMs}] ms`);
    }
    let consumer = stream.consumers.get(config.durableName);
    if (consumer) {
      const filterChanged = consumer.config.filterSubject !== config.filterSubject;
      if (filterChanged) this.unindex(consumer);
      consumer.config = config;
      if (filterChanged) {
        this.index(consumer);
        consumer.rebuildBacklog();
      }
    } else {
      if (stream.consumers.size >= maxSimConsumersPerStream) return fail(`${context}: more than ${maxSimConsumersPerStream} consumers`);
      consumer = new SimConsumer(stream, config.durableName, config);
      stream.consumers.set(config.durableName, consumer);
      this.index(consumer);
    }
    if (consumer.bindings.length >= maxSimBindingsPerConsumer) return fail(`${context}: more than ${maxSimBindingsPerConsumer} subscribers`);
    consumer.bindings.push(binding);
    this.pump(consumer);
    return { ok: true };
  }

  /** @internal */
  unbind(streamName: string, durableName: string, binding: Binding): void {
    const consumer = this.streams.get(streamName)?.consumers.get(durableName);
    if (!consumer) return;
    const index = consumer.bindings.indexOf(binding);
    if (index >= 0) consumer.bindings.splice(index, 1);
  }

  /** @internal An ack, nak or term reaching the server. */
  settle(streamName: string, durableName: string, sequence: number, action: "ack" | "nak" | "term", delayMs: number): void {
    const consumer = this.streams.get(streamName)?.consumers.get(durableName);
    const pending = consumer?.pending.get(sequence);
    if (!consumer || !pending) return;
    if (pending.timer !== undefined) this.clock.clearTimeout(pending.timer);
    pending.timer = undefined;
    if (action === "nak") {
      // As in 2.9: the message stays pending and comes back when the delay (or at once) runs out.
      if (delayMs > 0) pending.timer = this.clock.setTimeout(() => this.ackWaitExpired(consumer, sequence), delayMs);
      else this.ackWaitExpired(consumer, sequence);
      return;
    }
    if (action === "ack") this.counters.acked++;
    consumer.pending.delete(sequence);
    consumer.deliveryCounts.delete(sequence);
    this.pump(consumer);
  }

  /** @internal */
  kvGet(bucket: string, key: string): KvResult<KvEntry | undefined> {
    const stream = this.streams.get(`${kvStreamPrefix}${bucket}`);
    if (!stream) return fail(`kvGet ${bucket}/${key}: stream not found`);
    const sequences = stream.perSubject.get(`${kvSubjectPrefix}${bucket}.${key}`);
    const last = sequences?.[sequences.length - 1];
    const message = last === undefined ? undefined : stream.messages.get(last);
    return { ok: true, value: message ? { key, value: message.data.slice(), revision: message.sequence } : undefined };
  }

  /** @internal Unconditional put when `expectedRevision` is undefined. */
  kvWrite(
    operation: "kvPut" | "kvUpdate",
    bucket: string,
    key: string,
    value: Uint8Array,
    expectedRevision: number | undefined,
  ): KvResult<number> {
    const stream = this.streams.get(`${kvStreamPrefix}${bucket}`);
    if (!stream) return fail(`${operation} ${bucket}/${key}: stream not found`);
    if (value.length > stream.settings.maxValueBytes) {
      return fail(`kv value of ${value.length} bytes exceeds bucket ${bucket}'s limit of ${stream.settings.maxValueBytes} bytes`);
    }
    const subject = `${kvSubjectPrefix}${bucket}.${key}`;
    if (expectedRevision !== undefined) {
      const sequences = stream.perSubject.get(subject);
      const current = sequences?.[sequences.length - 1] ?? 0;
      if (current !== expectedRevision) return kvRevisionConflict(key, expectedRevision);
    }
    return { ok: true, value: this.store(stream, subject, value, {}) };
  }

  /** @internal */
  kvKeys(bucket: string, keyPattern: string, maxKeys: number): KvResult<readonly string[]> {
    const stream = this.streams.get(`${kvStreamPrefix}${bucket}`);
    if (!stream) return fail(`kvKeys ${bucket}/${keyPattern}: stream not found`);
    const prefix = `${kvSubjectPrefix}${bucket}.`;
    const pattern = `${prefix}${keyPattern}`;
    const keys: string[] = [];
    for (const [subject, sequences] of stream.perSubject) {
      if (sequences.length === 0 || !subjectMatches(pattern, subject)) continue;
      if (keys.length >= maxKeys) return fail(`kvKeys ${bucket}/${keyPattern}: more than ${maxKeys} keys`);
      keys.push(subject.slice(prefix.length));
    }
    return { ok: true, value: keys };
  }

  /** @internal */
  watch(bucket: string, watcher: SimWatcher): StreamFailure | undefined {
    const stream = this.streams.get(`${kvStreamPrefix}${bucket}`);
    if (!stream) return fail(`kvWatch ${bucket}: stream not found`);
    if (stream.watchers.size >= maxSimWatchersPerBucket) return fail(`kvWatch ${bucket}: more than ${maxSimWatchersPerBucket} watchers`);
    stream.watchers.add(watcher);
    this.pumpWatcher(stream, watcher);
    return undefined;
  }

  /** @internal */
  unwatch(bucket: string, watcher: SimWatcher): void {
    this.streams.get(`${kvStreamPrefix}${bucket}`)?.watchers.delete(watcher);
  }

  // ---- internals ----

  private index(consumer: SimConsumer): void {
    const stream = consumer.stream;
    if (!consumer.isLiteralFilter) {
      stream.wildcardFilterConsumers.add(consumer);
      return;
    }
    const list = stream.literalFilterConsumers.get(consumer.config.filterSubject);
    if (list) list.push(consumer);
    else stream.literalFilterConsumers.set(consumer.config.filterSubject, [consumer]);
  }

  private unindex(consumer: SimConsumer): void {
    const stream = consumer.stream;
    stream.wildcardFilterConsumers.delete(consumer);
    const list = stream.literalFilterConsumers.get(consumer.config.filterSubject);
    if (!list) return;
    const index = list.indexOf(consumer);
    if (index >= 0) list.splice(index, 1);
    if (list.length === 0) stream.literalFilterConsumers.delete(consumer.config.filterSubject);
  }

  private checkReplicas(replicas: number): string | undefined {
    if (replicas !== 1 && replicas !== 3) return `replicas must be 1 or 3, got ${replicas}`;
    if (replicas > this.clusterSize) return "replicas > 1 not supported in non-clustered mode";
    return undefined;
  }

  private buckets(): number {
    let count = 0;
    for (const stream of this.streams.values()) if (stream.isKv) count++;
    return count;
  }

  private store(stream: SimStreamState, subject: string, data: Uint8Array, headers: Headers): number {
    const sequence = ++stream.lastSequence;
    const bytes = subject.length + headerWireBytes(headers) + data.length + simStoredMessageOverheadBytes;
    stream.messages.set(sequence, { sequence, subject, data: data.slice(), headers, bytes });
    stream.bytes += bytes;
    this.counters.published++;
    if (stream.isKv) {
      let sequences = stream.perSubject.get(subject);
      if (!sequences) {
        sequences = [];
        stream.perSubject.set(subject, sequences);
      }
      sequences.push(sequence);
      while (sequences.length > stream.settings.maxPerSubject) this.remove(stream, sequences.shift()!);
    }
    this.enforceLimits(stream);
    const interested: SimConsumer[] = [...(stream.literalFilterConsumers.get(subject) ?? [])];
    for (const consumer of stream.wildcardFilterConsumers) {
      if (subjectMatches(consumer.config.filterSubject, subject)) interested.push(consumer);
    }
    for (const consumer of interested) consumer.enqueue(sequence);
    for (const consumer of interested) this.pump(consumer);
    for (const watcher of stream.watchers) this.pumpWatcher(stream, watcher);
    return sequence;
  }

  private enforceLimits(stream: SimStreamState): void {
    const maxMessages = Math.min(stream.settings.maxMessages, maxSimMessagesPerStream);
    while (stream.messages.size > 0 && (stream.messages.size > maxMessages || stream.bytes > stream.settings.maxBytes)) {
      this.remove(stream, stream.firstSequence);
      this.counters.discardedByLimits++;
    }
  }

  private remove(stream: SimStreamState, sequence: number): void {
    const message = stream.messages.get(sequence);
    if (!message) return;
    stream.messages.delete(sequence);
    stream.bytes -= message.bytes;
    if (sequence === stream.firstSequence) {
      while (stream.firstSequence <= stream.lastSequence && !stream.messages.has(stream.firstSequence)) stream.firstSequence++;
    }
    if (stream.isKv) {
      const sequences = stream.perSubject.get(message.subject);
      if (sequences) {
        const index = sequences.indexOf(sequence);
        if (index >= 0) sequences.splice(index, 1);
        if (sequences.length === 0) stream.perSubject.delete(message.subject);
      }
    }
  }

  private expireDedupe(stream: SimStreamState): void {
    const cutoffMs = this.clock.now() - stream.settings.duplicateWindowMs;
    while (stream.dedupeEntries > 0 && stream.dedupeOrder[stream.dedupeHead]!.atMs <= cutoffMs) this.forgetOldestMsgId(stream);
  }

  private forgetOldestMsgId(stream: SimStreamState): void {
    const entry = stream.dedupeOrder[stream.dedupeHead++]!;
    if (stream.dedupe.get(entry.msgId) === entry) stream.dedupe.delete(entry.msgId);
    if (stream.dedupeHead > 1024 && stream.dedupeHead * 2 > stream.dedupeOrder.length) {
      stream.dedupeOrder = stream.dedupeOrder.slice(stream.dedupeHead);
      stream.dedupeHead = 0;
    }
  }

  private ackWaitExpired(consumer: SimConsumer, sequence: number): void {
    const pending = consumer.pending.get(sequence);
    if (!pending) return;
    pending.timer = undefined;
    consumer.pending.delete(sequence);
    if (pending.deliveryCount >= consumer.config.maxDeliver && consumer.config.maxDeliver > 0) {
      consumer.deliveryCounts.delete(sequence);
      this.counters.maxDeliverReached++;
    } else {
      consumer.redeliveries.push(sequence);
    }
    this.pump(consumer);
  }

  /** Delivers what the consumer may: redeliveries first, then new messages, up to max ack pending. */
  private pump(consumer: SimConsumer): void {
    if (!this.up) return;
    const stream = consumer.stream;
    const maxAckPending = limitOrInfinity(consumer.config.maxAckPending);
    while (consumer.pending.size < maxAckPending) {
      const binding = consumer.chooseBinding(this);
      if (!binding) return;
      let message: StoredMessage | undefined;
      while (message === undefined && consumer.redeliveries.length > 0) {
        const sequence = consumer.redeliveries.shift()!;
        message = stream.messages.get(sequence);
        if (!message) consumer.deliveryCounts.delete(sequence); // removed by limits meanwhile
      }
      message ??= consumer.takeNew();
      if (message === undefined) return;
      const deliveryCount = (consumer.deliveryCounts.get(message.sequence) ?? 0) + 1;
      consumer.deliveryCounts.set(message.sequence, deliveryCount);
      const sequence = message.sequence;
      consumer.pending.set(sequence, {
        deliveryCount,
        timer: this.clock.setTimeout(() => this.ackWaitExpired(consumer, sequence), consumer.config.ackWaitMs),
      });
      this.counters.delivered++;
      if (deliveryCount > 1) this.counters.redelivered++;
      binding.client.deliverMessage(binding, stream.name, consumer.durableName, message, deliveryCount);
    }
  }

  private pumpWatcher(stream: SimStreamState, watcher: SimWatcher): void {
    if (!watcher.active || !this.canReach(watcher.client)) return;
    if (watcher.cursor === 0) {
      // Current values first, in revision order, like a last-per-subject consumer.
      const current: StoredMessage[] = [];
      for (const [subject, sequences] of stream.perSubject) {
        if (!subjectMatches(watcher.subjectPattern, subject)) continue;
        const message = stream.messages.get(sequences[sequences.length - 1]!);
        if (message) current.push(message);
      }
      current.sort((a, b) => a.sequence - b.sequence);
      for (const message of current) this.sendToWatcher(watcher, message);
      watcher.cursor = stream.lastSequence + 1;
      return;
    }
    while (watcher.cursor <= stream.lastSequence) {
      const message = stream.messages.get(watcher.cursor++);
      if (message && subjectMatches(watcher.subjectPattern, message.subject)) this.sendToWatcher(watcher, message);
    }
  }

  private sendToWatcher(watcher: SimWatcher, message: StoredMessage): void {
    watcher.client.deliverEntry(watcher, {
      key: message.subject.slice(watcher.keyOffset),
      value: message.data.slice(),
      revision: message.sequence,
    });
  }

  private resumeAll(): void {
    if (!this.up) return;
    for (const stream of this.streams.values()) {
      for (const consumer of stream.consumers.values()) this.pump(consumer);
      for (const watcher of stream.watchers) this.pumpWatcher(stream, watcher);
    }
  }
}

/** One node incarnation's Stream port onto a SimStreamServer. */
export class SimStreamClient implements Stream {
  private closed = false;

  /** @internal Use SimStreamServer.client(). */
  constructor(
    private readonly server: SimStreamServer,
    readonly nodeId: string,
    private readonly clock: Clock,
    private readonly latencyMs: number,
    private readonly requestTimeoutMs: number,
  ) {}

  get isClosed(): boolean {
    return this.closed;
  }

  /** The node is gone (crash): nothing more is delivered to it, and its consumers and watches stop at once. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.server.detach(this);
  }

  ensureStream(config: StreamConfig, done: (outcome: { readonly ok: true } | StreamFailure) => void): void {
    this.request(`ensureStream ${config.name}`, () => this.server.ensureStream(config), done);
  }

  publish(
    subject: string,
    data: Uint8Array,
    options: { readonly msgId?: string; readonly headers?: Headers },
    done: (outcome: PubAck | StreamFailure) => void,
  ): void {
    if (!isPublishSubject(subject)) return this.failSoon(done, `invalid publish subject ${JSON.stringify(subject)}`);
    const headers = options.headers ?? {};
    if (data.length + headerWireBytes(headers) > maxSimPayloadBytes) {
      return this.failSoon(done, `publish to ${subject}: maximum payload exceeded`);
    }
    const copy = data.slice();
    this.request(`publish to ${subject}`, () => this.server.publish(subject, copy, options.msgId, headers), done);
  }

  consume(
    stream: string,
    config: ConsumerConfig,
    handler: (message: StreamMessage) => void,
    ready: (outcome: { readonly ok: true; readonly subscription: Subscription } | StreamFailure) => void,
  ): void {
    if (!isSubscribeSubject(config.filterSubject)) {
      return this.failSoon(ready, `invalid filter subject ${JSON.stringify(config.filterSubject)}`);
    }
    const binding: Binding = { client: this, handler, active: true };
    const snapshot: ConsumerConfig = { ...config };
    const subscription: Subscription = {
      unsubscribe: () => {
        if (!binding.active) return;
        binding.active = false;
        this.toServer(() => this.server.unbind(stream, snapshot.durableName, binding));
      },
    };
    this.request(
      `consumer ${stream}/${config.durableName}`,
      () => {
        if (!binding.active) return { ok: true as const, subscription };
        const outcome = this.server.bind(stream, snapshot, binding);
        if (!outcome.ok) binding.active = false;
        return outcome.ok ? { ok: true as const, subscription } : outcome;
      },
      ready,
    );
  }

  ensureKv(config: KvBucketConfig, done: (outcome: { readonly ok: true } | StreamFailure) => void): void {
    this.request(`ensureKv ${config.bucket}`, () => this.server.ensureKv(config), done);
  }

  kvGet(bucket: string, key: string, done: (outcome: KvResult<KvEntry | undefined>) => void): void {
    const invalid = this.checkKey(bucket, key);
    if (invalid) return this.failSoon(done, invalid);
    this.request(`kvGet ${bucket}/${key}`, () => this.server.kvGet(bucket, key), done);
  }

  kvPut(bucket: string, key: string, value: Uint8Array, done: (outcome: KvResult<number>) => void): void {
    const invalid = this.checkKey(bucket, key);
    if (invalid) return this.failSoon(done, invalid);
    const copy = value.slice();
    this.request(`kvPut ${bucket}/${key}`, () => this.server.kvWrite("kvPut", bucket, key, copy, undefined), done);
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
      (Number.isSafeInteger(expectedRevision) && expectedRevision >= 0 ? undefined : `invalid expected revision ${expectedRevision}`);
    if (invalid) return this.failSoon(done, invalid);
    const copy = value.slice();
    this.request(`kvUpdate ${bucket}/${key}`, () => this.server.kvWrite("kvUpdate", bucket, key, copy, expectedRevision), done);
  }

  kvKeys(bucket: string, keyPattern: string, maxKeys: number, done: (outcome: KvResult<readonly string[]>) => void): void {
    if (!kvBucketPattern.test(bucket)) return this.failSoon(done, `invalid kv bucket name ${JSON.stringify(bucket)}`);
    if (!isValidKvKeyPattern(keyPattern)) return this.failSoon(done, `invalid kv key pattern ${JSON.stringify(keyPattern)}`);
    this.request(`kvKeys ${bucket}/${keyPattern}`, () => this.server.kvKeys(bucket, keyPattern, maxKeys), done);
  }

  /**
   * Like the runtime's watch: the Subscription comes back at once; the watch
   * starts when the request reaches the server, and is retried (every request
   * timeout) while the bucket is missing or the server cannot be reached.
   */
  kvWatch(bucket: string, keyPattern: string, handler: (entry: KvEntry) => void): Subscription {
    if (!kvBucketPattern.test(bucket)) throw new RangeError(`invalid kv bucket name ${JSON.stringify(bucket)}`);
    if (!isValidKvKeyPattern(keyPattern)) throw new RangeError(`invalid kv key pattern ${JSON.stringify(keyPattern)}`);
    const prefix = `${kvSubjectPrefix}${bucket}.`;
    const watcher = new SimWatcher(this, `${prefix}${keyPattern}`, prefix.length, handler);
    let retryTimer: TimerId | undefined;
    const start = () => {
      retryTimer = undefined;
      this.toServer(() => {
        if (!watcher.active) return;
        const problem = this.server.canReach(this) ? this.server.watch(bucket, watcher) : fail(simServerDownMessage);
        if (problem && !this.closed) retryTimer = this.clock.setTimeout(start, this.requestTimeoutMs);
      });
    };
    start();
    return {
      unsubscribe: () => {
        if (!watcher.active) return;
        watcher.active = false;
        if (retryTimer !== undefined) this.clock.clearTimeout(retryTimer);
        this.toServer(() => this.server.unwatch(bucket, watcher));
      },
    };
  }

  /** @internal A consumer delivery leaving the server towards this node. */
  deliverMessage(binding: Binding, stream: string, durableName: string, message: StoredMessage, deliveryCount: number): void {
    this.clock.setTimeout(() => {
      if (this.closed || !binding.active) return; // lost on the way: the server redelivers after ack wait
      let settled = false;
      const settle = (action: "ack" | "nak" | "term", delayMs: number) => {
        if (settled) return;
        settled = true;
        this.toServer(() => this.server.settle(stream, durableName, message.sequence, action, delayMs));
      };
      binding.handler({
        subject: message.subject,
        data: message.data.slice(),
        headers: message.headers,
        streamSequence: message.sequence,
        deliveryCount,
        ack: () => settle("ack", 0),
        nak: (delayMs?: number) => settle("nak", delayMs !== undefined && Number.isFinite(delayMs) && delayMs > 0 ? delayMs : 0),
        term: () => settle("term", 0),
      });
    }, this.latencyMs);
  }

  /** @internal A watch entry leaving the server towards this node. */
  deliverEntry(watcher: SimWatcher, entry: KvEntry): void {
    this.clock.setTimeout(() => {
      if (this.closed || !watcher.active) return;
      watcher.handler(entry);
    }, this.latencyMs);
  }

  private checkKey(bucket: string, key: string): string | undefined {
    if (!kvBucketPattern.test(bucket)) return `invalid kv bucket name ${JSON.stringify(bucket)}`;
    if (!isValidKvKey(key)) return `invalid kv key ${JSON.stringify(key)}`;
    return undefined;
  }

  /** A message to the server; lost when the server is down or out of reach on arrival. */
  private toServer(work: () => void): void {
    if (this.closed) return;
    this.clock.setTimeout(() => {
      if (this.server.canReach(this)) work();
    }, this.latencyMs);
  }

  /** A request/response round trip; an unanswered request fails after the request timeout. */
  private request<T>(context: string, work: () => T | StreamFailure, done: (outcome: T | StreamFailure) => void): void {
    if (this.closed) return;
    this.clock.setTimeout(() => {
      if (this.closed) return;
      if (!this.server.canReach(this)) {
        this.server.counters.failedRequests++;
        const reason = this.server.available ? simUnreachableMessage : simServerDownMessage;
        this.clock.setTimeout(() => {
          if (!this.closed) done(fail(`${context}: ${reason}`));
        }, this.requestTimeoutMs - this.latencyMs);
        return;
      }
      const outcome = work();
      this.clock.setTimeout(() => {
        if (!this.closed) done(outcome);
      }, this.latencyMs);
    }, this.latencyMs);
  }

  private failSoon<T>(done: (outcome: T | StreamFailure) => void, error: string): void {
    this.clock.setTimeout(() => {
      if (!this.closed) done(fail(error));
    }, 0);
  }
}

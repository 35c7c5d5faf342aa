/**
 * The Network port over a real NATS connection (@nats-io/transport-node).
 *
 * The client reconnects forever with a bounded wait between attempts, so a
 * restarted or replaced server is picked up without the actors noticing more
 * than failed requests in between. Callbacks come from socket events, never
 * from inside publish()/request(); `request` calls `done` exactly once.
 */
import { connect } from "@nats-io/transport-node";
import {
  headers as natsHeaders,
  RequestError,
  TimeoutError,
  type Msg,
  type MsgHdrs,
  type NatsConnection,
  type Subscription as NatsSubscription,
} from "@nats-io/nats-core";
import {
  isPublishSubject,
  isSubscribeSubject,
  type Headers,
  type NetMessage,
  type Network,
  type PublishOptions,
  type RequestFailure,
  type RequestOptions,
  type RequestOutcome,
  type SubscribeOptions,
  type Subscription,
} from "../actors/ports/network.ts";

export const reconnectTimeWaitMs = 250;
export const reconnectJitterMs = 100;
export const connectHandshakeTimeoutMs = 5_000;
/** How long connect() waits for the first server before giving up (the client keeps no connection after that). */
export const defaultFirstConnectTimeoutMs = 30_000;
export const pingIntervalMs = 10_000;
export const maxPingsOutstanding = 3;
export const drainTimeoutMs = 5_000;
/** NATS refuses larger timeouts poorly (timers overflow); requests are short-lived anyway. */
export const maxRequestTimeoutMs = 10 * 60_000;
export const maxStatusListeners = 1_000;
export const maxHeaderCount = 64;

export type NatsConnectionEvent =
  | { readonly type: "disconnected"; readonly server: string }
  | { readonly type: "reconnecting" }
  | { readonly type: "reconnected"; readonly server: string }
  | { readonly type: "server-error"; readonly message: string }
  | { readonly type: "stale-connection" }
  | { readonly type: "slow-consumer"; readonly subject: string; readonly pending: number }
  | { readonly type: "dropped"; readonly reason: string }
  | { readonly type: "handler-error"; readonly subject: string; readonly message: string }
  | { readonly type: "closed" };

export interface NatsNetworkOptions {
  /** Server URLs, e.g. `nats://127.0.0.1:4222`; a cluster's members for failover. */
  readonly servers: string | readonly string[];
  /** Shown in the server's connection list (/connz). */
  readonly name?: string;
  readonly firstConnectTimeoutMs?: number;
  readonly reconnectTimeWaitMs?: number;
  /**
   * The server does not hand this connection its own messages back. Only for a connection whose
   * users never need to hear what they publish themselves (a controller's Paxos connection: messages
   * to itself never leave the process).
   */
  readonly noEcho?: boolean;
  /**
   * For a short-lived command: one attempt at the servers, no retry and no reconnect. Without it the
   * client keeps trying in the background after `firstConnectTimeoutMs`, which would keep such a
   * command from exiting while no server is up.
   */
  readonly singleAttempt?: boolean;
}

export interface NatsNetworkCounters {
  readonly droppedPublishes: number;
  readonly handlerErrors: number;
  readonly reconnects: number;
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** NATS headers → the port's flat record; a repeated header keeps its first value. */
export function fromNatsHeaders(source: MsgHdrs | undefined): Headers {
  if (!source) return {};
  const entries: [string, string][] = [];
  for (const key of source.keys()) {
    if (entries.length >= maxHeaderCount) break;
    const values = source.values(key);
    if (values.length > 0) entries.push([key, values[0]!]);
  }
  return Object.fromEntries(entries);
}

/** The port's headers → NATS headers. Throws RangeError for a name or value NATS cannot carry. */
export function toNatsHeaders(source: Headers | undefined): MsgHdrs | undefined {
  if (!source) return undefined;
  const keys = Object.keys(source);
  if (keys.length === 0) return undefined;
  if (keys.length > maxHeaderCount) throw new RangeError(`more than ${maxHeaderCount} headers`);
  const target = natsHeaders();
  for (const key of keys) {
    try {
      target.set(key, source[key]!);
    } catch (error) {
      throw new RangeError(`invalid header ${JSON.stringify(key)}: ${errorMessage(error)}`);
    }
  }
  return target;
}

function toNetMessage(message: Msg): NetMessage {
  const base = { subject: message.subject, data: message.data, headers: fromNatsHeaders(message.headers) };
  return message.reply ? { ...base, reply: message.reply } : base;
}

export class NatsNetwork implements Network {
  private readonly listeners = new Set<(event: NatsConnectionEvent) => void>();
  private connected = true;
  /** Bumped on every disconnect, so a request can tell it lived through one. */
  private disconnectEpoch = 0;
  private dropped = 0;
  private handlerFailures = 0;
  private reconnectCount = 0;

  private constructor(readonly connection: NatsConnection) {
    void this.followStatus();
  }

  /**
   * Connects, waiting for the first server up to `firstConnectTimeoutMs`; after
   * that the client reconnects forever (bounded wait between attempts).
   */
  static async connect(options: NatsNetworkOptions): Promise<NatsNetwork> {
    const servers = typeof options.servers === "string" ? [options.servers] : [...options.servers];
    if (servers.length === 0) throw new RangeError("no NATS server given");
    const timeoutMs = options.firstConnectTimeoutMs ?? defaultFirstConnectTimeoutMs;
    const pending = connect({
      servers,
      ...(options.name ? { name: options.name } : {}),
      ...(options.noEcho ? { noEcho: true } : {}),
      ...(options.singleAttempt
        ? { maxReconnectAttempts: 0, reconnect: false, waitOnFirstConnect: false, timeout: timeoutMs }
        : {
            maxReconnectAttempts: -1,
            reconnectTimeWait: options.reconnectTimeWaitMs ?? reconnectTimeWaitMs,
            reconnectJitter: reconnectJitterMs,
            waitOnFirstConnect: true,
            timeout: connectHandshakeTimeoutMs,
          }),
      pingInterval: pingIntervalMs,
      maxPingOut: maxPingsOutstanding,
    });
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), timeoutMs);
    });
    const winner = await Promise.race([pending, timedOut]).finally(() => clearTimeout(timer));
    if (winner === "timeout") {
      // The client is still trying; close whatever it eventually opens.
      void pending.then((late) => late.close()).catch(() => undefined);
      throw new Error(`no NATS server reachable at ${servers.join(", ")} within ${timeoutMs} ms`);
    }
    return new NatsNetwork(winner);
  }

  get isConnected(): boolean {
    return this.connected && !this.connection.isClosed();
  }

  get counters(): NatsNetworkCounters {
    return { droppedPublishes: this.dropped, handlerErrors: this.handlerFailures, reconnects: this.reconnectCount };
  }

  /** Connection events (disconnect, reconnect, errors, drops); returns a handle to stop listening. */
  onEvent(listener: (event: NatsConnectionEvent) => void): Subscription {
    if (this.listeners.size >= maxStatusListeners) throw new RangeError(`more than ${maxStatusListeners} status listeners`);
    this.listeners.add(listener);
    return { unsubscribe: () => void this.listeners.delete(listener) };
  }

  publish(subject: string, data: Uint8Array, options?: PublishOptions): void {
    if (!isPublishSubject(subject)) throw new RangeError(`invalid publish subject ${JSON.stringify(subject)}`);
    if (options?.reply !== undefined && !isPublishSubject(options.reply)) {
      throw new RangeError(`invalid reply subject ${JSON.stringify(options.reply)}`);
    }
    const headers = toNatsHeaders(options?.headers);
    try {
      this.connection.publish(subject, data, {
        ...(headers ? { headers } : {}),
        ...(options?.reply !== undefined ? { reply: options.reply } : {}),
      });
    } catch (error) {
      // Closed connection or a payload over the server's limit: the port says fire and forget.
      this.dropped++;
      this.emit({ type: "dropped", reason: `publish to ${subject}: ${errorMessage(error)}` });
    }
  }

  subscribe(subject: string, handler: (message: NetMessage) => void, options?: SubscribeOptions): Subscription {
    if (!isSubscribeSubject(subject)) throw new RangeError(`invalid subscribe subject ${JSON.stringify(subject)}`);
    if (options?.queue !== undefined && !/^[^\s.*>]+(\.[^\s.*>]+)*$/.test(options.queue)) {
      throw new RangeError(`invalid queue group ${JSON.stringify(options.queue)}`);
    }
    let subscription: NatsSubscription | undefined;
    try {
      subscription = this.connection.subscribe(subject, {
        ...(options?.queue !== undefined ? { queue: options.queue } : {}),
        callback: (error, message) => {
          if (error) {
            this.emit({ type: "server-error", message: `subscription ${subject}: ${errorMessage(error)}` });
            return;
          }
          try {
            handler(toNetMessage(message));
          } catch (handlerError) {
            this.handlerFailures++;
            this.emit({ type: "handler-error", subject: message.subject, message: errorMessage(handlerError) });
          }
        },
      });
    } catch (error) {
      this.emit({ type: "dropped", reason: `subscribe to ${subject}: ${errorMessage(error)}` });
    }
    let active = true;
    return {
      unsubscribe: () => {
        if (!active) return;
        active = false;
        try {
          subscription?.unsubscribe();
        } catch {
          // already closed with the connection
        }
      },
    };
  }

  request(subject: string, data: Uint8Array, options: RequestOptions, done: (outcome: RequestOutcome) => void): void {
    if (!isPublishSubject(subject)) throw new RangeError(`invalid request subject ${JSON.stringify(subject)}`);
    if (!Number.isFinite(options.timeoutMs) || options.timeoutMs <= 0) {
      throw new RangeError(`request timeout must be a positive number of ms, got ${options.timeoutMs}`);
    }
    const headers = toNatsHeaders(options.headers);
    const timeout = Math.min(Math.ceil(options.timeoutMs), maxRequestTimeoutMs);
    const epochAtStart = this.disconnectEpoch;
    const connectedAtStart = this.isConnected;
    let settled = false;
    const finish = (outcome: RequestOutcome) => {
      if (settled) return;
      settled = true;
      try {
        done(outcome);
      } catch (handlerError) {
        this.handlerFailures++;
        this.emit({ type: "handler-error", subject, message: errorMessage(handlerError) });
      }
    };
    const fail = (failure: RequestFailure) => finish({ ok: false, failure });
    let reply: Promise<Msg>;
    try {
      reply = this.connection.request(subject, data, { timeout, ...(headers ? { headers } : {}) });
    } catch {
      // Synchronous refusal (closed or draining connection): still answer asynchronously.
      queueMicrotask(() => fail("disconnected"));
      return;
    }
    reply.then(
      (message) => finish({ ok: true, message: toNetMessage(message) }),
      (error: unknown) => {
        const livedThroughDisconnect = !connectedAtStart || epochAtStart !== this.disconnectEpoch || !this.isConnected;
        if (error instanceof RequestError && error.isNoResponders()) fail("no-responders");
        else if (error instanceof TimeoutError && !livedThroughDisconnect) fail("timeout");
        else fail("disconnected");
      },
    );
  }

  /** Drains subscriptions and outbound messages, then closes; bounded by `drainTimeoutMs`. */
  async close(): Promise<void> {
    if (this.connection.isClosed()) return;
    let timer: NodeJS.Timeout | undefined;
    const drained = this.connection.drain().then(
      () => true,
      () => false,
    );
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), drainTimeoutMs);
    });
    const clean = await Promise.race([drained, timedOut]);
    clearTimeout(timer);
    if (!clean && !this.connection.isClosed()) await this.connection.close();
  }

  private emit(event: NatsConnectionEvent): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(event);
      } catch {
        // a broken listener must not stop the others
      }
    }
  }

  private async followStatus(): Promise<void> {
    for await (const status of this.connection.status()) {
      switch (status.type) {
        case "disconnect":
          this.connected = false;
          this.disconnectEpoch++;
          this.emit({ type: "disconnected", server: status.server });
          break;
        case "reconnecting":
          this.emit({ type: "reconnecting" });
          break;
        case "reconnect":
          this.connected = true;
          this.reconnectCount++;
          this.emit({ type: "reconnected", server: status.server });
          break;
        case "error":
          this.emit({ type: "server-error", message: errorMessage(status.error) });
          break;
        case "staleConnection":
          this.emit({ type: "stale-connection" });
          break;
        case "slowConsumer":
          this.emit({ type: "slow-consumer", subject: status.sub.getSubject(), pending: status.pending });
          break;
        case "close":
          this.connected = false;
          break;
        default:
          break;
      }
    }
    this.connected = false;
    this.emit({ type: "closed" });
  }
}

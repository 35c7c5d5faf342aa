/**
 * Runs one xstate v5 machine as an actor bound to a node's ports.
 *
 * - Time: the node's Clock is xstate's `clock`, so `after` delays run on the
 *   simulator's virtual clock (or the real one in runtime/).
 * - Mailbox: events from ports (network, timers of other code) are queued,
 *   bounded by `maxMailboxDepth`, and handed to the machine in order on a clock
 *   tick (`clock.setTimeout(drain, 0)`), never re-entrantly inside the port
 *   callback that produced them. Overflow is dropped and counted.
 * - Network: `listen` subscribes a subject, decodes with a MessageRegistry,
 *   counts and logs rejections, and queues valid messages as events.
 * - Failure: an error thrown inside the machine is logged and counted and the
 *   actor is restarted from its initial state (machines recover from Storage
 *   there, etcd-raft style), at most `maxActorRestartsPerWindow` times per
 *   `actorRestartWindowMs`; after that it stays stopped with status "failed".
 *
 * Notes for machine authors:
 * - `restore(snapshot)` loses pending `after` timers (statelyai/xstate#5331), so
 *   the host sends `{ type: "haring.resume" }` right after restoring: handle it
 *   in every state with a timer by re-entering that state.
 * - Give every delayed `sendTo`/`raise` an explicit `id`: without one xstate
 *   draws it from Math.random, and `cancel` needs it anyway. (`after` delays
 *   get stable ids from the state node.)
 * - Do not log xstate session ids or `self.id`: they come from a process-wide
 *   counter and differ between runs in one process.
 * - Effects go through named actions supplied with `machine.provide(...)` by
 *   the actor layer; errors thrown there are handled like any machine error.
 * - A `shortcut` may take the hottest events past xstate (see ActorHostOptions).
 */
import {
  createActor,
  type AnyActor,
  type AnyStateMachine,
  type ContextFrom,
  type EventFromLogic,
  type InputFrom,
  type Snapshot,
  type SnapshotFrom,
  type StateValueFrom,
} from "xstate";
import type { NodePorts } from "./ports/nodePorts.ts";
import type { NetMessage, Subscription } from "./ports/network.ts";
import type { Infer } from "./codec/schema.ts";
import type { MessageOf, MessageRegistry, MessageType, SchemaMap } from "./codec/messageCodec.ts";
import { createRejectionCounter, decodeCounted, type RejectionCounter } from "./codec/rejectionCounter.ts";

export interface ActorHostLimits {
  /** Events waiting for the machine at most; more are dropped and counted. */
  readonly maxMailboxDepth: number;
  /** Restarts after errors allowed within one window before the host gives up. */
  readonly maxActorRestartsPerWindow: number;
  readonly actorRestartWindowMs: number;
}

export const defaultActorHostLimits: ActorHostLimits = {
  maxMailboxDepth: 1_024,
  maxActorRestartsPerWindow: 5,
  actorRestartWindowMs: 60_000,
};

export const resumeEventType = "haring.resume";
export interface ResumeEvent {
  readonly type: typeof resumeEventType;
}

export const mailboxDroppedMetric = "haring_mailbox_dropped_total";
export const actorErrorsMetric = "haring_actor_errors_total";
export const actorRestartsMetric = "haring_actor_restarts_total";
export const actorGaveUpMetric = "haring_actor_gave_up_total";

/**
 * idle: never started. restarting: crashed, fresh actor due on the next tick
 * (events are still queued). done: reached a final state. failed: crashed more
 * often than the limits allow and stays stopped.
 */
export type ActorHostStatus = "idle" | "running" | "restarting" | "stopped" | "done" | "failed";

/** The event `listen` queues for a valid message unless `toEvent` says otherwise: include it in the machine's event union. */
export type InboundEvent<M extends SchemaMap, T extends MessageType<M> = MessageType<M>> = T extends MessageType<M>
  ? {
      readonly type: T;
      readonly from: string;
      readonly cid: string;
      readonly body: Infer<M[T]>;
      readonly subject: string;
      /** Where to answer, when the message was a request. */
      readonly reply?: string;
    }
  : never;

export interface ListenOptions<M extends SchemaMap, T extends MessageType<M>, E> {
  /** Types expected on this subject; any other registered type is rejected as `unexpected-type`. */
  readonly allowedTypes?: readonly T[];
  readonly queue?: string;
  /** Maps a valid message to the machine's event; defaults to an InboundEvent. */
  readonly toEvent?: (message: MessageOf<M, T>, netMessage: NetMessage) => E;
}

export interface ActorHost<TLogic extends AnyStateMachine> {
  readonly name: string;
  readonly status: ActorHostStatus;
  readonly mailboxDepth: number;
  /** Error restarts inside the current window. */
  readonly recentRestarts: number;
  /** Starts from the initial state; only from "idle". */
  start(): void;
  /** A fresh actor from the initial state with the same input; the mailbox is kept. Clears the error-restart history. */
  restart(): void;
  /** Starts from a persisted snapshot, then sends `haring.resume` before any queued event. */
  restore(persisted: Snapshot<unknown>): void;
  /** Stops the actor and drops the mailbox; subscriptions stay (their messages are dropped) until dispose(). */
  stop(): void;
  /** stop() and close every subscription made with listen(). */
  dispose(): void;
  /** Queues an event; false when it was dropped (mailbox full, or not running). */
  send(event: EventFromLogic<TLogic>): boolean;
  /**
   * Hands an event to the machine at once, past the mailbox, as xstate hands
   * over its own delayed events: for a timer the machine asked its actor to
   * keep (a named action standing in for a delayed raise). Call it only from
   * that timer's callback. False when the actor is not running.
   */
  deliverNow(event: EventFromLogic<TLogic>): boolean;
  listen<M extends SchemaMap, T extends MessageType<M> = MessageType<M>>(
    subject: string,
    registry: MessageRegistry<M>,
    options?: ListenOptions<M, T, EventFromLogic<TLogic>>,
  ): Subscription;
  getSnapshot(): SnapshotFrom<TLogic> | undefined;
  getPersistedSnapshot(): Snapshot<unknown> | undefined;
  /** Called on every snapshot of the current actor, across restarts. A throwing listener is logged, not fatal. */
  onSnapshot(listener: (snapshot: SnapshotFrom<TLogic>) => void): Subscription;
}

export type ActorHostPorts = Pick<NodePorts, "clock" | "network" | "log" | "metrics">;

export interface ActorHostOptions<TLogic extends AnyStateMachine> {
  /** This instance, in logs (e.g. `hb-sender/h12`). */
  readonly name: string;
  /** Metric label; bounded cardinality, so a machine kind, not an instance. Defaults to the machine id. */
  readonly kind?: string;
  readonly input?: InputFrom<TLogic>;
  readonly limits?: Partial<ActorHostLimits>;
  /** The node's shared counter (so each rejection kind is logged once per node); one per host otherwise. */
  readonly rejections?: RejectionCounter;
  /** Called with each new xstate actor (first start and every restart) before it starts; see effectBinding.ts. */
  readonly onActorCreated?: (actor: AnyActor) => void;
  /** Called whenever the actor ends (stop, error, completion): timers kept for the machine (see deliverNow) go with xstate's own. */
  readonly onActorTimersCancelled?: () => void;
  /**
   * Handles an event without xstate where the machine would only run actions
   * on it (no state change, no timer, no raised event): carries out the same
   * effects in the same order and returns the context the machine's assigns
   * would produce, or `takeMachine` to let the machine handle the event. Each
   * xstate event costs several microseconds; a heartbeat costs three of them,
   * so the hottest events of the heartbeat pair come this way. The shortcut
   * must agree with the machine (its tests run both on the same events). The
   * current snapshot gets the new context in place (no new snapshot object),
   * and snapshot listeners are told as after a machine step.
   */
  readonly shortcut?: (context: ContextFrom<TLogic>, state: StateValueFrom<TLogic>, event: EventFromLogic<TLogic>) => ContextFrom<TLogic> | typeof takeMachine;
}

/** A shortcut's answer for an event it leaves to the machine. */
export const takeMachine: unique symbol = Symbol("take the machine");

const maxLoggedTextChars = 300;

function boundedText(text: string): string {
  return text.length > maxLoggedTextChars ? `${text.slice(0, maxLoggedTextChars)}…` : text;
}

function errorText(error: unknown): string {
  if (error instanceof Error) return boundedText(`${error.name}: ${error.message}`);
  try {
    return boundedText(String(error));
  } catch {
    return "unprintable error";
  }
}

function logArgumentText(argument: unknown): string {
  if (typeof argument === "string") return argument;
  try {
    return JSON.stringify(argument) ?? String(argument);
  } catch {
    return String(argument);
  }
}

function checkLimits(limits: ActorHostLimits): void {
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${name} must be a positive safe integer, got ${String(value)}`);
  }
}

export function createActorHost<TLogic extends AnyStateMachine>(
  logic: TLogic,
  ports: ActorHostPorts,
  options: ActorHostOptions<TLogic>,
): ActorHost<TLogic> {
  type Event = EventFromLogic<TLogic>;
  const limits: ActorHostLimits = { ...defaultActorHostLimits, ...options.limits };
  checkLimits(limits);
  const { clock, log, metrics } = ports;
  const name = options.name;
  const kind = options.kind ?? (logic.id || "actor");
  const labels = { actor: kind };
  const rejections = options.rejections ?? createRejectionCounter(ports);
  const shortcut = options.shortcut;

  let actor: AnyActor | undefined;
  let status: ActorHostStatus = "idle";
  // The mailbox: queue[head..] are pending; the consumed prefix is cut off in batches.
  let queue: Array<Event | undefined> = [];
  let head = 0;
  let drainScheduled = false;
  let drainTimer: unknown;
  let restartScheduled = false;
  let restartTimer: unknown;
  let overflowLogged = false;
  let restartTimesMs: number[] = [];
  let disposed = false;
  const subscriptions = new Set<Subscription>();
  const snapshotListeners = new Set<(snapshot: SnapshotFrom<TLogic>) => void>();

  const depth = (): number => queue.length - head;

  function dropQueued(reason: string): void {
    const dropped = depth();
    queue = [];
    head = 0;
    if (dropped > 0) metrics.increment(mailboxDroppedMetric, { ...labels, reason }, dropped);
  }

  function scheduleDrain(): void {
    if (drainScheduled || status !== "running" || depth() === 0) return;
    drainScheduled = true;
    drainTimer = clock.setTimeout(drain, 0);
  }

  function drain(): void {
    drainScheduled = false;
    // Only what was queued before this tick: events queued while draining wait for the next one.
    let budget = depth();
    while (budget-- > 0 && status === "running" && actor !== undefined) {
      const event = queue[head] as Event;
      queue[head++] = undefined;
      if (shortcut === undefined || !tookShortcut(actor, event)) actor.send(event);
    }
    if (head === queue.length) {
      queue = [];
      head = 0;
      overflowLogged = false;
    } else if (head >= 1_024) {
      queue = queue.slice(head);
      head = 0;
    }
    scheduleDrain();
  }

  /** True when the shortcut handled the event (or failed on it, which stops the actor like a machine error). */
  function tookShortcut(current: AnyActor, event: Event): boolean {
    const snapshot = current.getSnapshot() as { status: string; value: StateValueFrom<TLogic>; context: ContextFrom<TLogic> };
    if (snapshot.status !== "active") return false;
    let next: ContextFrom<TLogic> | typeof takeMachine;
    try {
      next = shortcut!(snapshot.context, snapshot.value, event);
    } catch (error) {
      // As xstate does with an action that throws: the actor is done for, its host restarts it.
      onActorError(current, error);
      current.stop();
      return true;
    }
    if (next === takeMachine) return false;
    snapshot.context = next;
    if (actor === current) notifySnapshot(snapshot as SnapshotFrom<TLogic>);
    return true;
  }

  function cancelTimers(): void {
    options.onActorTimersCancelled?.();
    if (drainScheduled) clock.clearTimeout(drainTimer);
    if (restartScheduled) clock.clearTimeout(restartTimer);
    drainScheduled = false;
    restartScheduled = false;
  }

  function halt(): void {
    cancelTimers();
    const current = actor;
    // Cleared first, so the observer ignores the completion this stop causes.
    actor = undefined;
    current?.stop();
  }

  function notifySnapshot(snapshot: SnapshotFrom<TLogic>): void {
    for (const listener of snapshotListeners) {
      try {
        listener(snapshot);
      } catch (error) {
        log.write("error", "actor.snapshot-listener-failed", { actor: name, kind, error: errorText(error) });
      }
    }
  }

  function spawn(persisted?: Snapshot<unknown>): void {
    let created: AnyActor;
    try {
      created = createActor(logic as AnyStateMachine, {
        clock,
        input: options.input,
        snapshot: persisted,
        logger: (...args: unknown[]) =>
          log.write("info", "actor.log", { actor: name, kind, message: boundedText(args.map(logArgumentText).join(" ")) }),
      });
    } catch (error) {
      status = "running";
      onActorError(undefined, error);
      return;
    }
    actor = created;
    status = "running";
    try {
      options.onActorCreated?.(created);
    } catch (error) {
      onActorError(created, error);
      return;
    }
    // Every observer needs an error callback, or xstate rethrows on a global setTimeout.
    created.subscribe({
      next: (snapshot: SnapshotFrom<TLogic>) => {
        if (actor === created) notifySnapshot(snapshot);
      },
      error: (error: unknown) => onActorError(created, error),
      complete: () => {
        if (actor !== created) return;
        actor = undefined;
        status = "done";
        cancelTimers();
        dropQueued("done");
        log.write("info", "actor.done", { actor: name, kind });
      },
    });
    created.start();
  }

  function onActorError(failed: AnyActor | undefined, error: unknown): void {
    if (failed !== actor) return;
    actor = undefined;
    metrics.increment(actorErrorsMetric, labels);
    const nowMs = clock.now();
    restartTimesMs = restartTimesMs.filter((atMs) => nowMs - atMs < limits.actorRestartWindowMs);
    if (restartTimesMs.length >= limits.maxActorRestartsPerWindow) {
      status = "failed";
      cancelTimers();
      dropQueued("failed");
      metrics.increment(actorGaveUpMetric, labels);
      log.write("error", "actor.gave-up", {
        actor: name,
        kind,
        error: errorText(error),
        restarts: restartTimesMs.length,
        windowMs: limits.actorRestartWindowMs,
        note: "stays stopped until restarted explicitly",
      });
      return;
    }
    restartTimesMs.push(nowMs);
    status = "restarting";
    cancelTimers();
    log.write("error", "actor.error", { actor: name, kind, error: errorText(error), restartsInWindow: restartTimesMs.length });
    restartScheduled = true;
    restartTimer = clock.setTimeout(() => {
      restartScheduled = false;
      if (status !== "restarting") return;
      metrics.increment(actorRestartsMetric, labels);
      log.write("info", "actor.restarted", { actor: name, kind });
      spawn();
      scheduleDrain();
    }, 0);
  }

  function assertNotDisposed(): void {
    if (disposed) throw new Error(`actor host ${name} is disposed`);
  }

  function send(event: Event): boolean {
    if (status !== "running" && status !== "restarting") {
      metrics.increment(mailboxDroppedMetric, { ...labels, reason: "not-running" });
      return false;
    }
    if (depth() >= limits.maxMailboxDepth) {
      metrics.increment(mailboxDroppedMetric, { ...labels, reason: "overflow" });
      if (!overflowLogged) {
        overflowLogged = true;
        log.write("warn", "mailbox.overflow", {
          actor: name,
          kind,
          maxMailboxDepth: limits.maxMailboxDepth,
          note: "dropping events until the mailbox drains",
        });
      }
      return false;
    }
    queue.push(event);
    scheduleDrain();
    return true;
  }

  return {
    name,
    get status() {
      return status;
    },
    get mailboxDepth() {
      return depth();
    },
    get recentRestarts() {
      const nowMs = clock.now();
      return restartTimesMs.filter((atMs) => nowMs - atMs < limits.actorRestartWindowMs).length;
    },

    start() {
      assertNotDisposed();
      if (status !== "idle") throw new Error(`actor host ${name} already started (status ${status}); use restart()`);
      spawn();
      scheduleDrain();
    },

    restart() {
      assertNotDisposed();
      halt();
      restartTimesMs = [];
      spawn();
      scheduleDrain();
    },

    restore(persisted) {
      assertNotDisposed();
      halt();
      restartTimesMs = [];
      spawn(persisted);
      const restored = actor;
      // After the resume event, so the machine re-arms its timers before handling anything queued.
      restored?.send({ type: resumeEventType });
      scheduleDrain();
    },

    stop() {
      halt();
      if (status !== "idle") status = "stopped";
      dropQueued("stopped");
    },

    dispose() {
      this.stop();
      disposed = true;
      for (const subscription of subscriptions) subscription.unsubscribe();
      subscriptions.clear();
      snapshotListeners.clear();
    },

    send,

    deliverNow(event) {
      const current = actor;
      if (status !== "running" || current === undefined) return false;
      if (shortcut === undefined || !tookShortcut(current, event)) current.send(event);
      return true;
    },

    listen<M extends SchemaMap, T extends MessageType<M> = MessageType<M>>(
      subject: string,
      registry: MessageRegistry<M>,
      listenOptions: ListenOptions<M, T, Event> = {},
    ): Subscription {
      assertNotDisposed();
      const { allowedTypes, queue: queueGroup, toEvent } = listenOptions;
      const inner = ports.network.subscribe(
        subject,
        (netMessage) => {
          const message = decodeCounted(registry, rejections, netMessage.subject, netMessage.data, allowedTypes);
          if (message === undefined) return;
          let event: Event;
          try {
            event = toEvent ? toEvent(message, netMessage) : (inboundEvent(message, netMessage) as unknown as Event);
          } catch (error) {
            metrics.increment(actorErrorsMetric, { ...labels, where: "toEvent" });
            log.write("error", "actor.to-event-failed", { actor: name, kind, type: message.t, error: errorText(error) });
            return;
          }
          send(event);
        },
        queueGroup === undefined ? undefined : { queue: queueGroup },
      );
      const subscription: Subscription = {
        unsubscribe() {
          if (subscriptions.delete(subscription)) inner.unsubscribe();
        },
      };
      subscriptions.add(subscription);
      return subscription;
    },

    getSnapshot() {
      return actor?.getSnapshot() as SnapshotFrom<TLogic> | undefined;
    },

    getPersistedSnapshot() {
      return actor?.getPersistedSnapshot() as Snapshot<unknown> | undefined;
    },

    onSnapshot(listener) {
      snapshotListeners.add(listener);
      return { unsubscribe: () => snapshotListeners.delete(listener) };
    },
  };
}

function inboundEvent<M extends SchemaMap, T extends MessageType<M>>(message: MessageOf<M, T>, netMessage: NetMessage): InboundEvent<M, T> {
  const event = { type: message.t, from: message.from, cid: message.cid, body: message.body, subject: netMessage.subject };
  return (netMessage.reply === undefined ? event : { ...event, reply: netMessage.reply }) as InboundEvent<M, T>;
}

/**
 * Command multicast, the member side (ARCHITECTURE §5, docs/group-communication.md):
 * reads this node's commands from its durable consumer (`cmd-<member>`,
 * filter `cmd.<member>`, explicit ack) and applies each at most once, which
 * with redelivery until acked makes it exactly once in effect:
 *
 * 1. A new command is recorded as begun in the ledger and synced, then the
 *    applier runs. (A crash while it runs leaves "begun": after the restart
 *    the command is answered as failed, never applied again.)
 * 2. Its result is recorded as done and synced; only then is the result
 *    published on `cmdres.<commandId>` and the delivery acked.
 * 3. A command the ledger already knows (redelivery after a lost ack, a
 *    duplicate stored outside the dedupe window, a repeat copy) is not
 *    applied: its stored result is published again and the delivery acked.
 *
 * Garbage (undecodable, oversized, wrong subject, mismatched msg id) is
 * counted by the rejection counter and terminated, never redelivered, never
 * a crash.
 */
import { createRejectionCounter, decodeCounted, type RejectionCounter } from "../codec/rejectionCounter.ts";
import type { TimerId } from "../ports/clock.ts";
import type { Subscription } from "../ports/network.ts";
import type { NodePorts } from "../ports/nodePorts.ts";
import type { RecordLog } from "../ports/storage.ts";
import type { Stream, StreamMessage } from "../ports/stream.ts";
import { DurableWriter } from "../paxos/durableWriter.ts";
import { clusterSubjects } from "../subjects.ts";
import { CommandLedger, type ApplyOutcome, type LedgerRecord } from "../../machines/groupcomm/commandLedger.ts";
import {
  boundedError,
  commandMessages,
  ledgerRecords,
  maxCommandResultBytes,
  msgIdHeader,
  ownBytes,
  typeHeader,
} from "./commandMessages.ts";
import type { MulticastCommand } from "./commandMulticast.ts";
import {
  commandConsumerConfig,
  commandMsgId,
  commandStreamConfig,
  commandStreamName,
  defaultCommandAckWaitMs,
  defaultCommandMaxAckPending,
  defaultCommandMaxDeliver,
} from "./commandStream.ts";

export type ApplyResult = { readonly ok: true; readonly result: Uint8Array } | { readonly ok: false; readonly error: string };
/** Called at most once per commandId in effect (ledger), even across redelivery, duplicates and member restarts. */
export type CommandApplier = (command: MulticastCommand & { readonly senderId: string }, done: (result: ApplyResult) => void) => void;

export type CommandMemberStatus = "starting" | "consuming" | "stopped" | "failed";

export interface CommandMember {
  stop(): void;
  readonly status: CommandMemberStatus;
  /** Commands in the ledger (begun or done). */
  readonly ledgerSize: number;
  /** Bytes of a torn or corrupt ledger tail cut off when this incarnation opened it. */
  readonly discardedLedgerTailBytes: number;
}

export interface CommandMemberConfig {
  /** Shared per node; one is made from the ports when absent. */
  readonly rejections: RejectionCounter;
  readonly streamReplicas: 1 | 3;
  readonly ackWaitMs: number;
  readonly maxDeliver: number;
  readonly maxAckPending: number;
  /**
   * Commands the ledger remembers. A forgotten command would be applied
   * again if it were redelivered, so this must exceed what can be redelivered
   * after its ack: at least 2 × maxAckPending × maxDeliver (checked).
   */
  readonly maxLedgerEntries: number;
  /** Ledger records before the log is rewritten down to one per entry. */
  readonly ledgerCompactAfterRecords: number;
  readonly ledgerLogName: string;
  /** Wait before trying again when the stream or consumer cannot be set up. */
  readonly consumeRetryMs: number;
  /** The ledger could not be read or written: the member has stopped taking commands. */
  readonly onFatal?: (error: string) => void;
}

export const defaultMaxLedgerEntries = 8_192;
export const defaultLedgerCompactAfterRecords = 3 * defaultMaxLedgerEntries;
export const defaultLedgerLogName = "command-ledger";
export const defaultConsumeRetryMs = 1_000;
/** Deliveries of one command held while it is being applied; more are sent back for later. */
export const maxHeldDeliveriesPerCommand = 16;

export const commandsAppliedMetric = "haring_commands_applied_total";
export const commandsAnsweredFromLedgerMetric = "haring_commands_answered_from_ledger_total";
export const ledgerTornTailMetric = "haring_command_ledger_torn_tail_bytes_total";

interface InFlight {
  readonly deliveries: StreamMessage[];
}

function decodeLedger(raw: readonly Uint8Array[]): { ok: true; records: LedgerRecord[] } | { ok: false; error: string } {
  const records: LedgerRecord[] = [];
  for (let index = 0; index < raw.length; index++) {
    const decoded = ledgerRecords.decode(raw[index]!);
    if (!decoded.ok) return { ok: false, error: `ledger record ${index} of ${raw.length} is unreadable (${decoded.reason}: ${decoded.detail})` };
    const { t, from: senderId, body } = decoded.message;
    if (t === "ledger.begin") {
      records.push({ type: "begin", commandId: body.commandId, senderId, kind: body.kind });
    } else {
      const done = decoded.message.body as { commandId: string; kind: string; ok: boolean; result: Uint8Array; error: string };
      const outcome: ApplyOutcome = done.ok ? { ok: true, result: ownBytes(done.result) } : { ok: false, error: done.error };
      records.push({ type: "done", commandId: done.commandId, senderId, kind: done.kind, outcome });
    }
  }
  return { ok: true, records };
}

function encodeLedgerRecord(record: LedgerRecord): Uint8Array {
  if (record.type === "begin") return ledgerRecords.encode("ledger.begin", record.senderId, "", { commandId: record.commandId, kind: record.kind });
  const { outcome } = record;
  return ledgerRecords.encode("ledger.done", record.senderId, "", {
    commandId: record.commandId,
    kind: record.kind,
    ok: outcome.ok,
    result: outcome.ok ? outcome.result : new Uint8Array(0),
    error: outcome.ok ? "" : outcome.error,
  });
}

/** What an applier handed back, made safe to store and send. */
function checkApplyResult(result: unknown): ApplyOutcome {
  if (typeof result !== "object" || result === null) return { ok: false, error: "applier returned no result" };
  const candidate = result as { ok?: unknown; result?: unknown; error?: unknown };
  if (candidate.ok === true) {
    if (!(candidate.result instanceof Uint8Array)) return { ok: false, error: "applier result is not bytes" };
    if (candidate.result.length > maxCommandResultBytes) {
      return { ok: false, error: `applier result of ${candidate.result.length} bytes exceeds ${maxCommandResultBytes}` };
    }
    return { ok: true, result: ownBytes(candidate.result) };
  }
  if (candidate.ok === false) return { ok: false, error: boundedError(typeof candidate.error === "string" ? candidate.error : "applier failed without a reason") };
  return { ok: false, error: "applier returned an invalid result" };
}

export function startCommandMember(ports: NodePorts, apply: CommandApplier, overrides: Partial<CommandMemberConfig> = {}): CommandMember {
  const stream: Stream | undefined = ports.stream;
  if (!stream) throw new RangeError("a command member needs a Stream port (JetStream)");
  const config: CommandMemberConfig = {
    rejections: overrides.rejections ?? createRejectionCounter(ports),
    streamReplicas: overrides.streamReplicas ?? 1,
    ackWaitMs: overrides.ackWaitMs ?? defaultCommandAckWaitMs,
    maxDeliver: overrides.maxDeliver ?? defaultCommandMaxDeliver,
    maxAckPending: overrides.maxAckPending ?? defaultCommandMaxAckPending,
    maxLedgerEntries: overrides.maxLedgerEntries ?? defaultMaxLedgerEntries,
    ledgerCompactAfterRecords: overrides.ledgerCompactAfterRecords ?? Math.max(defaultLedgerCompactAfterRecords, 3 * (overrides.maxLedgerEntries ?? 0)),
    ledgerLogName: overrides.ledgerLogName ?? defaultLedgerLogName,
    consumeRetryMs: overrides.consumeRetryMs ?? defaultConsumeRetryMs,
    ...(overrides.onFatal ? { onFatal: overrides.onFatal } : {}),
  };
  for (const [name, value] of [["ackWaitMs", config.ackWaitMs], ["maxDeliver", config.maxDeliver], ["maxAckPending", config.maxAckPending], ["consumeRetryMs", config.consumeRetryMs]] as const) {
    if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, got ${value}`);
  }
  if (config.maxLedgerEntries < 2 * config.maxAckPending * config.maxDeliver) {
    throw new RangeError(
      `maxLedgerEntries ${config.maxLedgerEntries} must be at least 2 × maxAckPending × maxDeliver = ${2 * config.maxAckPending * config.maxDeliver}: a forgotten command could be applied again`,
    );
  }

  const memberId = ports.nodeId;
  const subjects = clusterSubjects(ports.clusterId);
  const mySubject = subjects.command(memberId);
  const streamName = commandStreamName(ports.clusterId);
  const ledger = new CommandLedger({ maxEntries: config.maxLedgerEntries, compactAfterRecords: config.ledgerCompactAfterRecords });
  const inFlight = new Map<string, InFlight>();
  let status: CommandMemberStatus = "starting";
  let subscription: Subscription | undefined;
  let retryTimer: TimerId | undefined;

  const log: RecordLog = ports.storage.open(config.ledgerLogName);
  const discardedLedgerTailBytes = log.discardedTailBytes;
  if (discardedLedgerTailBytes > 0) {
    ports.metrics.increment(ledgerTornTailMetric, {}, discardedLedgerTailBytes);
    ports.log.write("warn", "command-ledger.torn-tail", { log: config.ledgerLogName, discardedBytes: discardedLedgerTailBytes });
  }

  const fail = (error: string) => {
    if (status === "failed" || status === "stopped") return;
    status = "failed";
    subscription?.unsubscribe();
    subscription = undefined;
    if (retryTimer !== undefined) ports.clock.clearTimeout(retryTimer);
    ports.log.write("error", "command-member.failed", { error });
    config.onFatal?.(error);
  };

  const writer = new DurableWriter<LedgerRecord, () => void>({
    log,
    encode: encodeLedgerRecord,
    send: (actions) => {
      for (const action of actions) if (status === "consuming" || status === "starting") action();
    },
    fatal: (error) => fail(`command ledger: ${error}`),
  });

  /** Persists records (compacting when due) and runs `then` once they are durable. */
  function persist(records: readonly LedgerRecord[], then: () => void): void {
    if (ledger.needsCompaction) {
      const image = ledger.compactedRecords();
      ledger.markCompacted();
      writer.submit({ persist: [], rewrite: image, messages: [then] });
    } else {
      writer.submit({ persist: records, rewrite: null, messages: [then] });
    }
  }

  function publishResult(commandId: string, outcome: ApplyOutcome): void {
    const bytes = commandMessages.encode("cmd.result", memberId, commandId, {
      commandId,
      memberId,
      status: outcome.ok ? "applied" : "failed",
      result: outcome.ok ? outcome.result : new Uint8Array(0),
      error: outcome.ok ? "" : outcome.error,
    });
    ports.network.publish(subjects.commandResult(commandId), bytes, { headers: { [typeHeader]: "cmd.result" } });
  }

  function reject(message: StreamMessage, reason: "invalid-envelope" | "unexpected-type", detail: string): void {
    config.rejections.count(message.subject, { reason, detail });
    message.term();
  }

  function onMessage(message: StreamMessage): void {
    if (status !== "consuming") return; // left unacked: redelivered after ack wait
    if (message.subject !== mySubject) return reject(message, "unexpected-type", `command for ${message.subject} delivered to ${memberId}`);
    const decoded = decodeCounted(commandMessages, config.rejections, message.subject, message.data, ["cmd.request"]);
    if (!decoded) return message.term();
    const { commandId, kind, payload, repeat } = decoded.body;
    const msgId = message.headers[msgIdHeader];
    const ownMsgId = commandMsgId(commandId, memberId);
    if (msgId !== undefined && msgId !== ownMsgId && !(repeat && msgId.startsWith(`${ownMsgId}.repeat-`))) {
      return reject(message, "invalid-envelope", `msg id ${JSON.stringify(msgId.slice(0, 80))} does not match command ${commandId}`);
    }
    const entry = ledger.lookup(commandId);
    if (entry?.state === "done") {
      ports.metrics.increment(commandsAnsweredFromLedgerMetric);
      publishResult(commandId, entry.outcome);
      message.ack();
      return;
    }
    const running = inFlight.get(commandId);
    if (running) {
      // A redelivery or second copy while the first is being applied: acked together with it.
      const sameSequence = running.deliveries.findIndex((held) => held.streamSequence === message.streamSequence);
      if (sameSequence >= 0) running.deliveries[sameSequence] = message;
      else if (running.deliveries.length < maxHeldDeliveriesPerCommand) running.deliveries.push(message);
      else message.nak(config.ackWaitMs);
      return;
    }
    if (entry) {
      message.nak(config.ackWaitMs); // begun but not running cannot happen; never apply twice if it does
      return;
    }
    if (repeat) {
      // Unknown here: the original is still ahead in the stream (it will answer), or was forgotten.
      message.ack();
      return;
    }
    const senderId = decoded.from;
    const command = { commandId, kind, payload: ownBytes(payload), senderId };
    const begin = ledger.begin({ commandId, senderId, kind });
    inFlight.set(commandId, { deliveries: [message] });
    persist([begin], () => runApplier(command));
  }

  function runApplier(command: MulticastCommand & { readonly senderId: string }): void {
    let answered = false;
    const done = (result: ApplyResult) => {
      if (answered || status === "stopped" || status === "failed") return;
      answered = true;
      finishCommand(command.commandId, checkApplyResult(result));
    };
    try {
      apply(command, done);
    } catch (error) {
      done({ ok: false, error: `applier threw: ${error instanceof Error ? error.message : String(error)}` });
    }
  }

  function finishCommand(commandId: string, outcome: ApplyOutcome): void {
    const record = ledger.finish(commandId, outcome);
    ports.metrics.increment(commandsAppliedMetric, { outcome: outcome.ok ? "applied" : "failed" });
    persist([record], () => {
      publishResult(commandId, outcome);
      const held = inFlight.get(commandId);
      inFlight.delete(commandId);
      for (const delivery of held?.deliveries ?? []) delivery.ack();
    });
  }

  function startConsuming(): void {
    retryTimer = undefined;
    if (status !== "starting") return;
    const retry = (error: string) => {
      if (status !== "starting") return;
      ports.log.write("warn", "command-member.consume-retry", { error, retryMs: config.consumeRetryMs });
      retryTimer = ports.clock.setTimeout(startConsuming, config.consumeRetryMs);
    };
    stream!.ensureStream(commandStreamConfig(ports.clusterId, config.streamReplicas), (ensured) => {
      if (!ensured.ok) return retry(ensured.error);
      const consumer = commandConsumerConfig(ports.clusterId, memberId, config);
      // Consuming starts before `ready`: deliveries may arrive first, so the status must already allow them.
      status = "consuming";
      stream!.consume(streamName, consumer, onMessage, (ready) => {
        if (!ready.ok) {
          if (status === "consuming") status = "starting";
          return retry(ready.error);
        }
        if (status !== "consuming") return ready.subscription.unsubscribe();
        subscription = ready.subscription;
      });
    });
  }

  const read = decodeLedger(log.readAll());
  if (!read.ok) {
    fail(`command ledger: ${read.error}`);
  } else {
    const interrupted = ledger.restore(read.records);
    for (const record of interrupted) {
      ports.log.write("warn", "command-member.interrupted", { commandId: record.commandId, kind: record.kind });
    }
    // The interrupted commands' failures are durable before anything is answered.
    persist(interrupted, startConsuming);
  }

  return {
    get status() {
      return status;
    },
    get ledgerSize() {
      return ledger.size;
    },
    discardedLedgerTailBytes,
    stop() {
      if (status === "stopped") return;
      status = "stopped";
      writer.stop();
      subscription?.unsubscribe();
      subscription = undefined;
      if (retryTimer !== undefined) ports.clock.clearTimeout(retryTimer);
      inFlight.clear();
    },
  };
}

/**
 * The one JetStream stream that carries every command of a cluster
 * (`haring.<cluster>.cmd.>`), and the durable consumer each member reads its
 * own subject through. Sender and member both ensure the stream, so either
 * may start first; the configuration is the same on both sides.
 */
import type { ConsumerConfig, StreamConfig } from "../ports/stream.ts";
import { clusterSubjects, isValidId, subjectPrefix } from "../subjects.ts";

/** Publishes of the same msg id inside this window are stored once (JetStream's default is 2 minutes). */
export const commandDuplicateWindowMs = 120_000;
export const commandStreamMaxMessages = 1_000_000;
export const commandStreamMaxBytes = 1024 * 1024 * 1024;
/** A delivery not acked within this is delivered again. */
export const defaultCommandAckWaitMs = 5_000;
/** Deliveries of one command to one member at most (counting the first). */
export const defaultCommandMaxDeliver = 20;
/** Commands one member has in flight (delivered, not yet acked) at most. */
export const defaultCommandMaxAckPending = 64;

export function commandStreamName(clusterId: string): string {
  if (!isValidId(clusterId)) throw new RangeError(`invalid cluster id ${JSON.stringify(clusterId)}`);
  return `haring-${clusterId}-cmd`;
}

/** `haring.<cluster>.cmd.>`: derived from the member subject so the two cannot drift apart. */
export function commandSubjects(clusterId: string): string {
  const memberSubject = clusterSubjects(clusterId).command("x");
  const wildcard = `${memberSubject.slice(0, -1)}>`;
  if (!wildcard.startsWith(`${subjectPrefix}.`)) throw new RangeError("unexpected command subject layout");
  return wildcard;
}

export function commandStreamConfig(clusterId: string, replicas: 1 | 3): StreamConfig {
  return {
    name: commandStreamName(clusterId),
    subjects: [commandSubjects(clusterId)],
    duplicateWindowMs: commandDuplicateWindowMs,
    replicas,
    maxMessages: commandStreamMaxMessages,
    maxBytes: commandStreamMaxBytes,
  };
}

export interface CommandConsumerSettings {
  readonly ackWaitMs: number;
  readonly maxDeliver: number;
  readonly maxAckPending: number;
}

export function commandConsumerConfig(clusterId: string, memberId: string, settings: CommandConsumerSettings): ConsumerConfig {
  return {
    durableName: `cmd-${memberId}`,
    filterSubject: clusterSubjects(clusterId).command(memberId),
    ackWaitMs: settings.ackWaitMs,
    maxDeliver: settings.maxDeliver,
    maxAckPending: settings.maxAckPending,
  };
}

/** Msg id of one member's copy: JetStream dedupes per stream, and every member's copy is its own message. */
export function commandMsgId(commandId: string, memberId: string): string {
  return `${commandId}.${memberId}`;
}

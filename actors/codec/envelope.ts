/**
 * The envelope every haring message travels in, msgpack-encoded:
 * `{ v: 1, t: <type>, from: <nodeId>, cid: <correlation id>, body }`.
 *
 * `t` selects the body schema; `from` is the sending node (a subject-safe id,
 * see actors/subjects.ts); `cid` ties replies and retries to what they answer
 * (empty when nothing does). The key order is fixed, so the same message
 * always encodes to the same bytes.
 */
import { str } from "./schema.ts";

export const envelopeVersion = 1;

/** NATS's default max_payload; a registry may lower it. */
export const defaultMaxMessageBytes = 1_048_576;

export const maxNodeIdLength = 64;
export const maxCorrelationIdLength = 128;
export const maxMessageTypeLength = 64;

export const nodeIdSchema = str({ minLength: 1, maxLength: maxNodeIdLength, pattern: /^[A-Za-z0-9_-]+$/ });
export const correlationIdSchema = str({ maxLength: maxCorrelationIdLength, pattern: /^[A-Za-z0-9_.:-]*$/ });

/** Message type names: lower-case dotted words, e.g. `hb.ping`, `paxos.accept-ok`. */
export const messageTypePattern = /^[a-z][a-z0-9]*(?:[.-][a-z0-9]+)*$/;

export interface Envelope<T extends string, B> {
  readonly v: typeof envelopeVersion;
  readonly t: T;
  readonly from: string;
  readonly cid: string;
  readonly body: B;
}

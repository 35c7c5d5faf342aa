/**
 * Typed encode/decode of enveloped messages over msgpackr's plain pack/unpack.
 *
 * decode never throws, whatever the bytes: msgpackr throws on most garbage but
 * turns ~1.3% of random inputs into arbitrary values without complaint, so every
 * decoded value is validated (envelope, then body) before anyone sees it.
 * encode validates too and throws on a bad body: that is a bug in our own
 * code, and it keeps us from sending what a peer would reject.
 */
import { pack, unpack } from "msgpackr";
import {
  correlationIdSchema,
  defaultMaxMessageBytes,
  envelopeVersion,
  maxMessageTypeLength,
  messageTypePattern,
  nodeIdSchema,
  type Envelope,
} from "./envelope.ts";
import { describeValue, formatPath, isPlainObject, type Infer, type Schema } from "./schema.ts";

export const rejectionReasons = [
  "oversized",
  "truncated",
  "malformed",
  "wrong-version",
  "unknown-type",
  "unexpected-type",
  "invalid-envelope",
  "invalid-body",
] as const;

export type RejectionReason = (typeof rejectionReasons)[number];

export interface Rejection {
  readonly ok: false;
  readonly reason: RejectionReason;
  /** One bounded, printable line saying what was wrong; safe to log. */
  readonly detail: string;
}

export type SchemaMap = { readonly [type: string]: Schema<unknown> };

export type MessageType<M extends SchemaMap> = keyof M & string;

/** The decoded message for one type, or a union over several. */
export type MessageOf<M extends SchemaMap, T extends MessageType<M> = MessageType<M>> = T extends MessageType<M>
  ? Envelope<T, Infer<M[T]>>
  : never;

export type DecodeResult<Message> = { readonly ok: true; readonly message: Message } | Rejection;

export interface MessageRegistryOptions {
  /** Larger inputs are rejected before unpacking, and encode refuses to produce them. */
  readonly maxMessageBytes?: number;
}

export interface MessageRegistry<M extends SchemaMap> {
  readonly schemas: M;
  readonly types: readonly MessageType<M>[];
  readonly maxMessageBytes: number;
  /** Throws RangeError when the message would not pass `decode` on the other side. */
  encode<T extends MessageType<M>>(type: T, from: string, cid: string, body: Infer<M[T]>): Uint8Array;
  /** Never throws. `allowedTypes` lists the types expected on this subject; others are `unexpected-type`. */
  decode<T extends MessageType<M> = MessageType<M>>(bytes: Uint8Array, allowedTypes?: readonly T[]): DecodeResult<MessageOf<M, T>>;
}

const maxDetailChars = 160;

function reject(reason: RejectionReason, detail: string): Rejection {
  const printable = detail.replace(/[^\x20-\x7e]/g, "?");
  return { ok: false, reason, detail: printable.length > maxDetailChars ? `${printable.slice(0, maxDetailChars)}…` : printable };
}

function hasOwn(value: object, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(value, key);
}

function thrownMessage(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : `thrown ${describeValue(error)}`;
}

export function createMessageRegistry<const M extends SchemaMap>(schemas: M, options: MessageRegistryOptions = {}): MessageRegistry<M> {
  const maxMessageBytes = options.maxMessageBytes ?? defaultMaxMessageBytes;
  if (!Number.isSafeInteger(maxMessageBytes) || maxMessageBytes < 16) {
    throw new RangeError(`maxMessageBytes must be a safe integer ≥ 16, got ${maxMessageBytes}`);
  }
  const byType = new Map<string, Schema<unknown>>();
  for (const type of Object.keys(schemas)) {
    if (type.length > maxMessageTypeLength || !messageTypePattern.test(type)) {
      throw new RangeError(`invalid message type ${JSON.stringify(type)}: lower-case dotted words, at most ${maxMessageTypeLength} chars`);
    }
    byType.set(type, schemas[type]!);
  }

  function checkEnvelope(value: Record<string, unknown>): string | undefined {
    let keys = 0;
    for (const key in value) {
      keys++;
      if (key !== "v" && key !== "t" && key !== "from" && key !== "cid" && key !== "body") {
        return `${formatPath("", [key])}: unexpected key`;
      }
    }
    if (keys !== 5) return "expected keys {v, t, from, cid, body}";
    const fromIssue = nodeIdSchema.check(value.from);
    if (fromIssue !== undefined) return `from: ${fromIssue.message}`;
    const cidIssue = correlationIdSchema.check(value.cid);
    if (cidIssue !== undefined) return `cid: ${cidIssue.message}`;
    return undefined;
  }

  return {
    schemas,
    types: [...byType.keys()] as MessageType<M>[],
    maxMessageBytes,

    encode(type, from, cid, body) {
      const schema = byType.get(type);
      if (schema === undefined) throw new RangeError(`unknown message type ${JSON.stringify(type)}`);
      const fromIssue = nodeIdSchema.check(from);
      if (fromIssue !== undefined) throw new RangeError(`encode ${type}: from: ${fromIssue.message}`);
      const cidIssue = correlationIdSchema.check(cid);
      if (cidIssue !== undefined) throw new RangeError(`encode ${type}: cid: ${cidIssue.message}`);
      const bodyIssue = schema.check(body);
      if (bodyIssue !== undefined) {
        throw new RangeError(`encode ${type}: ${formatPath("body", bodyIssue.segments)}: ${bodyIssue.message}`);
      }
      const envelope: Envelope<string, unknown> = { v: envelopeVersion, t: type, from, cid, body };
      const packed: Uint8Array = pack(envelope);
      if (packed.length > maxMessageBytes) {
        throw new RangeError(`encode ${type}: ${packed.length} bytes exceeds maxMessageBytes ${maxMessageBytes}`);
      }
      // A compact copy: msgpackr returns a view into its shared slab (with extra properties), which a
      // queued message would keep alive and which compares unequal to identical bytes.
      return new Uint8Array(packed);
    },

    decode(bytes, allowedTypes) {
      if (!(bytes instanceof Uint8Array)) return reject("malformed", `expected bytes, got ${describeValue(bytes)}`);
      if (bytes.length > maxMessageBytes) return reject("oversized", `${bytes.length} bytes exceeds ${maxMessageBytes}`);
      let decoded: unknown;
      try {
        // A fresh view (no copy): msgpackr caches a DataView as a property on its input, which must not be ours.
        decoded = unpack(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      } catch (error) {
        const incomplete = typeof error === "object" && error !== null && (error as { incomplete?: unknown }).incomplete === true;
        return reject(incomplete ? "truncated" : "malformed", thrownMessage(error));
      }
      if (!isPlainObject(decoded)) return reject("malformed", `expected an envelope map, got ${describeValue(decoded)}`);
      const version = hasOwn(decoded, "v") ? decoded.v : undefined;
      if (version !== envelopeVersion) {
        return typeof version === "number"
          ? reject("wrong-version", `version ${version}, expected ${envelopeVersion}`)
          : reject("invalid-envelope", `v: expected integer ${envelopeVersion}, got ${describeValue(version)}`);
      }
      const type = hasOwn(decoded, "t") ? decoded.t : undefined;
      if (typeof type !== "string") return reject("invalid-envelope", `t: expected string, got ${describeValue(type)}`);
      const schema = byType.get(type);
      if (schema === undefined) return reject("unknown-type", `type ${describeValue(type)}`);
      if (allowedTypes !== undefined && !(allowedTypes as readonly string[]).includes(type)) {
        return reject("unexpected-type", `type ${describeValue(type)} not expected here`);
      }
      const envelopeProblem = checkEnvelope(decoded);
      if (envelopeProblem !== undefined) return reject("invalid-envelope", `${type}: ${envelopeProblem}`);
      const bodyIssue = schema.check(decoded.body);
      if (bodyIssue !== undefined) {
        return reject("invalid-body", `${type}: ${formatPath("body", bodyIssue.segments)}: ${bodyIssue.message}`);
      }
      // Validated above; the cast only names the type the checks established.
      return { ok: true, message: decoded as never };
    },
  };
}

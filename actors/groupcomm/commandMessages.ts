/**
 * What command multicast puts on the wire and on disk (ARCHITECTURE §5):
 *
 * - `cmd.request`, stored in the command stream on `cmd.<member>`: the
 *   command, one copy per member. `repeat` marks a copy re-sent to ask for a
 *   result again (see commandMulticast.ts); a repeat is never applied.
 * - `cmd.result`, core NATS on `cmdres.<commandId>`: one member's answer.
 * - `ledger.begin` / `ledger.done`: the member's ledger records (storage).
 *
 * All are codec envelopes, validated on the way in like any other message.
 */
import { createMessageRegistry } from "../codec/messageCodec.ts";
import { bool, bytes, obj, oneOf, str } from "../codec/schema.ts";
import { maxRecordBytes } from "../recordFraming.ts";

/** Command ids are subject tokens (`cmdres.<commandId>`) and ledger keys. */
export const commandIdPattern = /^[A-Za-z0-9_-]{1,64}$/;
export const maxCommandKindLength = 64;
export const commandKindPattern = /^[a-z][a-z0-9]*(?:[._-][a-z0-9]+)*$/;
/** Largest command payload; a request (payload plus envelope) stays well below NATS' 1 MiB max_payload. */
export const maxCommandPayloadBytes = 256 * 1024;
/** Largest result an applier may return; a larger one is recorded as a failure. */
export const maxCommandResultBytes = 64 * 1024;
export const maxCommandErrorChars = 1_024;
/** Wire messages larger than this are refused before decoding. */
export const maxCommandMessageBytes = maxCommandPayloadBytes + 4 * 1024;

const commandIdSchema = str({ minLength: 1, maxLength: 64, pattern: commandIdPattern });
const memberIdSchema = str({ minLength: 1, maxLength: 64, pattern: /^[A-Za-z0-9_-]+$/ });
const kindSchema = str({ minLength: 1, maxLength: maxCommandKindLength, pattern: commandKindPattern });
const errorSchema = str({ maxLength: maxCommandErrorChars });
const resultSchema = bytes({ maxLength: maxCommandResultBytes });

export const commandMessages = createMessageRegistry(
  {
    "cmd.request": obj({ commandId: commandIdSchema, kind: kindSchema, payload: bytes({ maxLength: maxCommandPayloadBytes }), repeat: bool() }),
    "cmd.result": obj({
      commandId: commandIdSchema,
      memberId: memberIdSchema,
      status: oneOf(["applied", "failed"] as const),
      result: resultSchema,
      error: errorSchema,
    }),
  },
  { maxMessageBytes: maxCommandMessageBytes },
);

export const ledgerRecords = createMessageRegistry(
  {
    "ledger.begin": obj({ commandId: commandIdSchema, kind: kindSchema }),
    "ledger.done": obj({ commandId: commandIdSchema, kind: kindSchema, ok: bool(), result: resultSchema, error: errorSchema }),
  },
  { maxMessageBytes: maxRecordBytes },
);

/** Header naming the message type, so `nats sub` shows what each message is without decoding it. */
export const typeHeader = "Haring-Type";
export const msgIdHeader = "Nats-Msg-Id";

/** An error text as it may travel: printable, bounded. */
export function boundedError(text: string): string {
  const printable = text.replace(/[^\x20-\x7e]/g, "?");
  return printable.length > maxCommandErrorChars ? `${printable.slice(0, maxCommandErrorChars - 1)}…` : printable;
}

/** A plain Uint8Array copy (msgpackr hands out Buffers that share its slab). */
export function ownBytes(source: Uint8Array): Uint8Array {
  return new Uint8Array(source);
}

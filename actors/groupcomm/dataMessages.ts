/**
 * Data multicast on the wire (core NATS request/reply) and on disk:
 *
 * - `data.store` on `data.<peer>.store`: an owner hands a backup peer a copy
 *   of one key at one version; the peer answers `data.stored` once the copy
 *   is durable (or says why not: stale, full).
 * - `data.fetch` on `data.<peer>.fetch`: someone restoring an owner's data
 *   asks a peer for its copies, a page at a time; answered by `data.copies`.
 * - `copy.record`: one held copy in the peer's backup log.
 */
import { createMessageRegistry } from "../codec/messageCodec.ts";
import { arr, bool, bytes, int, obj, str } from "../codec/schema.ts";
import { maxRecordBytes } from "../recordFraming.ts";

export const dataKeyPattern = /^[A-Za-z0-9_-]{1,64}$/;
/** Largest value of one key (a VM definition is a few KiB). */
export const maxDataValueBytes = 64 * 1024;
/** Copies in one `data.copies` page at most, and the value bytes a page aims to stay under. */
export const maxCopiesPerPage = 64;
export const maxPageValueBytes = 512 * 1024;
export const maxDataErrorChars = 256;

const idSchema = str({ minLength: 1, maxLength: 64, pattern: /^[A-Za-z0-9_-]+$/ });
const keySchema = str({ minLength: 1, maxLength: 64, pattern: dataKeyPattern });
const versionSchema = int({ min: 1, max: Number.MAX_SAFE_INTEGER });
const valueSchema = bytes({ maxLength: maxDataValueBytes });

export const dataMessages = createMessageRegistry({
  "data.store": obj({ ownerId: idSchema, key: keySchema, version: versionSchema, value: valueSchema }),
  "data.stored": obj({ ownerId: idSchema, key: keySchema, stored: bool(), heldVersion: int({ min: 0, max: Number.MAX_SAFE_INTEGER }), error: str({ maxLength: maxDataErrorChars }) }),
  "data.fetch": obj({ ownerId: idSchema, afterKey: str({ maxLength: 64, pattern: /^[A-Za-z0-9_-]*$/ }) }),
  "data.copies": obj({
    ownerId: idSchema,
    copies: arr(obj({ key: keySchema, version: versionSchema, value: valueSchema }), { maxLength: maxCopiesPerPage }),
    more: bool(),
  }),
});

export const copyRecords = createMessageRegistry(
  { "copy.record": obj({ ownerId: idSchema, key: keySchema, version: versionSchema, value: valueSchema }) },
  { maxMessageBytes: maxRecordBytes },
);

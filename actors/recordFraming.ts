/**
 * On-disk framing for Storage records: [length u32 LE][crc32 u32 LE][payload].
 * Shared by the file storage (runtime/) and the simulated storage (sim/), so a
 * torn or corrupt tail is detected the same way in both.
 */
export const recordHeaderBytes = 8;
/**
 * As large as the largest message a transfer may carry (machines/paxos/chunkTransfer.ts,
 * `maxTransferBytes`): a controller's view snapshot is one record, and one that a peer could be sent
 * must also fit the log. 16 MiB until 2026-11-26, when a benchmark's view of 64,000 VMs (21 MB as a
 * snapshot) stopped its controllers at their next compaction.
 */
export const maxRecordBytes = 64 * 1024 * 1024;

const crcTable = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 (IEEE, as zlib's). */
export type Checksum = (bytes: Uint8Array) => number;

/** CRC-32 in JavaScript: the default, and the reference a native one is tested against (runtime/nativeCrc32.ts). */
export function crc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (let index = 0; index < bytes.length; index++) crc = crcTable[(crc ^ bytes[index]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

export function frameRecord(payload: Uint8Array, checksum: Checksum = crc32): Uint8Array {
  return frameRecords([payload], checksum);
}

/** `frameRecord` of each record, one after another in one new array: a log image written at once, copied once. */
export function frameRecords(payloads: readonly Uint8Array[], checksum: Checksum = crc32): Uint8Array {
  let total = 0;
  for (const payload of payloads) {
    if (payload.length > maxRecordBytes) throw new RangeError(`record of ${payload.length} bytes exceeds ${maxRecordBytes}`);
    total += recordHeaderBytes + payload.length;
  }
  const image = new Uint8Array(total);
  const view = new DataView(image.buffer);
  let offset = 0;
  for (const payload of payloads) {
    view.setUint32(offset, payload.length, true);
    view.setUint32(offset + 4, checksum(payload), true);
    image.set(payload, offset + recordHeaderBytes);
    offset += recordHeaderBytes + payload.length;
  }
  return image;
}

export interface ParsedRecords {
  readonly records: Uint8Array[];
  /** Bytes up to the end of the last intact record. */
  readonly intactBytes: number;
  /** Bytes after it: a torn write or corruption, to be cut off. */
  readonly discardedTailBytes: number;
}

/** Reads records until the first one that is short or fails its checksum; everything from there on is the discarded tail. */
export function parseRecords(bytes: Uint8Array, checksum: Checksum = crc32): ParsedRecords {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const records: Uint8Array[] = [];
  let offset = 0;
  while (offset + recordHeaderBytes <= bytes.length) {
    const length = view.getUint32(offset, true);
    const expected = view.getUint32(offset + 4, true);
    const end = offset + recordHeaderBytes + length;
    if (length > maxRecordBytes || end > bytes.length) break;
    const payload = bytes.slice(offset + recordHeaderBytes, end);
    if (checksum(payload) !== expected) break;
    records.push(payload);
    offset = end;
  }
  return { records, intactBytes: offset, discardedTailBytes: bytes.length - offset };
}

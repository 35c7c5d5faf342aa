/**
 * Length-prefixed frames over a byte stream (a 4-byte big-endian length, then
 * that many bytes): the direct leader-voter link of the relay floor
 * (bench/natsRelayFloorMember.ts). TCP splits and merges writes as it likes;
 * the reader gives back whole frames whatever the chunks were.
 */
import { concatBytes } from "../actors/concatBytes.ts";

/** A frame above this is not from a peer of the benchmark, whose frames are a few hundred bytes. */
export const maxFrameBytes = 1024 * 1024;
const lengthPrefixBytes = 4;

export function encodeFrame(body: Uint8Array): Uint8Array {
  if (body.length > maxFrameBytes) throw new RangeError(`a ${body.length}-byte frame is above ${maxFrameBytes}`);
  const framed = new Uint8Array(lengthPrefixBytes + body.length);
  new DataView(framed.buffer).setUint32(0, body.length);
  framed.set(body, lengthPrefixBytes);
  return framed;
}

export type FramesRead = { readonly ok: true; readonly frames: readonly Uint8Array[] } | { readonly ok: false; readonly error: string };

export class FrameReader {
  private buffered: Uint8Array = new Uint8Array(0);
  private failed = false;

  /**
   * The frames `chunk` completes, in order, as views of the bytes given (the caller does not change them
   * afterwards); after an oversized length, an error now and for every later chunk.
   */
  push(chunk: Uint8Array): FramesRead {
    if (this.failed) return { ok: false, error: "the stream already carried an oversized frame" };
    // Copied only when a partial frame waits: a chunk of whole frames is read in place.
    const bytes = this.buffered.length === 0 ? chunk : concatBytes([this.buffered, chunk]);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const frames: Uint8Array[] = [];
    let offset = 0;
    while (bytes.length - offset >= lengthPrefixBytes) {
      const length = view.getUint32(offset);
      if (length > maxFrameBytes) {
        this.failed = true;
        this.buffered = new Uint8Array(0);
        return { ok: false, error: `a ${length}-byte frame is above ${maxFrameBytes}` };
      }
      if (bytes.length - offset - lengthPrefixBytes < length) break;
      frames.push(bytes.subarray(offset + lengthPrefixBytes, offset + lengthPrefixBytes + length));
      offset += lengthPrefixBytes + length;
    }
    this.buffered = bytes.subarray(offset);
    return { ok: true, frames };
  }
}

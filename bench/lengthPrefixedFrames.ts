/**
 * Length-prefixed frames over a byte stream (a 4-byte big-endian length, then
 * that many bytes): the direct leader-voter link of the relay floor
 * (bench/natsRelayFloorMember.ts). TCP splits and merges writes as it likes;
 * the reader gives back whole frames whatever the chunks were.
 */

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
  private buffered = new Uint8Array(0);
  private failed = false;

  /** The frames `chunk` completes, in order; after an oversized length, an error now and for every later chunk. */
  push(chunk: Uint8Array): FramesRead {
    if (this.failed) return { ok: false, error: "the stream already carried an oversized frame" };
    const joined = new Uint8Array(this.buffered.length + chunk.length);
    joined.set(this.buffered);
    joined.set(chunk, this.buffered.length);
    const view = new DataView(joined.buffer);
    const frames: Uint8Array[] = [];
    let offset = 0;
    while (joined.length - offset >= lengthPrefixBytes) {
      const length = view.getUint32(offset);
      if (length > maxFrameBytes) {
        this.failed = true;
        this.buffered = new Uint8Array(0);
        return { ok: false, error: `a ${length}-byte frame is above ${maxFrameBytes}` };
      }
      if (joined.length - offset - lengthPrefixBytes < length) break;
      frames.push(joined.slice(offset + lengthPrefixBytes, offset + lengthPrefixBytes + length));
      offset += lengthPrefixBytes + length;
    }
    this.buffered = joined.slice(offset);
    return { ok: true, frames };
  }
}

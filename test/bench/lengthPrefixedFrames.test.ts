import test from "ava";
import { encodeFrame, FrameReader, maxFrameBytes } from "../../bench/lengthPrefixedFrames.ts";

const bytes = (...values: number[]) => Uint8Array.from(values);

test("frames split into single bytes and merged into one chunk come back whole and in order", (t) => {
  const bodies = [bytes(1, 2, 3), bytes(), bytes(9), Uint8Array.from({ length: 300 }, (_, index) => index % 256)];
  const stream = Uint8Array.from(bodies.flatMap((body) => [...encodeFrame(body)]));

  const byteByByte = new FrameReader();
  const trickled: Uint8Array[] = [];
  for (const value of stream) {
    const read = byteByByte.push(bytes(value));
    if (!read.ok) return t.fail(read.error);
    trickled.push(...read.frames);
  }
  t.deepEqual(trickled, bodies);

  const merged = new FrameReader().push(stream);
  t.deepEqual(merged, { ok: true, frames: bodies });
});

test("a partial frame waits for its rest", (t) => {
  const reader = new FrameReader();
  const framed = encodeFrame(bytes(5, 6, 7, 8));
  t.deepEqual(reader.push(framed.subarray(0, 6)), { ok: true, frames: [] });
  t.deepEqual(reader.push(framed.subarray(6)), { ok: true, frames: [bytes(5, 6, 7, 8)] });
});

test("a length above the bound is an error, now and for the rest of the stream", (t) => {
  const reader = new FrameReader();
  const oversized = new Uint8Array(4);
  new DataView(oversized.buffer).setUint32(0, maxFrameBytes + 1);
  const read = reader.push(oversized);
  t.false(read.ok);
  if (!read.ok) t.regex(read.error, /above 1048576/);
  t.false(reader.push(encodeFrame(bytes(1))).ok, "nothing after it is trusted");
  t.throws(() => encodeFrame(new Uint8Array(maxFrameBytes + 1)), { instanceOf: RangeError });
});

import assert from "node:assert/strict";
import { randomBytes, randomInt } from "node:crypto";
import { test } from "node:test";
import { limits } from "../../common/limits.js";
import { QuicTransportError } from "./errors.js";
import { encodeFrame, FrameDecoder, readFrames } from "./framing.js";

const isCode = (code: string) => (err: unknown) => err instanceof QuicTransportError && err.code === code;

test("a frame is a 4-byte big-endian length and the payload", () => {
  assert.deepEqual([...encodeFrame(Uint8Array.of(7, 8, 9))], [0, 0, 0, 3, 7, 8, 9]);
  assert.deepEqual([...encodeFrame(new Uint8Array(0))], [0, 0, 0, 0]);
});

test("property: any split of any sequence of frames decodes to the same payloads", () => {
  for (let round = 0; round < 200; round++) {
    const payloads = Array.from({ length: randomInt(0, 8) }, () => randomBytes(randomInt(0, 300)));
    const wire = Buffer.concat(payloads.map((p) => encodeFrame(p)));
    const decoder = new FrameDecoder();
    const got: Uint8Array[] = [];
    for (let at = 0; at < wire.length; ) {
      const size = randomInt(1, 40);
      got.push(...decoder.push(wire.subarray(at, at + size)));
      at += size;
    }
    decoder.end();
    assert.deepEqual(
      got.map((g) => Buffer.from(g).toString("hex")),
      payloads.map((p) => p.toString("hex")),
    );
  }
});

test("a frame announced over the limit is refused from its header, before any payload is kept", () => {
  const decoder = new FrameDecoder();
  const header = new Uint8Array(4);
  new DataView(header.buffer).setUint32(0, limits.quicMaxFrameBytes + 1, false);
  assert.throws(() => decoder.push(header), isCode("frame_too_large"));
  assert.equal(decoder.buffered, 0);
  // 4 GiB - 1 announced: the same answer after the same 4 bytes.
  assert.throws(
    () => new FrameDecoder().push(Uint8Array.of(0xff, 0xff, 0xff, 0xff)),
    isCode("frame_too_large"),
  );
  // Exactly at the limit is fine.
  const atLimit = new FrameDecoder();
  assert.equal(
    atLimit.push(encodeFrame(new Uint8Array(limits.quicMaxFrameBytes)))[0]?.length,
    limits.quicMaxFrameBytes,
  );
  assert.throws(() => encodeFrame(new Uint8Array(limits.quicMaxFrameBytes + 1)), isCode("frame_too_large"));
});

test("a stream that ends inside a frame is an error; the decoder never holds more than it was given", () => {
  const decoder = new FrameDecoder(16);
  assert.deepEqual(decoder.push(Uint8Array.of(0, 0, 0, 5, 1, 2)), []);
  assert.equal(decoder.buffered, 2);
  assert.throws(() => decoder.end(), isCode("bad_request"));
  assert.throws(() => new FrameDecoder(0), RangeError);
});

test("readFrames yields the frames of a WHATWG readable stream", async () => {
  const wire = Buffer.concat([encodeFrame(Buffer.from("one")), encodeFrame(Buffer.from("two"))]);
  const readable = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(wire.subarray(0, 5));
      controller.enqueue(wire.subarray(5));
      controller.close();
    },
  });
  const got: string[] = [];
  for await (const frame of readFrames(readable)) got.push(Buffer.from(frame).toString());
  assert.deepEqual(got, ["one", "two"]);
});

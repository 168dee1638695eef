import { limits } from "../../common/limits.js";
import { QuicTransportError } from "./errors.js";

/**
 * QUIC stream framing (DESIGN section 6): a 4-byte big-endian length, then that many payload bytes.
 * The length is checked against the limit as soon as its 4 bytes are in, before any payload is kept,
 * so a peer announcing a huge frame costs us 4 bytes, not the allocation it asked for.
 */

export const FRAME_HEADER_BYTES = 4;

export function encodeFrame(payload: Uint8Array, maxBytes = limits.quicMaxFrameBytes): Uint8Array {
  if (payload.length > maxBytes)
    throw new QuicTransportError(
      "frame_too_large",
      `a frame of ${payload.length} bytes is over the ${maxBytes}-byte limit`,
    );
  const frame = new Uint8Array(FRAME_HEADER_BYTES + payload.length);
  new DataView(frame.buffer).setUint32(0, payload.length, false);
  frame.set(payload, FRAME_HEADER_BYTES);
  return frame;
}

/** Splits a byte stream into frames. Not reusable after it has thrown. */
export class FrameDecoder {
  readonly #maxBytes: number;
  /** Chunks not yet consumed, and how many bytes of the first one are already used. */
  #chunks: Uint8Array[] = [];
  #offset = 0;
  #buffered = 0;
  /** Payload length of the frame being read, once its header is in. */
  #need: number | undefined;

  constructor(maxBytes = limits.quicMaxFrameBytes) {
    if (!Number.isInteger(maxBytes) || maxBytes < 1 || maxBytes > 0xffff_ffff)
      throw new RangeError("maxBytes must be an integer from 1 to 2^32-1");
    this.#maxBytes = maxBytes;
  }

  /** Bytes held that do not yet form a whole frame. */
  get buffered(): number {
    return this.#buffered;
  }

  /** Adds bytes; returns every frame payload they complete, in order. */
  push(chunk: Uint8Array): Uint8Array[] {
    if (chunk.length > 0) {
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
    }
    const out: Uint8Array[] = [];
    for (;;) {
      if (this.#need === undefined) {
        if (this.#buffered < FRAME_HEADER_BYTES) return out;
        const header = this.#take(FRAME_HEADER_BYTES);
        const length = new DataView(header.buffer, header.byteOffset, 4).getUint32(0, false);
        if (length > this.#maxBytes) {
          this.#chunks = [];
          this.#buffered = 0;
          throw new QuicTransportError(
            "frame_too_large",
            `the peer announced a frame of ${length} bytes; the limit is ${this.#maxBytes}`,
          );
        }
        this.#need = length;
      }
      if (this.#buffered < this.#need) return out;
      out.push(this.#take(this.#need));
      this.#need = undefined;
    }
  }

  /** Throws if the stream ended inside a frame. */
  end(): void {
    if (this.#need !== undefined || this.#buffered > 0)
      throw new QuicTransportError("bad_request", "the stream ended inside a frame");
  }

  #take(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const head = this.#chunks[0]!;
      const available = head.length - this.#offset;
      const used = Math.min(available, n - filled);
      out.set(head.subarray(this.#offset, this.#offset + used), filled);
      filled += used;
      if (used === available) {
        this.#chunks.shift();
        this.#offset = 0;
      } else this.#offset += used;
    }
    this.#buffered -= n;
    return out;
  }
}

/** Frames read from a QUIC stream's readable side, one payload at a time. */
export async function* readFrames(
  readable: ReadableStream<Uint8Array>,
  maxBytes = limits.quicMaxFrameBytes,
): AsyncGenerator<Uint8Array> {
  const decoder = new FrameDecoder(maxBytes);
  const reader = readable.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      for (const frame of decoder.push(value)) yield frame;
    }
    decoder.end();
  } finally {
    reader.releaseLock();
  }
}

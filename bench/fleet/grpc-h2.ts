import * as http2 from "node:http2";

/**
 * The least gRPC a simulated node needs, straight on node:http2: length-prefixed messages (1 flag byte,
 * 4-byte big-endian length) on a POST stream, the status in the trailers. One HTTP/2 session per node
 * and nothing per call but the stream, so one load process can hold thousands of sessions; a grpc-js
 * channel per node costs far more memory and timers than the gateway side we want to measure.
 */

const MAX_MESSAGE = 4 * 1024 * 1024;

export function frame(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}

/** Splits a byte stream into gRPC messages; throws on compressed or oversized ones. */
export class MessageReader {
  #buffer: Buffer = Buffer.alloc(0);

  push(chunk: Buffer, onMessage: (message: Buffer) => void): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    while (this.#buffer.length >= 5) {
      if (this.#buffer[0] !== 0) throw new Error("compressed gRPC message");
      const length = this.#buffer.readUInt32BE(1);
      if (length > MAX_MESSAGE) throw new Error(`gRPC message of ${length} bytes`);
      if (this.#buffer.length < 5 + length) return;
      onMessage(this.#buffer.subarray(5, 5 + length));
      this.#buffer = this.#buffer.subarray(5 + length);
    }
  }
}

export class GrpcStatusError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(`gRPC status ${status}: ${message}`);
  }
}

function requestHeaders(path: string): http2.OutgoingHttpHeaders {
  return {
    ":method": "POST",
    ":path": path,
    "content-type": "application/grpc",
    te: "trailers",
  };
}

function statusOf(headers: http2.IncomingHttpHeaders): { status: number; message: string } | undefined {
  const raw = headers["grpc-status"];
  if (raw === undefined) return undefined;
  return { status: Number(raw), message: decodeURIComponent(String(headers["grpc-message"] ?? "")) };
}

/** One request, one response. */
export function unary(session: http2.ClientHttp2Session, path: string, request: Uint8Array): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const stream = session.request(requestHeaders(path));
    const reader = new MessageReader();
    let response: Buffer | undefined;
    let status: { status: number; message: string } | undefined;
    stream.on("response", (headers) => {
      status = statusOf(headers); // trailers-only answer
    });
    stream.on("trailers", (headers) => {
      status = statusOf(headers);
    });
    stream.on("data", (chunk: Buffer) => {
      try {
        reader.push(chunk, (m) => {
          response = Buffer.from(m);
        });
      } catch (err) {
        stream.close(http2.constants.NGHTTP2_PROTOCOL_ERROR);
        reject(err);
      }
    });
    stream.on("error", reject);
    stream.on("close", () => {
      if (status === undefined) return reject(new Error(`${path}: stream closed without a status`));
      if (status.status !== 0) return reject(new GrpcStatusError(status.status, status.message));
      if (response === undefined) return reject(new Error(`${path}: no response message`));
      resolve(response);
    });
    stream.end(frame(request));
  });
}

export interface BidiStream {
  write(message: Uint8Array): void;
  end(): void;
  readonly stream: http2.ClientHttp2Stream;
}

/** A bidirectional stream: messages to `onMessage`, the end (status or error) to `onEnd` once. */
export function bidi(
  session: http2.ClientHttp2Session,
  path: string,
  onMessage: (message: Buffer) => void,
  onEnd: (error: Error | undefined) => void,
): BidiStream {
  const stream = session.request(requestHeaders(path));
  const reader = new MessageReader();
  let status: { status: number; message: string } | undefined;
  let ended = false;
  const finish = (error: Error | undefined) => {
    if (ended) return;
    ended = true;
    onEnd(error);
  };
  stream.on("response", (headers) => {
    status = statusOf(headers) ?? status;
  });
  stream.on("trailers", (headers) => {
    status = statusOf(headers);
    // The call is over when its status arrives, as a gRPC library reports it; the stream's 'close'
    // can come later (our side is still open until the connection goes).
    if (status && status.status !== 0) finish(new GrpcStatusError(status.status, status.message));
    else if (status) finish(undefined);
  });
  stream.on("data", (chunk: Buffer) => {
    try {
      reader.push(chunk, onMessage);
    } catch (err) {
      stream.close(http2.constants.NGHTTP2_PROTOCOL_ERROR);
      finish(err as Error);
    }
  });
  stream.on("error", (err) => finish(err));
  stream.on("close", () =>
    finish(
      status === undefined
        ? new Error("stream closed without a status")
        : status.status === 0
          ? undefined
          : new GrpcStatusError(status.status, status.message),
    ),
  );
  return {
    stream,
    write: (message) => {
      if (!stream.destroyed && stream.writable) stream.write(frame(message));
    },
    end: () => {
      if (!stream.destroyed) stream.end();
    },
  };
}

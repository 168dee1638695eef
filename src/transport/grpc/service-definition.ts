import {
  create,
  type DescMessage,
  type DescMethod,
  type DescService,
  fromBinary,
  type MessageInitShape,
  type MessageShape,
  toBinary,
} from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import {
  type Client,
  type ClientDuplexStream,
  Metadata,
  type MethodDefinition,
  type ServiceDefinition,
  type StatusObject,
} from "@grpc/grpc-js";
import { limits } from "../../common/limits.js";
import { RpcError, RpcStatus } from "./rpc-error.js";

/**
 * protobuf-es service descriptors as grpc-js service definitions, so one code generator (buf +
 * protoc-gen-es) serves both the server and the clients. Messages are checked against a size limit in
 * both directions, before any decoding.
 */

export interface CodecOptions {
  /** Largest encoded message accepted or produced; default `limits.maxRpcMessageBytes` (1 MiB). */
  maxMessageBytes?: number;
}

/** The gRPC path of a method: `/palyra.v1.PairingService/BeginPairing`. */
export function methodPath(method: DescMethod): string {
  return `/${method.parent.typeName}/${method.name}`;
}

/** Encodes a message (or its init shape) to protobuf binary, refusing results over the limit. */
export function messageEncoder<D extends DescMessage>(
  schema: D,
  maxBytes: number = limits.maxRpcMessageBytes,
): (value: MessageInitShape<D>) => Buffer {
  return (value) => {
    // create() returns a message of this type as it is, and builds one from a plain init object.
    const bytes = toBinary(schema, create(schema, value));
    if (bytes.byteLength > maxBytes)
      throw new RpcError(
        RpcStatus.RESOURCE_EXHAUSTED,
        `${schema.typeName} is ${bytes.byteLength} bytes, over the ${maxBytes}-byte message limit`,
      );
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
}

/**
 * Decodes protobuf binary, refusing input over the limit before parsing (RESOURCE_EXHAUSTED) and
 * malformed input (INVALID_ARGUMENT). Unknown fields are dropped rather than carried along.
 */
export function messageDecoder<D extends DescMessage>(
  schema: D,
  maxBytes: number = limits.maxRpcMessageBytes,
): (bytes: Buffer) => MessageShape<D> {
  return (bytes) => {
    if (bytes.byteLength > maxBytes)
      throw new RpcError(
        RpcStatus.RESOURCE_EXHAUSTED,
        `${schema.typeName} is ${bytes.byteLength} bytes, over the ${maxBytes}-byte message limit`,
      );
    try {
      return fromBinary(schema, bytes, { readUnknownFields: false });
    } catch (err) {
      throw new RpcError(RpcStatus.INVALID_ARGUMENT, `malformed ${schema.typeName}`, { cause: err });
    }
  };
}

/**
 * The grpc-js definition of a protobuf-es service: one entry per method, keyed by the method's
 * `localName` (`beginPairing`), with protobuf-es serializers. Errors thrown by the deserializer make
 * grpc-js answer INTERNAL; `server.ts` turns them into INVALID_ARGUMENT / RESOURCE_EXHAUSTED instead.
 */
export function serviceDefinition(service: DescService, options: CodecOptions = {}): ServiceDefinition {
  const maxBytes = options.maxMessageBytes ?? limits.maxRpcMessageBytes;
  const definition: Record<string, MethodDefinition<unknown, unknown>> = {};
  for (const method of service.methods) {
    definition[method.localName] = {
      path: methodPath(method),
      originalName: method.name,
      requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
      responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
      requestSerialize: messageEncoder(method.input, maxBytes) as (value: unknown) => Buffer,
      requestDeserialize: messageDecoder(method.input, maxBytes),
      responseSerialize: messageEncoder(method.output, maxBytes) as (value: unknown) => Buffer,
      responseDeserialize: messageDecoder(method.output, maxBytes),
    };
  }
  return definition;
}

// --- typed clients ---

export interface RpcCallOptions {
  /** Deadline relative to now; default `limits.rpcDefaultDeadlineMs` for unary calls, none for streams. */
  timeoutMs?: number;
  /** Cancels the call (the promise rejects with CANCELLED). */
  signal?: AbortSignal;
  /** Request metadata (ASCII header values). */
  metadata?: Record<string, string>;
}

/** The unary method names of a generated service. */
export type UnaryMethodNames<R extends GenServiceMethods> = {
  [K in keyof R]: R[K]["methodKind"] extends "unary" ? K : never;
}[keyof R];

/** The methods a NodePortServer serves and a typed client calls: unary and bidi-streaming. */
export type ServedMethodNames<R extends GenServiceMethods> = {
  [K in keyof R]: R[K]["methodKind"] extends "unary" | "bidi_streaming" ? K : never;
}[keyof R];

/**
 * The client side of a bidi-streaming call. Iterate it for the server's messages: the iteration ends
 * when the call ends with OK and throws RpcError otherwise (UNAVAILABLE, PERMISSION_DENIED,
 * CANCELLED...). Iterate it once. `send` resolves once the message is handed to the connection
 * (awaiting it applies backpressure) and rejects with RpcError when the message is over the size limit
 * or the call has ended. `end` half-closes (no more messages from this side); `cancel` ends the call
 * with CANCELLED. `done` settles with the call's status (resolves on OK).
 */
export interface BidiCall<I extends DescMessage, O extends DescMessage>
  extends AsyncIterable<MessageShape<O>> {
  send(message: MessageInitShape<I>): Promise<void>;
  end(): void;
  cancel(): void;
  readonly done: Promise<void>;
}

/**
 * A promise-returning function per unary method (`client.beginPairing({ ... })`) and a call-opening
 * function per bidi-streaming method (`client.connect()`).
 */
export type ServiceClient<R extends GenServiceMethods> = {
  [K in ServedMethodNames<R>]: R[K]["methodKind"] extends "bidi_streaming"
    ? (options?: RpcCallOptions) => BidiCall<R[K]["input"], R[K]["output"]>
    : (
        request: MessageInitShape<R[K]["input"]>,
        options?: RpcCallOptions,
      ) => Promise<MessageShape<R[K]["output"]>>;
};

/**
 * A typed client for `service` over an existing grpc-js client (one channel can carry many services).
 * Calls reject with RpcError. Server- and client-streaming methods are not part of the typed surface.
 */
export function createServiceClient<R extends GenServiceMethods>(
  service: GenService<R>,
  client: Client,
  options: CodecOptions = {},
): ServiceClient<R> {
  const maxBytes = options.maxMessageBytes ?? limits.maxRpcMessageBytes;
  const methods: Record<string, unknown> = {};
  for (const method of (service as unknown as DescService).methods) {
    const path = methodPath(method);
    if (method.methodKind === "bidi_streaming") {
      const encode = messageEncoder(method.input, maxBytes);
      const decode = messageDecoder(method.output, maxBytes);
      methods[method.localName] = (callOptions: RpcCallOptions = {}) =>
        bidiCall(client, path, encode, decode, callOptions);
      continue;
    }
    if (method.methodKind !== "unary") continue;
    const serialize = messageEncoder(method.input, maxBytes);
    const deserialize = messageDecoder(method.output, maxBytes);
    methods[method.localName] = (request: MessageInitShape<DescMessage>, callOptions: RpcCallOptions = {}) =>
      unaryCall(client, path, serialize, deserialize, request, callOptions);
  }
  return methods as ServiceClient<R>;
}

function unaryCall<I, O>(
  client: Client,
  path: string,
  serialize: (value: I) => Buffer,
  deserialize: (bytes: Buffer) => O,
  request: I,
  options: RpcCallOptions,
): Promise<O> {
  return new Promise<O>((resolve, reject) => {
    if (options.signal?.aborted) {
      reject(new RpcError(RpcStatus.CANCELLED, "the call was cancelled before it started"));
      return;
    }
    const metadata = new Metadata();
    for (const [key, value] of Object.entries(options.metadata ?? {})) metadata.set(key, value);
    const timeoutMs = options.timeoutMs ?? limits.rpcDefaultDeadlineMs;
    let onAbort: (() => void) | undefined;
    const call = client.makeUnaryRequest(
      path,
      serialize,
      deserialize,
      request,
      metadata,
      { deadline: Date.now() + timeoutMs },
      (err, response) => {
        if (onAbort) options.signal?.removeEventListener("abort", onAbort);
        if (err) reject(RpcError.fromServiceError(err));
        else if (response === undefined) reject(new RpcError(RpcStatus.INTERNAL, "empty response"));
        else resolve(response);
      },
    );
    if (options.signal) {
      onAbort = () => call.cancel();
      options.signal.addEventListener("abort", onAbort, { once: true });
    }
  });
}

function bidiCall<I, O>(
  client: Client,
  path: string,
  encode: (value: I) => Buffer,
  decode: (bytes: Buffer) => O,
  options: RpcCallOptions,
): BidiCall<DescMessage, DescMessage> {
  const metadata = new Metadata();
  for (const [key, value] of Object.entries(options.metadata ?? {})) metadata.set(key, value);
  const deadline =
    options.timeoutMs === undefined ? Number.POSITIVE_INFINITY : Date.now() + options.timeoutMs;
  // Messages are encoded by `send` (so that an oversize one rejects there, not as INTERNAL).
  const call: ClientDuplexStream<Buffer, O> = client.makeBidiStreamRequest(
    path,
    (bytes: Buffer) => bytes,
    decode,
    metadata,
    { deadline },
  );
  let final: StatusObject | undefined;
  const pending = new Set<(s: StatusObject) => void>();
  const status = new Promise<StatusObject>((resolve) => {
    call.on("status", (s: StatusObject) => {
      final = s;
      for (const onEnd of pending) onEnd(s);
      pending.clear();
      resolve(s);
    });
  });
  // A non-OK status is also emitted as 'error'; it is reported through `status`.
  call.on("error", () => {});
  const failure = (s: StatusObject): RpcError =>
    new RpcError(s.code, s.details || RpcStatus[s.code] || "error");
  const done = status.then((s) => {
    if (s.code !== RpcStatus.OK) throw failure(s);
  });
  done.catch(() => {});
  const onAbort = () => call.cancel();
  if (options.signal) {
    if (options.signal.aborted) call.cancel();
    else {
      options.signal.addEventListener("abort", onAbort, { once: true });
      void status.then(() => options.signal?.removeEventListener("abort", onAbort));
    }
  }
  let halfClosed = false;
  return {
    async *[Symbol.asyncIterator]() {
      try {
        for await (const message of call.iterator({ destroyOnReturn: false }))
          yield message as MessageShape<DescMessage>;
      } catch {
        // the status says why
      }
      await done;
    },
    send(message) {
      if (final) return Promise.reject(final.code === RpcStatus.OK ? ended() : failure(final));
      if (halfClosed) return Promise.reject(new RpcError(RpcStatus.FAILED_PRECONDITION, "end() was called"));
      let bytes: Buffer;
      try {
        bytes = encode(message as I);
      } catch (err) {
        return Promise.reject(err);
      }
      return new Promise<void>((resolve, reject) => {
        // Rejected when the call ends before the connection took the message.
        const onEnd = (s: StatusObject) => reject(s.code === RpcStatus.OK ? ended() : failure(s));
        pending.add(onEnd);
        call.write(bytes, (err: Error | null | undefined) => {
          if (!pending.delete(onEnd)) return;
          if (err) reject(new RpcError(RpcStatus.UNAVAILABLE, "the message was not sent", { cause: err }));
          else resolve();
        });
      });
    },
    end() {
      if (halfClosed) return;
      halfClosed = true;
      call.end();
    },
    cancel() {
      call.cancel();
    },
    done,
  };
}

function ended(): RpcError {
  return new RpcError(RpcStatus.FAILED_PRECONDITION, "the call has ended");
}

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
import { type Client, Metadata, type MethodDefinition, type ServiceDefinition } from "@grpc/grpc-js";
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
  /** Deadline relative to now; default `limits.rpcDefaultDeadlineMs`. */
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

/** A promise-returning function per unary method: `client.beginPairing({ ... })`. */
export type ServiceClient<R extends GenServiceMethods> = {
  [K in UnaryMethodNames<R>]: (
    request: MessageInitShape<R[K]["input"]>,
    options?: RpcCallOptions,
  ) => Promise<MessageShape<R[K]["output"]>>;
};

/**
 * A typed client for `service` over an existing grpc-js client (one channel can carry many services).
 * Calls reject with RpcError. Streaming methods are not part of the typed surface yet.
 */
export function createServiceClient<R extends GenServiceMethods>(
  service: GenService<R>,
  client: Client,
  options: CodecOptions = {},
): ServiceClient<R> {
  const maxBytes = options.maxMessageBytes ?? limits.maxRpcMessageBytes;
  const methods: Record<string, unknown> = {};
  for (const method of (service as unknown as DescService).methods) {
    if (method.methodKind !== "unary") continue;
    const path = methodPath(method);
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

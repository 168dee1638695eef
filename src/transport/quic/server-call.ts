import type { DescMessage, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import type { QUICStream } from "@matrixai/quic";
import {
  type QuicRequest,
  QuicRequestSchema,
  type QuicResponseSchema as ResponseSchema,
} from "../../gen/palyra/v1/quic_pb.js";
import { type AccessPolicy, deviceRefusal } from "../access-policy.js";
import type { ConnectionPeer } from "../tls/peer-identity.js";
import type { AuthorizePeer } from "../tls/tls-server.js";
import { QuicTransportError } from "./errors.js";
import { readFrames } from "./framing.js";
import { decodeMessage, encodeMessage, encodeResponse } from "./messages.js";
import { PROTOCOL_VERSION } from "./quic-library.js";

type ResponseInit = MessageInitShape<typeof ResponseSchema>;

/**
 * One request on a QUIC stream, as a method handler sees it: the request (its first frame), the frames
 * after it decoded with the method's schema, and a way to answer. The first answer is a QuicResponse;
 * whatever the method streams after that uses its own messages.
 */
export class QuicCall {
  readonly peer: ConnectionPeer & { identity: { kind: "device" } };
  readonly request: QuicRequest;
  readonly #frames: AsyncIterator<Uint8Array>;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  #responded = false;

  constructor(
    peer: ConnectionPeer,
    request: QuicRequest,
    frames: AsyncIterator<Uint8Array>,
    writer: WritableStreamDefaultWriter<Uint8Array>,
  ) {
    this.peer = peer as QuicCall["peer"];
    this.request = request;
    this.#frames = frames;
    this.#writer = writer;
  }

  get responded(): boolean {
    return this.#responded;
  }

  get deviceId(): string {
    return this.peer.identity.deviceId;
  }

  respond(response: ResponseInit): Promise<void> {
    this.#responded = true;
    return this.#writer.write(encodeResponse(response));
  }

  send<D extends DescMessage>(schema: D, message: MessageInitShape<D>): Promise<void> {
    return this.#writer.write(encodeMessage(schema, message));
  }

  /** The client's frames after the request, decoded; ends when the client half-closes. */
  async *messages<D extends DescMessage>(schema: D): AsyncGenerator<MessageShape<D>> {
    for (;;) {
      const next = await this.#frames.next();
      if (next.done) return;
      yield decodeMessage(schema, next.value, "the client");
    }
  }
}

/**
 * Serves one client-opened stream: reads and checks the request (version, method), re-checks the
 * connection's certificate against the allowlist (as gRPC does on every call), runs the handler, and
 * answers any failure with a structured QuicError before finishing the stream. Never throws.
 */
export async function serveStream(
  stream: QUICStream,
  peer: ConnectionPeer,
  handlers: ReadonlyMap<string, { handler: (call: QuicCall) => Promise<void>; policy: AccessPolicy }>,
  authorizePeer: AuthorizePeer,
  onError: (method: string, error: unknown) => void,
): Promise<void> {
  const writer = stream.writable.getWriter();
  const frames = readFrames(stream.readable);
  let method = "";
  let call: QuicCall | undefined;
  try {
    const first = await frames.next();
    if (first.done) throw new QuicTransportError("bad_request", "the stream ended before its request");
    const request = decodeMessage(QuicRequestSchema, first.value, "the client");
    method = request.method.slice(0, 64);
    if (request.protocolVersion !== PROTOCOL_VERSION)
      throw new QuicTransportError(
        "unsupported_version",
        `protocol version ${request.protocolVersion} is not supported; this gateway speaks ${PROTOCOL_VERSION}`,
      );
    const served = handlers.get(request.method);
    if (!served) throw new QuicTransportError("unknown_method", `unknown method ${JSON.stringify(method)}`);
    const decision = peer.leafDer ? await authorizePeer(peer.leafDer) : undefined;
    if (
      !decision?.ok ||
      peer.identity.kind !== "device" ||
      decision.device.deviceId !== peer.identity.deviceId
    )
      throw new QuicTransportError("permission_denied", "the client certificate is no longer authorized");
    const refusal = deviceRefusal(served.policy, decision.device);
    if (refusal !== undefined) throw new QuicTransportError("permission_denied", refusal);
    call = new QuicCall(peer, request, frames, writer);
    await served.handler(call);
    await writer.close();
  } catch (err) {
    const known = err instanceof QuicTransportError;
    if (!known) onError(method, err);
    const error = known ? err : new QuicTransportError("internal", "internal error");
    try {
      if (call?.responded) await writer.abort(error);
      else {
        await writer.write(encodeResponse({ error: { code: error.code, message: error.message } }));
        await writer.close();
      }
    } catch {
      // the connection is gone; nothing to tell
    }
    // Stop the peer sending what we will not read (an oversize frame, a broken request).
    await frames.return(undefined).catch(() => undefined);
    await stream.readable.cancel(error.code).catch(() => undefined);
  }
}

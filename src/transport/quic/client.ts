import { randomFillSync } from "node:crypto";
import { isIP } from "node:net";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { QUICClient, QUICStream } from "@matrixai/quic";
import { limits } from "../../common/limits.js";
import { withTimeout } from "../../common/timeout.js";
import { type GatewayMessage, GatewayMessageSchema, NodeMessageSchema } from "../../gen/palyra/v1/node_pb.js";
import {
  type HealthResponse,
  type QuicRequestSchema,
  type QuicResponse,
  QuicResponseSchema,
  QuicRequestSchema as RequestSchema,
} from "../../gen/palyra/v1/quic_pb.js";
import { GATEWAY_DNS_NAME } from "../../identity/certificate-profiles.js";
import { isQuicErrorCode, QuicTransportError } from "./errors.js";
import { readFrames } from "./framing.js";
import { decodeMessage, encodeMessage } from "./messages.js";
import { ALPN, loadQuicLibrary, PROTOCOL_VERSION, QuicCloseCode } from "./quic-library.js";

export interface QuicClientOptions {
  host: string;
  port: number;
  /** The DNS name checked against the server certificate; by default the host, or `palyra-gateway`
   *  when the host is an IP address (the library matches no IP SANs). */
  serverName?: string;
  /** The gateway CA (PEM): the only trust anchor for the server certificate. */
  pinnedCa: string;
  /** The device's certificate and key; without them the gateway refuses the handshake. */
  clientIdentity?: { certChainPem: string; keyPem: string };
  /** Handshake timeout; default `limits.quicHandshakeTimeoutMs`. */
  timeoutMs?: number;
}

export type QuicClientState = "connected" | "closed";

type NodeMessageInit = MessageInitShape<typeof NodeMessageSchema>;

/** A node session over QUIC, shaped like the gRPC Connect call so the node host runs either. */
export interface QuicSessionCall extends AsyncIterable<GatewayMessage> {
  send(message: NodeMessageInit): Promise<void>;
  /** Half-closes: the goodbye. */
  end(): void;
  cancel(): void;
  /** Settles when the gateway has finished the stream (rejects if it ended in an error). */
  readonly done: Promise<void>;
}

/**
 * A device's QUIC connection to the gateway: mutual TLS with the pinned CA, ALPN `palyra-quic-v1`,
 * no early data, a handshake timeout always set. The handshake's client-certificate verdict arrives
 * after `connect` resolves (TLS 1.3), so a refusal shows up on the first request as an error.
 */
export class QuicNodeClient {
  readonly #client: QUICClient;
  #state: QuicClientState = "connected";
  #closeError: QuicTransportError | undefined;
  readonly closed: Promise<QuicTransportError | undefined>;

  private constructor(client: QUICClient, closed: Promise<QuicTransportError | undefined>) {
    this.#client = client;
    this.closed = closed;
  }

  static async connect(options: QuicClientOptions): Promise<QuicNodeClient> {
    const { quic } = await loadQuicLibrary();
    const client = await openQuicConnection(options);
    let resolveClosed!: (error: QuicTransportError | undefined) => void;
    const closed = new Promise<QuicTransportError | undefined>((resolve) => {
      resolveClosed = resolve;
    });
    const self = new QuicNodeClient(client, closed);
    client.connection.addEventListener(quic.events.EventQUICConnectionError.name, (evt: Event) => {
      self.#closeError ??= describeLibraryError((evt as CustomEvent).detail, "gateway");
    });
    client.addEventListener(quic.events.EventQUICClientError.name, () => undefined);
    client.addEventListener(
      quic.events.EventQUICClientDestroyed.name,
      () => {
        self.#state = "closed";
        resolveClosed(self.#closeError);
      },
      { once: true },
    );
    return self;
  }

  state(): QuicClientState {
    return this.#state;
  }

  /** The gateway's health as this device sees it; the first answer also proves we were accepted. */
  async health(): Promise<HealthResponse> {
    const { response, stream } = await this.#request({
      method: "node.health",
      body: { case: "health", value: {} },
    });
    await stream.writable.close().catch(() => undefined);
    if (response.body.case !== "health")
      throw new QuicTransportError("internal", "node.health answered without health");
    return response.body.value;
  }

  /** Opens the node's control session (then Hello, heartbeats, states and results go up). */
  async openSession(): Promise<QuicSessionCall> {
    const { stream, writer, frames } = await this.#request({
      method: "node.session",
      body: { case: "session", value: {} },
    });
    const messages = async function* () {
      for (;;) {
        const next = await frames.next();
        if (next.done) return;
        yield decodeMessage(GatewayMessageSchema, next.value, "the gateway");
      }
    };
    let ended = false;
    const iterator = messages();
    let settle!: { resolve: () => void; reject: (err: unknown) => void };
    const done = new Promise<void>((resolve, reject) => {
      settle = { resolve, reject };
    });
    done.catch(() => undefined);
    return {
      send: (message) => writer.write(encodeMessage(NodeMessageSchema, message)),
      end: () => {
        if (ended) return;
        ended = true;
        writer.close().catch(() => undefined);
      },
      cancel: () => {
        ended = true;
        writer.abort().catch(() => undefined);
        stream.readable.cancel().catch(() => undefined);
      },
      done,
      [Symbol.asyncIterator]: () => ({
        next: async () => {
          try {
            const next = await iterator.next();
            if (next.done) settle.resolve();
            return next;
          } catch (err) {
            const error = this.#describe(err);
            settle.reject(error);
            throw error;
          }
        },
        return: async () => {
          settle.resolve();
          return { done: true, value: undefined };
        },
      }),
    };
  }

  /** Closes at once, without waiting out the draining period. */
  close(): void {
    if (this.#state === "closed") return;
    this.#state = "closed";
    this.#client
      .destroy({ isApp: true, errorCode: QuicCloseCode.shutdown, force: true })
      .catch(() => undefined);
  }

  async #request(request: MessageInitShape<typeof QuicRequestSchema>): Promise<{
    response: QuicResponse;
    stream: QUICStream;
    writer: WritableStreamDefaultWriter<Uint8Array>;
    frames: AsyncGenerator<Uint8Array>;
  }> {
    if (this.#state === "closed")
      throw this.#closeError ?? new QuicTransportError("unavailable", "the QUIC connection is closed");
    const stream = this.#client.connection.newStream("bidi");
    const writer = stream.writable.getWriter();
    const frames = readFrames(stream.readable);
    try {
      await writer.write(encodeMessage(RequestSchema, { ...request, protocolVersion: PROTOCOL_VERSION }));
      const first = await withTimeout(
        frames.next(),
        limits.quicRequestTimeoutMs,
        () =>
          new QuicTransportError(
            "timeout",
            `no answer to ${request.method} in ${limits.quicRequestTimeoutMs} ms`,
          ),
      );
      if (first.done)
        throw new QuicTransportError("unavailable", `the gateway ended ${request.method} without an answer`);
      const response = decodeMessage(QuicResponseSchema, first.value, "the gateway");
      if (response.error) {
        const code = isQuicErrorCode(response.error.code) ? response.error.code : "internal";
        throw new QuicTransportError(code, `gateway: ${response.error.message.slice(0, 512)}`);
      }
      return { response, stream, writer, frames };
    } catch (err) {
      stream.cancel(err);
      throw this.#describe(err);
    }
  }

  #describe(err: unknown): QuicTransportError {
    if (err instanceof QuicTransportError) return err;
    return this.#closeError ?? describeLibraryError(err, "gateway");
  }
}

/**
 * The library's client with our settings (pinned CA, ALPN, no early data, idle and keep-alive limits,
 * a handshake timeout always set), for raw streams; QuicNodeClient speaks our protocol over it.
 */
export async function openQuicConnection(options: QuicClientOptions): Promise<QUICClient> {
  const { quic, logger } = await loadQuicLibrary();
  const serverName = options.serverName ?? (isIP(options.host) ? GATEWAY_DNS_NAME : options.host);
  try {
    return await quic.QUICClient.createQUICClient(
      {
        host: options.host,
        port: options.port,
        serverName,
        logger,
        crypto: {
          ops: {
            randomBytes: async (data: ArrayBuffer) => {
              randomFillSync(new Uint8Array(data));
            },
          },
        },
        config: {
          ca: options.pinnedCa,
          ...(options.clientIdentity
            ? { cert: options.clientIdentity.certChainPem, key: options.clientIdentity.keyPem }
            : {}),
          verifyPeer: true,
          applicationProtos: [ALPN],
          enableEarlyData: false,
          maxIdleTimeout: limits.quicIdleTimeoutMs,
          keepAliveIntervalTime: limits.quicKeepAliveMs,
          initialMaxStreamsBidi: 0,
          initialMaxStreamsUni: 0,
        },
      },
      { timer: options.timeoutMs ?? limits.quicHandshakeTimeoutMs },
    );
  } catch (err) {
    throw describeLibraryError(err, `${options.host}:${options.port}`);
  }
}

/** The library's errors, in our words: refused certificates, revocation, busy, unreachable. */
export function describeLibraryError(err: unknown, where: string): QuicTransportError {
  if (err instanceof QuicTransportError) return err;
  const found = findConnectionError(err);
  if (found) {
    const reason = Buffer.from(found.reason ?? [])
      .toString("utf8")
      .slice(0, 256);
    if (found.isApp && found.errorCode === QuicCloseCode.revoked)
      return new QuicTransportError(
        "permission_denied",
        `${where} closed the connection: ${reason || "access revoked"}`,
        { cause: err },
      );
    if (found.isApp && found.errorCode === QuicCloseCode.busy)
      return new QuicTransportError("busy", `${where} is busy: ${reason || "too many connections"}`, {
        cause: err,
      });
    if (found.isApp && found.errorCode === QuicCloseCode.shutdown)
      return new QuicTransportError(
        "unavailable",
        `${where} closed the connection: ${reason || "shutting down"}`,
        { cause: err },
      );
    if (!found.isApp && found.errorCode >= 0x100 && found.errorCode <= 0x1ff)
      return new QuicTransportError(
        "unauthenticated",
        `${where} refused the TLS handshake (alert ${found.errorCode - 0x100}${alertName(found.errorCode)})`,
        { cause: err },
      );
  }
  const message = err instanceof Error ? err.message : String(err);
  return new QuicTransportError("unavailable", `QUIC connection to ${where} failed: ${message}`, {
    cause: err,
  });
}

function findConnectionError(
  err: unknown,
): { isApp: boolean; errorCode: number; reason?: Uint8Array } | undefined {
  for (
    let e = err as { data?: unknown; cause?: unknown } | undefined, depth = 0;
    e && depth < 5;
    e = e.cause as typeof e, depth++
  ) {
    const data = e.data as { isApp?: unknown; errorCode?: unknown; reason?: Uint8Array } | undefined;
    if (data && typeof data.isApp === "boolean" && typeof data.errorCode === "number")
      return {
        isApp: data.isApp,
        errorCode: data.errorCode,
        ...(data.reason ? { reason: data.reason } : {}),
      };
  }
  return undefined;
}

function alertName(code: number): string {
  const names: Record<number, string> = {
    298: ": bad certificate",
    299: ": unsupported certificate",
    300: ": certificate revoked",
    301: ": certificate expired",
    304: ": unknown CA",
    305: ": access denied",
    372: ": certificate required",
    376: ": no application protocol",
  };
  return names[code] ?? "";
}

import { randomBytes, X509Certificate } from "node:crypto";
import type { QUICConnection, QUICServer, QUICStream } from "@matrixai/quic";
import { type Clock, systemClock } from "../../common/clock.js";
import { limits } from "../../common/limits.js";
import { certificateFingerprint } from "../../crypto/fingerprint.js";
import { verifyIssuedBy } from "../../identity/verify-chain.js";
import type { AccessPolicy } from "../access-policy.js";
import type { ConnectionRegistry, RegistrableSocket } from "../tls/connection-registry.js";
import { type ConnectionPeer, normalizeAddress } from "../tls/peer-identity.js";
import type { AuthorizePeer, ServerIdentitySource, TlsIdentity } from "../tls/tls-server.js";
import {
  ALPN,
  loadQuicLibrary,
  QuicCloseCode,
  type QuicLibrary,
  serverCryptoOps,
  TlsAlert,
} from "./quic-library.js";
import { type QuicCall, serveStream } from "./server-call.js";

export type QuicServerState = "idle" | "listening" | "closing" | "closed";

/** Handles one request stream; resolving ends the stream, throwing answers with the error. */
export type QuicMethodHandler = (call: QuicCall) => Promise<void>;

/** What happened to a connection, for logs. Holds no secrets. */
export type QuicServerEvent =
  | { kind: "accepted"; peer: ConnectionPeer }
  | { kind: "refused"; reason: string; fingerprint?: string }
  | { kind: "busy"; remoteAddress: string }
  | { kind: "closed"; peer: ConnectionPeer }
  | { kind: "stream_error"; method: string; error: unknown };

export interface QuicServerOptions {
  identity: TlsIdentity;
  /** The gateway CA (PEM), the only trust anchor for client certificates. */
  caPem: string;
  authorizePeer: AuthorizePeer;
  /** Shared with the node port, so revocation reaches QUIC connections too. */
  registry: ConnectionRegistry;
  clock?: Clock;
  maxConnections?: number;
  onEvent?: (event: QuicServerEvent) => void;
}

/**
 * The gateway's QUIC endpoint (DESIGN section 6): ALPN `palyra-quic-v1`, TLS 1.3, a paired device's
 * client certificate required. The library's native chain check is off once a verifyCallback is set,
 * so ours checks the chain to our CA, validity, the clientAuth purpose and the device allowlist itself.
 * Each stream a client opens is one request (`server-call.ts`); connections are registered in the
 * shared connection registry, so revoking a device closes them at once.
 */
export class QuicGatewayServer {
  readonly #options: QuicServerOptions;
  readonly #clock: Clock;
  readonly #caDer: Uint8Array;
  readonly #handlers = new Map<string, { handler: QuicMethodHandler; policy: AccessPolicy }>();
  readonly #live = new Set<QUICConnection>();
  #server: QUICServer | undefined;
  #quic: QuicLibrary | undefined;
  #identity: TlsIdentity;
  #state: QuicServerState = "idle";

  constructor(options: QuicServerOptions) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#identity = options.identity;
    this.#caDer = new Uint8Array(new X509Certificate(options.caPem).raw);
  }

  state(): QuicServerState {
    return this.#state;
  }

  /** Serves `method` to devices the policy admits (every QUIC peer has a device certificate). */
  handle(method: string, handler: QuicMethodHandler, policy: Exclude<AccessPolicy, "anonymous">): void {
    if (this.#handlers.has(method)) throw new Error(`QUIC method ${method} is already handled`);
    this.#handlers.set(method, { handler, policy });
  }

  /** Live QUIC connections. */
  connectionCount(): number {
    return this.#live.size;
  }

  async listen(host: string, port: number): Promise<{ address: string; port: number }> {
    if (this.#state !== "idle") throw new Error(`cannot listen: the QUIC server is ${this.#state}`);
    const { quic, logger } = await loadQuicLibrary();
    this.#quic = quic;
    const server = new quic.QUICServer({
      logger,
      crypto: { key: randomBytes(32).buffer as ArrayBuffer, ops: serverCryptoOps },
      config: {
        key: this.#identity.keyPem,
        cert: this.#identity.certChainPem,
        ca: this.#options.caPem,
        verifyPeer: true,
        verifyCallback: (certs) => this.#verify(certs),
        applicationProtos: [ALPN],
        enableEarlyData: false,
        maxIdleTimeout: limits.quicIdleTimeoutMs,
        keepAliveIntervalTime: limits.quicKeepAliveMs,
        initialMaxStreamsBidi: limits.quicMaxStreams,
        // We use no unidirectional streams; a peer cannot open any.
        initialMaxStreamsUni: 0,
      },
    });
    // Every library error also arrives as an event; unhandled, some are rethrown as uncaught exceptions.
    server.addEventListener(quic.events.EventQUICServerError.name, () => undefined);
    server.addEventListener(quic.events.EventQUICServerConnection.name, (evt: Event) => {
      this.#onConnection((evt as InstanceType<typeof quic.events.EventQUICServerConnection>).detail);
    });
    await server.start({ host, port });
    this.#server = server;
    this.#state = "listening";
    return { address: server.host, port: server.port };
  }

  /** New connections use this certificate (existing ones keep theirs). */
  updateIdentity(identity: TlsIdentity): void {
    this.#identity = identity;
    this.#server?.updateConfig({ key: identity.keyPem, cert: identity.certChainPem });
  }

  follow(source: ServerIdentitySource): () => unknown {
    this.updateIdentity(source.current());
    return source.onRenew((identity) => this.updateIdentity(identity));
  }

  /** Closes every connection (the peers see the `shutdown` code) and the socket. Idempotent. */
  async close(): Promise<void> {
    if (this.#state === "closed" || this.#state === "closing") return;
    const server = this.#server;
    this.#state = "closing";
    if (server)
      await server.stop({
        isApp: true,
        errorCode: QuicCloseCode.shutdown,
        reason: Buffer.from("gateway shutting down"),
        force: true,
      });
    this.#live.clear();
    this.#state = "closed";
  }

  /** During the handshake: answers a TLS alert for anything but an allowlisted device certificate. */
  async #verify(certs: Uint8Array[]): Promise<number | undefined> {
    const leaf = certs[0];
    if (leaf === undefined) return this.#refuse(TlsAlert.certificateRequired, "no client certificate");
    const fingerprint = certificateFingerprint(leaf);
    const chain = verifyIssuedBy(leaf, this.#caDer, this.#clock.now(), { purpose: "client" });
    if (!chain.ok) {
      const alert =
        chain.reason === "expired" || chain.reason === "not_yet_valid"
          ? TlsAlert.certificateExpired
          : chain.reason === "wrong_purpose" || chain.reason === "leaf_is_ca"
            ? TlsAlert.unsupportedCertificate
            : TlsAlert.unknownCa;
      return this.#refuse(alert, chain.reason, fingerprint);
    }
    try {
      const decision = await this.#options.authorizePeer(leaf);
      if (decision.ok) return undefined;
      const alert =
        decision.reason === "certificate_expired"
          ? TlsAlert.certificateExpired
          : decision.reason === "unknown_certificate"
            ? TlsAlert.accessDenied
            : TlsAlert.certificateRevoked;
      return this.#refuse(alert, decision.reason, fingerprint);
    } catch {
      return this.#refuse(TlsAlert.accessDenied, "authorization_failed", fingerprint);
    }
  }

  #refuse(alert: number, reason: string, fingerprint?: string): number {
    this.#options.onEvent?.({ kind: "refused", reason, ...(fingerprint ? { fingerprint } : {}) });
    return alert;
  }

  #onConnection(conn: QUICConnection): void {
    const events = this.#quic!.events;
    conn.addEventListener(events.EventQUICConnectionError.name, () => undefined);
    const stop = (code: number, reason: string) =>
      conn
        .stop({ isApp: true, errorCode: code, reason: Buffer.from(reason), force: true })
        .catch(() => undefined);
    if (this.#state !== "listening") {
      void stop(QuicCloseCode.shutdown, "gateway shutting down");
      return;
    }
    if (this.#live.size >= (this.#options.maxConnections ?? limits.quicMaxConnections)) {
      this.#options.onEvent?.({ kind: "busy", remoteAddress: conn.remoteHost });
      void stop(QuicCloseCode.busy, "busy: too many connections");
      return;
    }
    this.#live.add(conn);
    // Listeners go on before any await: the library delivers streams that came with the handshake
    // right after this event, and a stream event without a listener is lost.
    const early: QUICStream[] = [];
    let serve: ((stream: QUICStream) => void) | undefined;
    conn.addEventListener(events.EventQUICConnectionStream.name, (evt: Event) => {
      const stream = (evt as InstanceType<typeof events.EventQUICConnectionStream>).detail as QUICStream;
      if (serve) serve(stream);
      else early.push(stream);
    });
    const closeListeners: (() => void)[] = [];
    let closed = false;
    let peer: ConnectionPeer | undefined;
    conn.addEventListener(
      events.EventQUICConnectionStopped.name,
      () => {
        closed = true;
        this.#live.delete(conn);
        for (const listener of closeListeners) listener();
        if (peer) this.#options.onEvent?.({ kind: "closed", peer });
      },
      { once: true },
    );
    const leaf = conn.getRemoteCertsChain()[0];
    // The handshake checked it already; this names the device (and catches a revocation in between).
    void (leaf ? this.#options.authorizePeer(leaf).catch(() => undefined) : Promise.resolve(undefined)).then(
      (decision) => {
        if (closed) return;
        if (!leaf || !decision?.ok) {
          void stop(QuicCloseCode.revoked, "the client certificate is not accepted");
          return;
        }
        const accepted: ConnectionPeer = {
          identity: {
            kind: "device",
            deviceId: decision.device.deviceId,
            fingerprint: certificateFingerprint(leaf),
          },
          leafDer: Buffer.from(leaf),
          remoteAddress: normalizeAddress(conn.remoteHost),
          remotePort: conn.remotePort,
          localAddress: normalizeAddress(conn.localHost),
          localPort: conn.localPort,
          connectedAt: this.#clock.now(),
          transport: "quic",
        };
        const handle: RegistrableSocket = {
          get destroyed() {
            return closed;
          },
          destroy: () => {
            if (!closed) void stop(QuicCloseCode.revoked, "the device's access was revoked");
          },
          once: (_event: "close", listener: () => void) => closeListeners.push(listener),
        };
        if (!this.#options.registry.add(handle, accepted)) return;
        peer = accepted;
        this.#options.onEvent?.({ kind: "accepted", peer: accepted });
        serve = (stream) => {
          void serveStream(stream, accepted, this.#handlers, this.#options.authorizePeer, (method, error) =>
            this.#options.onEvent?.({ kind: "stream_error", method, error }),
          );
        };
        for (const stream of early.splice(0)) serve(stream);
      },
    );
  }
}

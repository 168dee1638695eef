import { constants as cryptoConstants } from "node:crypto";
import type { AddressInfo, Socket } from "node:net";
import * as net from "node:net";
import * as tls from "node:tls";
import { type Clock, systemClock } from "../../common/clock.js";
import { limits } from "../../common/limits.js";
import { addressBucket } from "../../common/rate-limiter.js";
import { certificateFingerprint } from "../../crypto/fingerprint.js";
import type { PeerDecision, PeerRefusal } from "../../identity/device-registry.js";
import { TransportError } from "../errors.js";
import type { ConnectionRegistry } from "./connection-registry.js";
import { HandshakeAdmission } from "./handshake-admission.js";
import { ANONYMOUS, type ConnectionPeer, normalizeAddress, tagConnection } from "./peer-identity.js";

/**
 * The node port's TLS terminator (DESIGN section 6): TLS 1.3 only, ALPN h2, a client certificate
 * requested but not required (pairing works without one), no session resumption, and a server
 * certificate that can be swapped while running. Each handshake ends in one of three ways:
 * - no client certificate: an anonymous connection;
 * - a certificate that fails chain verification, or is not on the allowlist: the socket is destroyed
 *   (TLS 1.3 clients see a completed handshake, then the end of the connection);
 * - an allowed certificate: a device connection.
 * Accepted sockets are tagged with their peer, registered, and handed to `onSecureConnection` (the
 * gRPC server's connection injector).
 */

/** A server certificate chain (leaf first, then the CA) and its private key, both PEM. */
export interface TlsIdentity {
  certChainPem: string;
  keyPem: string;
}

/** Anything that renews the server identity; `ServerCertificateManager` fits. */
export interface ServerIdentitySource {
  current(): TlsIdentity;
  onRenew(listener: (identity: TlsIdentity) => void): () => unknown;
}

/** The allowlist check (`DeviceRegistry.authorizePeer`). */
export type AuthorizePeer = (leafDer: Uint8Array) => Promise<PeerDecision>;

export type ConnectionRefusal =
  | PeerRefusal
  | "certificate_invalid"
  | "authorization_failed"
  | "anonymous_limit";

/** What happened to a connection, for logs and metrics. Holds no secrets. */
export type TlsServerEvent =
  | { kind: "accepted"; peer: ConnectionPeer }
  | {
      kind: "refused";
      reason: ConnectionRefusal;
      detail: string;
      remoteAddress: string;
      fingerprint?: string;
      deviceId?: string;
    }
  | { kind: "handshake_failed"; detail: string; remoteAddress: string }
  | { kind: "handshake_timeout"; remoteAddress: string }
  /** More handshakes waiting than the queue holds: closed before TLS started. */
  | { kind: "handshake_shed"; remoteAddress: string }
  | { kind: "identity_updated" };

export interface NodePortTlsServerOptions {
  identity: TlsIdentity;
  /** The gateway CA (PEM): the only trust anchor for client certificates. */
  caPem: string;
  authorizePeer: AuthorizePeer;
  registry: ConnectionRegistry;
  /** Receives each accepted socket, already tagged and registered. */
  onSecureConnection: (socket: tls.TLSSocket, peer: ConnectionPeer) => void;
  onEvent?: (event: TlsServerEvent) => void;
  clock?: Clock;
  handshakeTimeoutMs?: number;
  /** Anonymous connections open at once per source address (IPv6 by /64), and in all. */
  anonymousPerAddress?: number;
  anonymousTotal?: number;
  /** TLS handshakes run at once, and waiting beyond those (see HandshakeAdmission). */
  handshakesInFlight?: number;
  handshakesQueued?: number;
  /** An admitted handshake must finish within this, or its socket is closed and the slot freed. */
  admittedHandshakeMs?: number;
}

export class NodePortTlsServer {
  /** Owns the listening socket; hands each admitted TCP connection to the TLS server. */
  readonly #listener: net.Server;
  readonly #server: tls.Server;
  readonly #admission: HandshakeAdmission;
  /** Raw sockets whose handshake runs, by remote address and port (to release their admission). */
  readonly #handshaking = new Map<string, Socket>();
  readonly #caPem: string;
  readonly #authorizePeer: AuthorizePeer;
  readonly #registry: ConnectionRegistry;
  readonly #onSecureConnection: NodePortTlsServerOptions["onSecureConnection"];
  readonly #onEvent: (event: TlsServerEvent) => void;
  readonly #clock: Clock;
  /** Every TCP connection, from accept to close, including ones still in the handshake. */
  readonly #sockets = new Set<Socket>();
  /** Handshake deadlines, by the TCP connection's remote address and port (the TLS socket that
   *  completes the handshake is another object than the raw socket accepted). */
  readonly #handshakeTimers = new Map<string, NodeJS.Timeout>();
  readonly #handshakeTimeoutMs: number;
  readonly #admittedHandshakeMs: number;
  readonly #anonymousPerAddress: number;
  readonly #anonymousTotal: number;
  /** Open anonymous connections per address bucket. */
  readonly #anonymous = new Map<string, number>();
  #anonymousCount = 0;
  #listening = false;
  #closing = false;
  #closed: Promise<void> | undefined;

  constructor(options: NodePortTlsServerOptions) {
    this.#caPem = options.caPem;
    this.#authorizePeer = options.authorizePeer;
    this.#registry = options.registry;
    this.#onSecureConnection = options.onSecureConnection;
    this.#onEvent = options.onEvent ?? (() => {});
    this.#clock = options.clock ?? systemClock;
    this.#handshakeTimeoutMs = options.handshakeTimeoutMs ?? limits.tlsHandshakeTimeoutMs;
    this.#admittedHandshakeMs = options.admittedHandshakeMs ?? limits.tlsAdmittedHandshakeMs;
    this.#anonymousPerAddress = options.anonymousPerAddress ?? limits.anonymousConnectionsPerAddress;
    this.#anonymousTotal = options.anonymousTotal ?? limits.anonymousConnectionsTotal;
    const contextOptions = this.#contextOptions(options.identity);
    validateContext(contextOptions);
    this.#server = tls.createServer({
      ...contextOptions,
      requestCert: true,
      // Verification still runs (socket.authorized); we decide what a failure means ourselves.
      rejectUnauthorized: false,
      ALPNProtocols: ["h2"],
      handshakeTimeout: this.#handshakeTimeoutMs,
    });
    this.#admission = new HandshakeAdmission({
      maxInFlight: options.handshakesInFlight ?? limits.tlsHandshakesInFlight,
      maxQueued: options.handshakesQueued ?? limits.tlsHandshakesQueued,
      admit: (socket) => {
        this.#handshaking.set(socketKey(socket), socket);
        // A slot is held only this long: a peer that stalls mid-handshake cannot keep one.
        const budget = setTimeout(() => {
          if (this.#handshaking.get(socketKey(socket)) === socket) socket.destroy();
        }, this.#admittedHandshakeMs);
        budget.unref();
        socket.once("close", () => clearTimeout(budget));
        // The TLS server wraps the socket and starts the handshake (the standard hand-over of a socket
        // to a net.Server); it reads the ClientHello bytes put back into the paused socket first.
        this.#server.emit("connection", socket);
      },
      onShed: (socket) =>
        this.#onEvent({ kind: "handshake_shed", remoteAddress: normalizeAddress(socket.remoteAddress) }),
    });
    this.#listener = net.createServer({ pauseOnConnect: true, noDelay: true }, (socket) => {
      this.#sockets.add(socket);
      // An absolute deadline from accept (waiting for admission counts): Node's handshakeTimeout only
      // reports (tlsClientError) and leaves the socket open, and it is an inactivity timer that a peer
      // trickling bytes never trips.
      const key = socketKey(socket);
      const timer = setTimeout(() => {
        this.#handshakeTimers.delete(key);
        if (socket.destroyed) return;
        socket.destroy();
        this.#onEvent({ kind: "handshake_timeout", remoteAddress: normalizeAddress(socket.remoteAddress) });
      }, this.#handshakeTimeoutMs);
      timer.unref();
      this.#handshakeTimers.set(key, timer);
      socket.once("close", () => {
        this.#sockets.delete(socket);
        clearTimeout(timer);
        if (this.#handshakeTimers.get(key) === timer) this.#handshakeTimers.delete(key);
        if (this.#handshaking.get(key) === socket) this.#handshaking.delete(key);
      });
      if (this.#closing) {
        socket.destroy();
        return;
      }
      // A connection waits for admission only once its first bytes (the ClientHello) are here: a peer
      // that opens TCP and sends nothing never takes a handshake slot or a place in line; its deadline
      // ends it.
      socket.once("data", (first: Buffer) => {
        socket.pause();
        socket.unshift(first);
        this.#admission.offer(socket);
      });
      socket.resume();
    });
    this.#server.on("secureConnection", (socket) => this.#onSecure(socket));
    this.#server.on("tlsClientError", (err, socket) => {
      // A failed handshake is over: nothing may keep its socket open.
      this.#handshakeEnded(socket);
      socket.destroy();
      this.#onEvent({
        kind: "handshake_failed",
        detail: (err as NodeJS.ErrnoException).code ?? err.message,
        remoteAddress: normalizeAddress(socket.remoteAddress),
      });
    });
  }

  /**
   * Replaces the server certificate and key for new handshakes; live connections keep theirs. Throws
   * (and keeps the old identity) if the PEMs are unusable, e.g. a key that does not match the leaf.
   */
  updateIdentity(certChainPem: string, keyPem: string): void {
    const contextOptions = this.#contextOptions({ certChainPem, keyPem });
    validateContext(contextOptions);
    // setSecureContext also makes new session-ticket keys, though tickets are off anyway.
    this.#server.setSecureContext(contextOptions);
    this.#onEvent({ kind: "identity_updated" });
  }

  /** Applies each renewal of `source` (errors go to `onError`); returns the unsubscribe function. */
  follow(source: ServerIdentitySource, onError: (err: unknown) => void = () => {}): () => void {
    const unsubscribe = source.onRenew((identity) => {
      try {
        this.updateIdentity(identity.certChainPem, identity.keyPem);
      } catch (err) {
        onError(err);
      }
    });
    return () => {
      unsubscribe();
    };
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    if (this.#listening || this.#closing)
      return Promise.reject(
        new TransportError("invalid_state", "the TLS server is already listening or closed"),
      );
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => {
        this.#listener.off("listening", onListening);
        reject(
          new TransportError("listen_failed", `cannot listen on ${host}:${port}: ${err.message}`, {
            cause: err,
          }),
        );
      };
      const onListening = () => {
        this.#listener.off("error", onError);
        this.#listening = true;
        resolve(this.#listener.address() as AddressInfo);
      };
      this.#listener.once("error", onError);
      this.#listener.once("listening", onListening);
      this.#listener.listen({ host, port, exclusive: true, backlog: limits.nodePortListenBacklog });
    });
  }

  address(): AddressInfo | undefined {
    const address = this.#listener.address();
    return address !== null && typeof address === "object" ? address : undefined;
  }

  /** Connections from TCP accept to close (including handshakes in progress). */
  get openSocketCount(): number {
    return this.#sockets.size;
  }

  /** Anonymous connections open now. */
  get anonymousCount(): number {
    return this.#anonymousCount;
  }

  /**
   * Stops accepting, waits up to `graceMs` for open connections to end (the caller asks them to, e.g.
   * with HTTP/2 GOAWAY), then destroys what is left. Resolves once every connection is closed.
   */
  close(graceMs: number = limits.shutdownGraceMs): Promise<void> {
    if (this.#closed) return this.#closed;
    this.#closing = true;
    const timer = setTimeout(() => {
      for (const socket of this.#sockets) socket.destroy();
    }, graceMs);
    const stopped = this.#listening
      ? new Promise<void>((resolve) => this.#listener.close(() => resolve()))
      : Promise.resolve();
    // The server's own close can come before the last sockets' 'close' events: wait for those too.
    this.#closed = stopped
      .then(() => Promise.all([...this.#sockets].map((s) => new Promise((r) => s.once("close", r)))))
      .then(() => {
        clearTimeout(timer);
        this.#listening = false;
      });
    return this.#closed;
  }

  #contextOptions(identity: TlsIdentity): tls.SecureContextOptions {
    if (typeof identity?.certChainPem !== "string" || typeof identity.keyPem !== "string")
      throw new TransportError("invalid_config", "the server identity needs a PEM certificate chain and key");
    return {
      cert: identity.certChainPem,
      key: identity.keyPem,
      ca: [this.#caPem],
      minVersion: "TLSv1.3",
      maxVersion: "TLSv1.3",
      // No resumption: no tickets, and Node keeps no session cache unless asked ('newSession' events,
      // which we never listen to). Every connection is a full handshake with a fresh certificate check.
      secureOptions: cryptoConstants.SSL_OP_NO_TICKET,
    };
  }

  #onSecure(socket: tls.TLSSocket): void {
    // Errors on a socket we drop, or that HTTP/2 has not claimed yet, must not crash the process.
    socket.on("error", () => {});
    const key = socketKey(socket);
    clearTimeout(this.#handshakeTimers.get(key));
    this.#handshakeTimers.delete(key);
    this.#handshakeEnded(socket);
    const remoteAddress = normalizeAddress(socket.remoteAddress);
    if (this.#closing) {
      socket.destroy();
      return;
    }
    // Not getPeerX509Certificate(), though it looks cheaper: on Node 20 its first call on a connection
    // costs about 2.5 times this one (measured), and on a client it also drops the issuer from the
    // peer chain that later calls see.
    const raw = socket.getPeerCertificate()?.raw;
    if (!raw || raw.length === 0) {
      this.#acceptAnonymous(socket, remoteAddress);
      return;
    }
    const fingerprint = certificateFingerprint(raw);
    if (!socket.authorized) {
      this.#refuse(socket, {
        reason: "certificate_invalid",
        detail: String(socket.authorizationError ?? "verification failed"),
        remoteAddress,
        fingerprint,
      });
      return;
    }
    // Data the client sends meanwhile stays buffered in the paused socket; HTTP/2 reads it on hand-over.
    this.#authorizePeer(raw).then(
      (decision) => {
        if (socket.destroyed) return;
        if (!decision.ok) {
          this.#refuse(socket, {
            reason: decision.reason,
            detail: `client certificate refused: ${decision.reason}`,
            remoteAddress,
            fingerprint,
            ...(decision.deviceId === undefined ? {} : { deviceId: decision.deviceId }),
          });
          return;
        }
        this.#accept(socket, {
          identity: { kind: "device", deviceId: decision.device.deviceId, fingerprint },
          leafDer: Buffer.from(raw),
        });
      },
      (err: unknown) => {
        this.#refuse(socket, {
          reason: "authorization_failed",
          detail: `the allowlist check failed: ${(err as Error)?.message ?? String(err)}`,
          remoteAddress,
          fingerprint,
        });
      },
    );
  }

  /** Frees the handshake's admission slot (the next waiting connection starts its handshake). */
  #handshakeEnded(socket: Socket): void {
    const key = socketKey(socket);
    const raw = this.#handshaking.get(key);
    if (!raw) return;
    this.#handshaking.delete(key);
    this.#admission.release(raw);
  }

  /** Handshakes running and waiting for admission. */
  get handshakes(): { inFlight: number; queued: number } {
    return { inFlight: this.#admission.inFlight, queued: this.#admission.queued };
  }

  /** Anonymous connections are capped per address and in all: they cost nothing to open. */
  #acceptAnonymous(socket: tls.TLSSocket, remoteAddress: string): void {
    const bucket = addressBucket(remoteAddress);
    const here = this.#anonymous.get(bucket) ?? 0;
    if (here >= this.#anonymousPerAddress || this.#anonymousCount >= this.#anonymousTotal) {
      this.#refuse(socket, {
        reason: "anonymous_limit",
        detail:
          here >= this.#anonymousPerAddress
            ? `more than ${this.#anonymousPerAddress} anonymous connections from this address`
            : `more than ${this.#anonymousTotal} anonymous connections`,
        remoteAddress,
      });
      return;
    }
    this.#anonymous.set(bucket, here + 1);
    this.#anonymousCount++;
    socket.once("close", () => {
      this.#anonymousCount--;
      const left = (this.#anonymous.get(bucket) ?? 1) - 1;
      if (left <= 0) this.#anonymous.delete(bucket);
      else this.#anonymous.set(bucket, left);
    });
    this.#accept(socket, { identity: ANONYMOUS });
  }

  #accept(socket: tls.TLSSocket, peer: Pick<ConnectionPeer, "identity" | "leafDer">): void {
    if (this.#closing) {
      socket.destroy();
      return;
    }
    const full: ConnectionPeer = {
      ...peer,
      remoteAddress: normalizeAddress(socket.remoteAddress),
      remotePort: socket.remotePort ?? 0,
      localAddress: normalizeAddress(socket.localAddress),
      localPort: socket.localPort ?? 0,
      connectedAt: this.#clock.now(),
    };
    tagConnection(socket, full);
    if (!this.#registry.add(socket, full)) return;
    this.#onEvent({ kind: "accepted", peer: full });
    this.#onSecureConnection(socket, full);
  }

  #refuse(socket: tls.TLSSocket, event: Omit<Extract<TlsServerEvent, { kind: "refused" }>, "kind">): void {
    socket.destroy();
    this.#onEvent({ kind: "refused", ...event });
  }
}

function socketKey(socket: Socket): string {
  return `${socket.remoteAddress}|${socket.remotePort}`;
}

function validateContext(options: tls.SecureContextOptions): void {
  try {
    tls.createSecureContext(options);
  } catch (err) {
    throw new TransportError(
      "invalid_config",
      `the server certificate or key is unusable: ${(err as Error).message}`,
      { cause: err },
    );
  }
}

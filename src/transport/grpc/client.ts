import { X509Certificate } from "node:crypto";
import { isIP, type Socket } from "node:net";
import * as tls from "node:tls";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import { ChannelCredentials, Client, credentials as grpcCredentials } from "@grpc/grpc-js";
import { type Clock, systemClock } from "../../common/clock.js";
import { limits } from "../../common/limits.js";
import { constantTimeEqual } from "../../crypto/constant-time.js";
import { certificateFingerprint, spkiDigest } from "../../crypto/fingerprint.js";
import { verifyIssuedBy } from "../../identity/verify-chain.js";
import { TransportError } from "../errors.js";
import { PinnedCa } from "./pinned-ca.js";
import { type CodecOptions, createServiceClient, type ServiceClient } from "./service-definition.js";

/**
 * A gRPC client for the node port. It does its own TLS (through a ChannelCredentials whose connector
 * we implement) so that it can record the server's leaf certificate of the very connection that carries
 * the calls (DESIGN section 5: the pairing client checks that it chains to the CA it receives).
 * - With a pinned CA: OpenSSL verifies the chain against it, and `checkServerIdentity` checks the host
 *   name and `verifyIssuedBy` (validity, serverAuth EKU). A mismatch fails the connection before any
 *   request is sent (the call fails with UNAVAILABLE).
 * - Without one (first contact with a PIN code): any server certificate is accepted and recorded.
 * A client certificate can be given for mutual TLS. TLS 1.3 only, ALPN h2.
 *
 * Why not `credentials.createSsl(…, { checkServerIdentity })` alone: Node calls `checkServerIdentity`
 * only after the chain verified, so without a pinned CA it never runs and nothing could be recorded.
 */

export interface CapturedServerCertificate {
  /** The server's leaf certificate (DER) on the connection. */
  der: Buffer;
  /** Lowercase hex SHA-256 of `der`. */
  fingerprint: string;
  /** Whether the connection verified it against a pinned CA, or accepted it unverified (first contact). */
  verification: "pinned_ca" | "none";
  capturedAt: number;
}

export interface ClientIdentity {
  /** Client certificate chain (leaf first), PEM. */
  certChainPem: string;
  keyPem: string;
}

export interface NodePortClientOptions extends CodecOptions {
  host: string;
  port: number;
  /** Name the server certificate must carry (and SNI when it is a DNS name); default `host`. */
  serverName?: string;
  /** The gateway CA to require, PEM or DER. Without it, any server certificate is accepted and recorded. */
  pinnedCa?: string | Uint8Array;
  clientIdentity?: ClientIdentity;
  /**
   * SHA-256 of the CA's SPKI, from a QR code: the server must send a chain whose CA has exactly this key
   * and that CA must have issued its leaf, checked before the connection is handed to gRPC (so before
   * the first request byte).
   */
  pinnedCaSpki?: Uint8Array;
  clock?: Clock;
}

type SecureConnector = ReturnType<ChannelCredentials["_createSecureConnector"]>;
type ConnectorArgs = Parameters<ChannelCredentials["_createSecureConnector"]>;

/** grpc-js channel credentials whose TLS connection is made by `connect`. Never shared between channels. */
class OwnTlsCredentials extends ChannelCredentials {
  readonly #connect: (socket: Socket) => Promise<tls.TLSSocket>;

  constructor(connect: (socket: Socket) => Promise<tls.TLSSocket>) {
    super();
    this.#connect = connect;
  }

  _isSecure(): boolean {
    return true;
  }

  _equals(other: ChannelCredentials): boolean {
    return other === this;
  }

  _createSecureConnector(
    _target: ConnectorArgs[0],
    _options: ConnectorArgs[1],
    callCredentials?: ConnectorArgs[2],
  ): SecureConnector {
    const callCreds = callCredentials ?? grpcCredentials.createEmpty();
    return {
      connect: async (socket: Socket) => ({ socket: await this.#connect(socket), secure: true }),
      waitForReady: () => Promise.resolve(),
      getCallCredentials: () => callCreds,
      destroy: () => {},
    };
  }
}

export class NodePortClient {
  readonly #client: Client;
  readonly #serverName: string;
  readonly #pinnedCa: PinnedCa | undefined;
  readonly #identity: ClientIdentity | undefined;
  readonly #pinnedCaSpki: Buffer | undefined;
  readonly #clock: Clock;
  readonly #codec: CodecOptions;
  #captured: CapturedServerCertificate | undefined;
  #connections = 0;
  #closed = false;

  constructor(options: NodePortClientOptions) {
    if (!Number.isInteger(options.port) || options.port <= 0 || options.port > 65_535)
      throw new TransportError("invalid_config", "the port must be 1 to 65535");
    this.#serverName = options.serverName ?? options.host;
    this.#identity = options.clientIdentity;
    this.#pinnedCaSpki = options.pinnedCaSpki ? Buffer.from(options.pinnedCaSpki) : undefined;
    this.#clock = options.clock ?? systemClock;
    this.#codec = { maxMessageBytes: options.maxMessageBytes ?? limits.maxRpcMessageBytes };
    this.#pinnedCa = options.pinnedCa === undefined ? undefined : PinnedCa.of(options.pinnedCa);
    const target =
      isIP(options.host) === 6 ? `[${options.host}]:${options.port}` : `${options.host}:${options.port}`;
    const maxBytes = this.#codec.maxMessageBytes as number;
    this.#client = new Client(target, new OwnTlsCredentials((socket) => this.#connectTls(socket)), {
      "grpc.max_receive_message_length": maxBytes,
      "grpc.max_send_message_length": maxBytes,
      // Our own subchannels: never reuse a connection made for another client (other pins, other keys).
      "grpc.use_local_subchannel_pool": 1,
    });
  }

  /** A typed client for one service over this connection. */
  service<R extends GenServiceMethods>(service: GenService<R>): ServiceClient<R> {
    return createServiceClient(service, this.#client, this.#codec);
  }

  /**
   * The server's leaf certificate on the most recent connection (grpc-js reconnects on its own; each new
   * connection replaces it). Undefined before the first connection succeeded.
   */
  capturedServerCertificate(): CapturedServerCertificate | undefined {
    return this.#captured;
  }

  /** How many TLS connections this client has completed. */
  get connectionCount(): number {
    return this.#connections;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#client.close();
  }

  #connectTls(socket: Socket): Promise<tls.TLSSocket> {
    return new Promise((resolve, reject) => {
      const pinned = this.#pinnedCa !== undefined;
      // The leaf Node hands checkServerIdentity (pinned CA only), so it is not converted a second time.
      let presented: Buffer | undefined;
      const tlsSocket = tls.connect({
        socket,
        // SNI carries DNS names only; for an IP address the name is still checked against the IP SANs.
        ...(isIP(this.#serverName) === 0 ? { servername: this.#serverName } : {}),
        host: this.#serverName,
        ALPNProtocols: ["h2"],
        minVersion: "TLSv1.3",
        ...(this.#pinnedCa ? { ca: [this.#pinnedCa.pem] } : {}),
        rejectUnauthorized: pinned,
        checkServerIdentity: (_host, certificate) => {
          presented = certificate.raw;
          return this.#checkPinned(certificate);
        },
        ...(this.#identity ? { cert: this.#identity.certChainPem, key: this.#identity.keyPem } : {}),
      });
      const onError = (err: Error) => reject(err);
      tlsSocket.once("error", onError);
      tlsSocket.once("secureConnect", () => {
        tlsSocket.off("error", onError);
        if (tlsSocket.alpnProtocol !== "h2") {
          tlsSocket.destroy();
          reject(new TransportError("invalid_state", "the server did not agree to HTTP/2 (ALPN h2)"));
          return;
        }
        const der = presented ?? tlsSocket.getPeerCertificate()?.raw;
        if (!der || der.length === 0) {
          tlsSocket.destroy();
          reject(new TransportError("invalid_state", "the server sent no certificate"));
          return;
        }
        const spkiProblem = this.#checkSpkiPin(tlsSocket);
        if (spkiProblem) {
          tlsSocket.destroy();
          reject(new TransportError("invalid_state", spkiProblem));
          return;
        }
        this.#captured = {
          der: Buffer.from(der),
          fingerprint: certificateFingerprint(der),
          verification: pinned || this.#pinnedCaSpki ? "pinned_ca" : "none",
          capturedAt: this.#clock.now(),
        };
        this.#connections++;
        resolve(tlsSocket);
      });
    });
  }

  /** With an SPKI pin: the error text if the presented chain's CA is not the pinned one, else undefined. */
  #checkSpkiPin(socket: tls.TLSSocket): string | undefined {
    if (!this.#pinnedCaSpki) return undefined;
    const leaf = socket.getPeerCertificate(true);
    const issuer = leaf.issuerCertificate;
    if (!issuer?.raw || issuer.raw.equals(leaf.raw))
      return "the server sent no CA certificate to check against the pinned CA";
    const presented = spkiDigest(new X509Certificate(issuer.raw));
    if (!constantTimeEqual(presented, this.#pinnedCaSpki))
      return "the server's CA does not match the pinned CA (QR code): refusing to talk to it";
    const verdict = verifyIssuedBy(leaf.raw, issuer.raw, this.#clock.now(), { purpose: "server" });
    return verdict.ok
      ? undefined
      : `the server certificate is not valid under the pinned CA (${verdict.reason})`;
  }

  /** Runs only after OpenSSL verified the chain, i.e. only with a pinned CA. */
  #checkPinned(certificate: tls.PeerCertificate): Error | undefined {
    const hostError = tls.checkServerIdentity(this.#serverName, certificate);
    if (hostError) return hostError;
    if (this.#pinnedCa === undefined) return undefined;
    const result = this.#pinnedCa.verifyServer(certificate, this.#clock.now());
    if (!result.ok)
      return new Error(`the server certificate does not chain to the pinned CA: ${result.detail}`);
    return undefined;
  }
}

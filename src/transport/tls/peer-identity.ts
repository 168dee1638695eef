import { isIPv4 } from "node:net";

/**
 * Who is at the other end of a node-port connection, decided once at connection time (DESIGN
 * section 6): no client certificate -> anonymous (pairing RPCs only); a certificate that verified and is
 * on the allowlist -> that device. Anything else never becomes a connection.
 */
export type PeerIdentity =
  | { readonly kind: "anonymous" }
  | {
      readonly kind: "device";
      readonly deviceId: string;
      /** Lowercase hex SHA-256 of the peer's leaf certificate DER. */
      readonly fingerprint: string;
    };

export const ANONYMOUS: PeerIdentity = Object.freeze({ kind: "anonymous" });

/** What the TLS server records about an accepted connection. */
export interface ConnectionPeer {
  readonly identity: PeerIdentity;
  /** The leaf certificate DER for device connections (re-checked against the allowlist on each RPC). */
  readonly leafDer?: Buffer;
  /** The peer's address (an IPv4-mapped IPv6 address is given in its IPv4 form) and port. */
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  readonly connectedAt: number;
  /** Absent for the node port's TLS over TCP. */
  readonly transport?: "quic";
}

/**
 * The connection's peer is stored as a symbol property on the TLSSocket. Not a WeakMap: inside an HTTP/2
 * session, `session.socket` is a Proxy of the TLSSocket, which is a different object as a map key, but
 * forwards property reads (including symbols) to the real socket.
 */
const kConnectionPeer = Symbol("palyra.connectionPeer");

/** The socket itself, readable through that Proxy, whose own `destroy` throws (Node forbids it). */
const kSocket = Symbol("palyra.socket");

interface Tagged {
  [kConnectionPeer]?: ConnectionPeer;
  [kSocket]?: { destroy(): void };
}

export function tagConnection(socket: { destroy(): void }, peer: ConnectionPeer): void {
  (socket as Tagged)[kConnectionPeer] = Object.freeze(peer);
  (socket as Tagged)[kSocket] = socket;
}

/** The tagged socket behind an HTTP/2 session's socket Proxy (or the socket itself). */
export function underlyingSocket(socket: object | null | undefined): { destroy(): void } | undefined {
  if (socket === null || socket === undefined) return undefined;
  return (socket as Tagged)[kSocket];
}

/** The peer recorded on a socket (or on the HTTP/2 proxy of one); undefined if it was never accepted. */
export function connectionPeerOf(socket: object | null | undefined): ConnectionPeer | undefined {
  if (socket === null || socket === undefined) return undefined;
  return (socket as Tagged)[kConnectionPeer];
}

export function peerIdentityOf(socket: object | null | undefined): PeerIdentity | undefined {
  return connectionPeerOf(socket)?.identity;
}

/** `::ffff:192.0.2.1` -> `192.0.2.1`, so rate limits see one address per IPv4 client on dual-stack. */
export function normalizeAddress(address: string | undefined): string {
  if (address === undefined) return "";
  const lower = address.toLowerCase();
  if (lower.startsWith("::ffff:") && isIPv4(lower.slice(7))) return lower.slice(7);
  return address;
}

export function describePeer(identity: PeerIdentity): string {
  return identity.kind === "device" ? `device:${identity.deviceId}` : "anonymous";
}

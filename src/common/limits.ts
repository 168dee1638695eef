/**
 * Every timeout and limit in one place, with the invariants between them beside them. Modules import
 * from here instead of writing numbers inline; `checkLimitInvariants` runs in a unit test.
 */

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

export const limits = {
  // --- certificates (DESIGN section 4) ---
  /** CA validity. Must outlive any leaf it signs. */
  caLifetimeMs: 3650 * DAY,
  /** Leaf notBefore is backdated this much to absorb clock skew between gateway and devices. */
  certificateBackdateMs: 5 * MINUTE,
  serverCertificateLifetimeMs: DAY,
  clientCertificateDefaultLifetimeMs: DAY,
  clientCertificateMinLifetimeMs: 10 * MINUTE,
  clientCertificateMaxLifetimeMs: 30 * DAY,
  /** Renewal at this fraction of a leaf's life (server in-process, devices over mTLS). */
  renewAtFraction: 2 / 3,
  /** After rotation the previous certificate stays valid this long. Must be shorter than the shortest leaf life. */
  rotationOverlapMs: 5 * MINUTE,
  /** A CSR larger than this is refused before parsing. */
  maxCsrBytes: 4096,
  /** A certificate larger than this is refused before parsing. */
  maxCertificateBytes: 16 * 1024,
  /** Most configured DNS names, and most configured IP addresses, on the server certificate (each). */
  maxServerAltNames: 32,

  // --- secret store (DESIGN section 4) ---
  /** Longest secret-store key name (its base64url file name must stay under 255 bytes). */
  maxSecretKeyLength: 128,
  /** Largest value the secret store holds (keys, certificates, small records). */
  maxSecretValueBytes: 1024 * 1024,
  /** scrypt cost for the passphrase-derived key-encryption key (N=2^17, r=8: ~128 MiB, ~0.3 s). */
  scryptN: 2 ** 17,
  scryptR: 8,
  scryptP: 1,
  scryptMaxmem: 256 * 1024 * 1024,
  /** How long a keyring probe may take before the keyring counts as unavailable. */
  keyringProbeTimeoutMs: 5_000,
  /** Temp files a crashed writer left in a secret store are removed on open once older than this (a
   *  younger one may belong to a live writer in another process). */
  secretStoreStaleTempMs: 10 * MINUTE,

  // --- pairing (DESIGN section 5) ---
  pairingCodeDefaultTtlMs: 10 * MINUTE,
  pairingCodeMinTtlMs: MINUTE,
  pairingCodeMaxTtlMs: 24 * HOUR,
  pairingDefaultMaxAttempts: 5,
  pairingMinAttempts: 1,
  pairingMaxAttempts: 20,
  /** PBKDF2 cost: PINs are low-entropy, so the stolen-verifier guess cost matters; QR secrets are 128-bit. */
  pinPbkdfIterations: 100_000,
  qrPbkdfIterations: 1_000,
  /** A session must finish Begin..Complete within this. Shorter than any code TTL. */
  pairingSessionLifeMs: 5 * MINUTE,
  maxLivePairingSessions: 10_000,
  /** BeginPairing rate limits (per source address, and overall) per window. Per-address <= global. */
  beginPerAddressPerWindow: 10,
  beginGlobalPerWindow: 1024,
  beginRateWindowMs: MINUTE,
  pairingRequestTtlMs: 10 * MINUTE,
  /** Status long-poll; must stay under common proxy idle timeouts (30 s). */
  statusLongPollMs: 25_000,
  /** A signed status poll's timestamp must be within this of the gateway's clock. */
  statusSignatureSkewMs: 5 * MINUTE,
  /** Longest accepted device name / platform / client kind strings. */
  maxDeviceNameLength: 128,
  maxPlatformLength: 64,

  // --- transport (DESIGN section 6) ---
  /** Largest protobuf message accepted or sent on the node port, either direction. Checked from the gRPC
   *  length prefix before the body is buffered, and again when decoding. Must hold the largest request we
   *  define (a Dispatch or CapabilityResult carrying a 4 MiB payload) with room for its envelope. */
  maxRpcMessageBytes: 5 * 1024 * 1024,
  /** A TLS handshake (TCP accept to secure connection) must finish within this on the node port. */
  tlsHandshakeTimeoutMs: 10_000,
  /** Default deadline of a unary RPC made by our clients. Longer than the status long-poll. */
  rpcDefaultDeadlineMs: 30_000,

  // --- node runtime (DESIGN section 7) ---
  invokeDefaultTimeoutMs: 30_000,
  invokeMinTimeoutMs: 1_000,
  invokeMaxTimeoutMs: 120_000,
  invokeDefaultPayloadBytes: 64 * 1024,
  /** Largest capability input or output; must fit in one RPC message with room for the envelope. */
  invokeMaxPayloadBytes: 4 * 1024 * 1024,
  /** Requests in flight per node before invoke answers RESOURCE_EXHAUSTED / HTTP 429. */
  nodeQueueLimit: 32,
  heartbeatIntervalMs: 10_000,
  /** A node is stale after this many heartbeat intervals without one. */
  stalePresenceIntervals: 3,
  terminalRequestRetentionMs: 7 * DAY,

  // --- daemon ---
  /** Grace period for in-flight work on SIGINT/SIGTERM before the process exits anyway. */
  shutdownGraceMs: 5_000,
  /** Largest config file read. */
  maxConfigBytes: 64 * 1024,
} as const;

export type Limits = typeof limits;

/** Throws if the limits contradict each other. Called from a test, and cheap enough to call at start. */
export function checkLimitInvariants(l: Limits = limits): void {
  const fail = (why: string) => {
    throw new Error(`limit invariant broken: ${why}`);
  };
  if (l.caLifetimeMs <= l.clientCertificateMaxLifetimeMs)
    fail("the CA must outlive every client certificate");
  if (l.caLifetimeMs <= l.serverCertificateLifetimeMs) fail("the CA must outlive the server certificate");
  // At most two certificates per device are ever trusted: the overlap of one rotation ends before the
  // new certificate reaches its own renewal point.
  if (l.rotationOverlapMs >= l.clientCertificateMinLifetimeMs * l.renewAtFraction)
    fail("the rotation overlap must end before the renewed certificate's own renewal point");
  if (l.clientCertificateMinLifetimeMs > l.clientCertificateDefaultLifetimeMs)
    fail("default client life below minimum");
  if (l.clientCertificateDefaultLifetimeMs > l.clientCertificateMaxLifetimeMs)
    fail("default client life above maximum");
  if (!(l.renewAtFraction > 0 && l.renewAtFraction < 1))
    fail("renewal must happen inside a certificate's life");
  if (l.statusLongPollMs >= l.pairingRequestTtlMs)
    fail("a status long-poll must end before its request expires");
  if (l.beginPerAddressPerWindow > l.beginGlobalPerWindow)
    fail("per-address begin limit above the global one");
  if (
    l.pairingDefaultMaxAttempts < l.pairingMinAttempts ||
    l.pairingDefaultMaxAttempts > l.pairingMaxAttempts
  )
    fail("default max attempts outside its range");
  if (l.pairingCodeDefaultTtlMs < l.pairingCodeMinTtlMs || l.pairingCodeDefaultTtlMs > l.pairingCodeMaxTtlMs)
    fail("default code TTL outside its range");
  if (l.rpcDefaultDeadlineMs <= l.statusLongPollMs)
    fail("the default RPC deadline must outlast the pairing status long-poll");
  if (l.invokeMaxPayloadBytes + 64 * 1024 > l.maxRpcMessageBytes)
    fail("a capability payload at its maximum must fit in one RPC message with its envelope");
  if (l.maxRpcMessageBytes < 4 * (l.maxCsrBytes + l.maxCertificateBytes))
    fail("an RPC message must hold a CSR and certificates with room to spare");
  if (l.certificateBackdateMs >= l.clientCertificateMinLifetimeMs)
    fail("backdating must not eat a whole certificate");
}

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
  /** DESIGN said 10 min; 3 min lets rotation be exercised end to end (the acceptance test), and nothing
   *  depends on a longer floor because a previous certificate is never accepted past its own expiry. */
  clientCertificateMinLifetimeMs: 3 * MINUTE,
  clientCertificateMaxLifetimeMs: 30 * DAY,
  /** Renewal at this fraction of a leaf's life (server in-process, devices over mTLS). */
  renewAtFraction: 2 / 3,
  /** Devices spread their renewals by this fraction of the delay either way (a fleet paired together
   *  must not renew together). */
  renewJitterFraction: 0.1,
  /** After rotation the previous certificate stays valid this long, or until it expires if sooner. */
  rotationOverlapMs: 5 * MINUTE,
  /** A failed renewal is retried after this, or sooner when the certificate has less life left. */
  renewRetryMaxMs: MINUTE,
  /** Live connections are re-checked against the allowlist this often, so one whose certificate left it
   *  (rotation overlap over, expired) is closed even if it makes no new call. Well under the overlap. */
  connectionSweepIntervalMs: 15_000,
  /** `devices rotate` waits this long for the node to renew before reporting that it did not. */
  rotateWaitMs: 15_000,
  /** A device whose certificate expired (not revoked) may recover with its identity key for this
   *  many days after the expiry (config `certificate_recovery_days`; 0 disables). */
  certificateRecoveryDefaultDays: 30,
  certificateRecoveryMaxDays: 365,
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

  // --- vault (DESIGN section 8) ---
  /** Largest secret value. */
  vaultMaxValueBytes: 64 * 1024,
  /** Auto-selection's probe of the OS store: over this, it counts as unavailable and the file backend is
   *  used, so a missing Secret Service costs well under a second. */
  vaultProbeTimeoutMs: 900,
  /** One Secret Service call (a desktop keyring may be waiting on an unlock prompt). */
  vaultKeyringTimeoutMs: 5_000,
  /** One `security` or `powershell.exe` run (PowerShell alone can take seconds to start). */
  vaultCommandTimeoutMs: 30_000,
  /** How long a vault writer waits for another process's write lock. */
  vaultBusyTimeoutMs: 5_000,
  /** A blob whose write started this long ago and never committed is given up and deleted. Far longer
   *  than any single backend call, so a live writer is never robbed of its blob. */
  vaultPendingGraceMs: 10 * MINUTE,
  /** The daemon retries deleting orphaned vault blobs this often. */
  vaultCollectIntervalMs: 5 * MINUTE,
  /** Reveals through the admin API, per caller, per window. */
  vaultRevealsPerWindow: 30,
  vaultRevealWindowMs: MINUTE,

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
  /** The most PBKDF2 iterations a device accepts from a gateway (a hostile one could ask for years). */
  maxPbkdfIterations: 10_000_000,
  /** A session must finish Begin..Complete within this. Shorter than any code TTL. */
  pairingSessionLifeMs: 5 * MINUTE,
  maxLivePairingSessions: 10_000,
  /** Sessions open at once on one code; at the bound the oldest not yet exchanged is dropped. A Begin
   *  proves nothing, so a session never locks its code: attempts are what is scarce, and they are
   *  counted on the code. More than one address can open within a session's life, and more than a
   *  code can have exchanged sessions (so there is always a begun one to drop). */
  pairingSessionsPerCode: 64,
  /** BeginPairing rate limits (per source address, and overall) per window. Per-address <= global. */
  beginPerAddressPerWindow: 10,
  beginGlobalPerWindow: 1024,
  beginRateWindowMs: MINUTE,
  pairingRequestTtlMs: 10 * MINUTE,
  /** Status long-poll; must stay under common proxy idle timeouts (30 s). */
  statusLongPollMs: 25_000,
  /** A status poll that failed because the connection dropped is retried after this, doubling up to
   *  the maximum, until the request would have expired. */
  statusRetryMinMs: 500,
  statusRetryMaxMs: 5_000,
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
  /** A TLS handshake (TCP accept to secure connection) must finish within this on the node port; the
   *  socket is destroyed then, whatever state it is in (idle TCP, partial ClientHello, stalled). */
  tlsHandshakeTimeoutMs: 10_000,
  /** Handshake admission on the node port: this many TLS handshakes at once, this many more waiting
   *  (paused TCP), the rest closed at accept. A gateway restart brings every node back in the same
   *  second; taking them a bounded batch at a time keeps heartbeats, pairing and the admin API served.
   *  The queue drains well within the handshake deadline at the rate one core handshakes (~1000/s). */
  tlsHandshakesInFlight: 64,
  tlsHandshakesQueued: 2048,
  /** A handshake that got a slot (its ClientHello already arrived) finishes within this or is cut, so a
   *  peer that stalls after its ClientHello holds a slot briefly: one round trip and the client's
   *  signature remain. Well under the absolute deadline. */
  tlsAdmittedHandshakeMs: 3_000,
  /** An anonymous node-port connection (no client certificate: pairing) with no open stream is closed
   *  after this. Pairing keeps a stream open while it waits (the status long-poll), so this never cuts
   *  a device that is using its connection. */
  anonymousIdleMs: 30_000,
  /** ...and after this in all, streams or not (GOAWAY, then the socket is destroyed). A device still
   *  waiting for approval reconnects and polls again. */
  anonymousMaxAgeMs: 5 * MINUTE,
  /** Grace between the GOAWAY at the age limit and destroying the socket. */
  anonymousGoawayGraceMs: 1_000,
  /** An anonymous connection that received bytes is checked this often for a dead HTTP/2 session (one
   *  that sent GOAWAY for a protocol error and will never write again): a PING is submitted, and if no
   *  byte leaves by the next check the socket is destroyed. Two checks fit in a second. */
  anonymousDeadSessionCheckMs: 400,
  /** SETTINGS_MAX_CONCURRENT_STREAMS advertised to anonymous connections and to devices. */
  anonymousMaxStreams: 8,
  deviceMaxStreams: 100,
  /** Anonymous connections open at once per source address (IPv6 by /64) and in all; one more is
   *  destroyed when its handshake completes. */
  anonymousConnectionsPerAddress: 16,
  anonymousConnectionsTotal: 1024,
  /** Device connections are pinged this often and dropped if no answer comes within the timeout, so a
   *  vanished or wedged peer does not hold its connection until TCP gives up. */
  deviceKeepaliveMs: 60_000,
  deviceKeepaliveTimeoutMs: 20_000,
  /** After answering a call that ends its own device's access (Deregister), its connections are closed
   *  this much later, so the answer's bytes leave first. */
  replyFlushGraceMs: 20,
  /** Default deadline of a unary RPC made by our clients. Longer than the status long-poll. */
  rpcDefaultDeadlineMs: 30_000,
  /** QUIC frames: 4-byte length + protobuf, checked from the length before anything is buffered. */
  quicMaxFrameBytes: 512 * 1024,
  /** A QUIC connect (with its handshake) must finish within this; the library waits forever without. */
  quicHandshakeTimeoutMs: 10_000,
  /** A QUIC connection with no packets for this long is closed (the library's default is never). */
  quicIdleTimeoutMs: 30_000,
  /** Keep-alive PINGs on idle QUIC connections, so healthy idle sessions never reach the idle timeout. */
  quicKeepAliveMs: 5_000,
  /** Bidirectional streams a QUIC peer may open at once (each request is a stream). */
  quicMaxStreams: 32,
  /** Live QUIC connections; one more is closed at once with the `busy` application code. */
  quicMaxConnections: 256,
  /** How long a client waits for the first answer on a QUIC stream (health, session accept). */
  quicRequestTimeoutMs: 10_000,
  /** A node host waits this long for the gateway's Config after its Hello (the session accepted). */
  sessionAcceptTimeoutMs: 10_000,
  /** A node host's whole session opening (RegisterNode, Connect, Hello, Config), and each certificate
   *  recovery call: whatever stalls, the host says so and tries again instead of waiting silently. */
  sessionOpenTimeoutMs: 20_000,
  /** Room a session message needs around its capability payload (ids, names, protobuf tags). */
  sessionEnvelopeBytes: 16 * 1024,
  /** Gateway events kept per node so a reconnecting session can resume after the last one it saw. */
  sessionResumeEvents: 256,
  /** ...and at most this many bytes of them (a dispatch may carry up to 4 MiB of input). */
  sessionResumeBytes: 16 * 1024 * 1024,

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
  /** When a node's last session ends, its calls in flight fail with node_disconnected after this, unless
   *  it is back (a dropped connection it resumes at once keeps its calls). Well under a second. */
  nodeDisconnectGraceMs: 500,
  /** Several gateways on one database: each writes its liveness this often (one row per gateway). */
  gatewayBeatIntervalMs: 2_000,
  /** A gateway silent this long is gone: another reaps it (its nodes offline, its calls failed). */
  gatewayDeadAfterMs: 10_000,
  /** How often a gateway looks for gone gateways, and re-reads which gateway holds which node. */
  clusterReapIntervalMs: 3_000,
  clusterHoldersRefreshMs: 2_000,
  /** A call sent to a node on another gateway is timed out by the caller's gateway this long after
   *  its deadline, if the holder has not ended it (the holder's own timer goes first). */
  clusterResultGraceMs: 2_000,
  /** A node is stale after this many heartbeat intervals without one. */
  stalePresenceIntervals: 3,
  terminalRequestRetentionMs: 7 * DAY,

  // --- audit log ---
  /** Audit entries are kept a year by default (config audit_retention_days; 0 keeps them forever). */
  auditRetentionDefaultDays: 365,
  auditRetentionMaxDays: 36_500,
  /** How often the daemon prunes entries past retention (also once at start). */
  auditPruneIntervalMs: HOUR,

  // --- console (DESIGN section 9) ---
  /** A console session ends after this long without a request... */
  consoleSessionIdleMs: 30 * MINUTE,
  /** ...and this long after login in any case. */
  consoleSessionMaxMs: 12 * HOUR,
  /** Live console sessions; the oldest is dropped beyond this. */
  consoleMaxSessions: 256,
  /** Login attempts per source address per window (the admin token is 256-bit; this stops hammering). */
  consoleLoginsPerWindow: 10,
  consoleLoginWindowMs: MINUTE,
  /** Open server-sent event streams; one more is refused with 503. */
  consoleMaxEventStreams: 64,
  /** A comment line on idle event streams, so proxies and browsers keep them open. */
  consoleEventKeepAliveMs: 15_000,

  // --- admin HTTP and outside JSON (DESIGN section 11: bad input gets a status, never a dropped socket) ---
  /** JSON nested deeper than this (arrays and objects) is refused before it is parsed: admin API bodies
   *  and the CLI's `--input-json`. Parsing and re-serialising recurse, so 5000 levels overflowed the
   *  stack and surfaced as a 500. An API body's own envelope object is one level more, so an input at
   *  the limit always fits in its request. */
  maxJsonDepth: 64,
  /** Largest request head (request line and headers) on the admin port; more is answered 431. Node's
   *  default, written down so NODE_OPTIONS cannot change it. */
  adminMaxHeaderBytes: 16 * 1024,
  /** A whole admin request (head and body) must arrive within this, or it is answered 408. Bodies are
   *  at most 128 KiB, so only a stalled or trickling client comes near it. */
  adminRequestTimeoutMs: 8_000,
  /** How often the admin server looks for requests past that timeout: the 408 comes at most this late. */
  adminTimeoutCheckIntervalMs: 1_000,
  /** After such an error answer, a client that does not close its side is cut off this much later. */
  adminErrorCloseGraceMs: 1_000,

  // --- daemon ---
  /** Grace period for in-flight work on SIGINT/SIGTERM before the process exits anyway. */
  shutdownGraceMs: 5_000,
  /** On shutdown: how long the goodbye to connected nodes may take, then how long in-flight calls may
   *  finish before connections are closed. Together well under a second (SIGTERM exits within 1 s). */
  shutdownGoodbyeMs: 200,
  shutdownDrainMs: 300,
  /** A node told goodbye waits a random time between this and the gateway's spread before each retry,
   *  for at least the window (or twice the spread): the gateway is usually back in a second or two. */
  goodbyeRetryMs: 250,
  goodbyeFastRetryWindowMs: 30_000,
  /** The spread a node uses when the gateway gave none (an older gateway, a dropped connection). */
  goodbyeDefaultSpreadMs: 1_000,
  /** The gateway spreads a fleet's reconnects so they arrive at about this rate (handshake, register,
   *  Connect per node, one core) and never more than the spread's maximum. */
  reconnectRatePerSecond: 250,
  reconnectSpreadMaxMs: 60_000,
  /** Pending TCP connections the node port's listener may hold before the kernel drops SYNs (the
   *  kernel caps it at net.core.somaxconn). Above the admission queue, so a burst waits rather than
   *  retransmitting SYNs for seconds. */
  nodePortListenBacklog: 4096,
  /** Refused handshakes and connections are logged at info at most this often (the rest are counted). */
  refusalLogLinesPerWindow: 60,
  refusalLogWindowMs: MINUTE,
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
  // At most two certificates per device are ever trusted: a previous certificate is accepted until the
  // overlap ends or it expires, whichever is first. Renewing at fraction f leaves it (1-f) of its life,
  // which ends before the new certificate's own renewal point (f of its life) when f > 1/2.
  if (
    l.renewAtFraction * (1 + l.renewJitterFraction) >= 1 ||
    l.renewAtFraction * (1 - l.renewJitterFraction) <= 0.5
  )
    fail("renewal (with jitter) must fall after half and before the end of a certificate's life");
  if (l.connectionSweepIntervalMs * 4 > l.rotationOverlapMs)
    fail("live connections must be re-checked several times per rotation overlap");
  if (l.gatewayDeadAfterMs < 3 * l.gatewayBeatIntervalMs)
    fail("a gateway must miss several beats before the others take it for gone");
  if (l.clientCertificateMinLifetimeMs > l.clientCertificateDefaultLifetimeMs)
    fail("default client life below minimum");
  if (l.clientCertificateDefaultLifetimeMs > l.clientCertificateMaxLifetimeMs)
    fail("default client life above maximum");
  if (l.statusLongPollMs >= l.pairingRequestTtlMs)
    fail("a status long-poll must end before its request expires");
  if (
    l.pairingSessionsPerCode <=
    l.beginPerAddressPerWindow * Math.ceil(l.pairingSessionLifeMs / l.beginRateWindowMs)
  )
    fail("one source address alone must not be able to push another device's session off a code");
  if (l.pairingSessionsPerCode <= l.pairingMaxAttempts)
    fail("a code's session bound must exceed its exchanged sessions (at most max attempts)");
  if (l.anonymousMaxAgeMs <= l.statusLongPollMs + l.anonymousGoawayGraceMs)
    fail("an anonymous connection must outlive at least one status long-poll");
  if (l.tlsAdmittedHandshakeMs >= l.tlsHandshakeTimeoutMs)
    fail("an admitted handshake's budget must be shorter than the absolute handshake deadline");
  if (l.anonymousIdleMs <= l.tlsHandshakeTimeoutMs)
    fail("an anonymous connection's idle limit must exceed the handshake limit");
  if (l.anonymousDeadSessionCheckMs * 2 > 1_000)
    fail("a dead anonymous HTTP/2 session must be found within a second (two checks)");
  if (l.anonymousConnectionsPerAddress > l.anonymousConnectionsTotal)
    fail("per-address anonymous connections above the total");
  if (l.anonymousMaxStreams > l.deviceMaxStreams)
    fail("anonymous peers may not open more streams than devices");
  if (l.sessionOpenTimeoutMs <= l.sessionAcceptTimeoutMs)
    fail("opening a session must be allowed longer than waiting for its Config");
  if (l.deviceKeepaliveTimeoutMs >= l.deviceKeepaliveMs)
    fail("a keepalive answer must be due before the next ping");
  if (l.pinPbkdfIterations > l.maxPbkdfIterations || l.qrPbkdfIterations > l.maxPbkdfIterations)
    fail("devices must accept the iteration counts the gateway uses");
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
  if (l.quicMaxFrameBytes < l.invokeDefaultPayloadBytes + l.sessionEnvelopeBytes)
    fail("a capability payload of the default size must fit in one QUIC frame with its envelope");
  if (l.invokeMaxPayloadBytes + l.sessionEnvelopeBytes > l.maxRpcMessageBytes)
    fail("the session envelope must fit beside the largest payload in one RPC message");
  if (l.quicKeepAliveMs * 3 > l.quicIdleTimeoutMs)
    fail("several keep-alives must fit in the QUIC idle timeout, or one lost PING ends a healthy session");
  if (l.sessionResumeEvents < 2 * l.nodeQueueLimit)
    fail("the resume buffer must hold a Dispatch and a Cancel for every request a node may have in flight");
  if (l.sessionResumeBytes < 2 * (l.invokeMaxPayloadBytes + l.sessionEnvelopeBytes))
    fail("the resume buffer must hold at least two dispatches of the largest payload");
  if (l.vaultPendingGraceMs < 4 * Math.max(l.vaultCommandTimeoutMs, l.vaultKeyringTimeoutMs))
    fail("a pending vault write must outlive several backend calls before it is given up");
  if (l.vaultProbeTimeoutMs >= 1_000) fail("falling back from an unusable OS store must take under a second");
  if (l.vaultMaxValueBytes + 1024 > l.maxSecretValueBytes)
    fail("a sealed vault value must fit the secret-store value limit");
  if (
    l.shutdownGoodbyeMs + l.shutdownDrainMs >= 1_000 ||
    l.shutdownGoodbyeMs + l.shutdownDrainMs >= l.shutdownGraceMs
  )
    fail("a clean shutdown must finish within a second, well inside the forced-exit grace");
  if (l.consoleSessionIdleMs > l.consoleSessionMaxMs) fail("a console session's idle limit exceeds its life");
  if (l.consoleEventKeepAliveMs * 2 > l.consoleSessionIdleMs)
    fail("event-stream keep-alives must come well within the session idle limit");
  if (l.adminRequestTimeoutMs + l.adminTimeoutCheckIntervalMs > 10_000)
    fail("a stalled admin request must be answered 408 within 10 s");
  if (l.maxJsonDepth < 8) fail("JSON inputs need room for ordinary nesting");
  if (l.maxRpcMessageBytes < 4 * (l.maxCsrBytes + l.maxCertificateBytes))
    fail("an RPC message must hold a CSR and certificates with room to spare");
}

import { X509Certificate } from "node:crypto";
import type { Clock } from "../common/clock.js";
import { isCanonicalId } from "../common/ids.js";
import { limits } from "../common/limits.js";
import type { Random } from "../common/random.js";
import { constantTimeEqual } from "../crypto/constant-time.js";
import { spkiDigest } from "../crypto/fingerprint.js";
import {
  comparisonCode,
  deriveSpakeSecrets,
  proverFinish,
  proverStart,
  verifyConfirmation,
} from "../crypto/spake2plus.js";
import { createCsr, generateP256KeyPair, type P256KeyPair } from "../identity/csr.js";
import type { DeviceIdentity } from "../identity/device-identity.js";
import { verifyIssuedBy } from "../identity/verify-chain.js";
import { spakePassword } from "./code-service.js";
import { PairingError } from "./errors.js";
import type { BeginInput, BeginOutput, CompleteInput, StatusInput, StatusOutput } from "./gateway-service.js";
import {
  completionMessage,
  PROTOCOL,
  pairingContext,
  statusMessage,
  verifierIdentity,
} from "./transcript.js";

/** How the device reaches the gateway's PairingService (gRPC over TLS in production). */
export interface PairingTransport {
  begin(input: BeginInput): Promise<BeginOutput>;
  exchange(input: {
    sessionId: string;
    shareP: Uint8Array;
  }): Promise<{ shareV: Uint8Array; confirmV: Uint8Array }>;
  complete(input: CompleteInput): Promise<{ requestId: string; comparisonCode: string }>;
  status(input: StatusInput): Promise<StatusOutput>;
  /** DER of the TLS server certificate seen on this very connection, if the transport has one. */
  serverCertificate?(): Buffer | undefined;
  /** True for a failure worth retrying as is (the connection dropped, e.g. the gateway closed an
   *  anonymous connection at its age limit, or restarted). */
  isTransient?(err: unknown): boolean;
}

export interface PairAttempt {
  codeId: string;
  /** The PIN digits or the QR secret. */
  secret: string;
  clientKind: string;
  deviceName: string;
  platform: string;
  /** From a QR code: SHA-256 of the CA's SPKI; the gateway must present exactly this CA. */
  caPin?: Buffer;
}

export interface PendingPairing {
  requestId: string;
  comparisonCode: string;
  caCertDer: Buffer;
  keyPair: P256KeyPair;
}

export interface PairedMaterial {
  state: StatusOutput["state"];
  reason: string;
  clientCertPem?: string;
  caCertPem?: string;
  certExpiresAt?: number;
}

/** The device side of palyra-pairing-v1. It proves the code without sending it, and trusts nothing it cannot check. */
export class DevicePairingClient {
  readonly #transport: PairingTransport;
  readonly #identity: DeviceIdentity;
  readonly #clock: Clock;
  readonly #random: Random;

  constructor(transport: PairingTransport, identity: DeviceIdentity, clock: Clock, random: Random) {
    this.#transport = transport;
    this.#identity = identity;
    this.#clock = clock;
    this.#random = random;
  }

  async pair(attempt: PairAttempt): Promise<PendingPairing> {
    const begun = await this.#transport.begin({
      version: PROTOCOL,
      clientKind: attempt.clientKind,
      codeId: attempt.codeId,
      deviceId: this.#identity.deviceId,
    });
    checkBeginShape(begun);
    const ca = this.#checkGateway(begun.caCertDer, attempt.caPin);
    const { w0, w1 } = deriveSpakeSecrets(spakePassword(attempt.secret), begun.salt, begun.iterations);
    const start = proverStart(w0, this.#random);
    const ids = {
      context: pairingContext({ ...begun, clientKind: attempt.clientKind, codeId: attempt.codeId }),
      idProver: Buffer.from(this.#identity.deviceId),
      idVerifier: verifierIdentity(spkiDigest(ca).toString("hex")),
    };
    const exchanged = await this.#transport.exchange({ sessionId: begun.sessionId, shareP: start.shareP });
    const result = proverFinish({ w0, w1, x: start.x, shareP: start.shareP }, exchanged.shareV, ids);
    // Check the gateway's proof before anything else: without it, it may be an impostor.
    if (!verifyConfirmation(result.expectedConfirmV, exchanged.confirmV))
      throw new PairingError(
        "gateway_unverified",
        "the gateway could not prove it knows the code: wrong code or someone in the middle",
      );
    const keyPair = generateP256KeyPair();
    const csrDer = await createCsr(keyPair.privateKey, keyPair.publicKey);
    const signature = this.#identity.sign(completionMessage(result.kMain, this.#identity.publicKey, csrDer));
    const completed = await this.#transport.complete({
      sessionId: begun.sessionId,
      confirmP: result.confirmP,
      identityPublic: this.#identity.publicKey,
      csrDer,
      deviceName: attempt.deviceName,
      platform: attempt.platform,
      signature,
    });
    const ours = comparisonCode(result.kShared);
    if (!constantTimeEqual(ours, completed.comparisonCode))
      throw new PairingError("gateway_unverified", "the gateway's comparison code differs from ours");
    return { requestId: completed.requestId, comparisonCode: ours, caCertDer: begun.caCertDer, keyPair };
  }

  /** One signed status poll (the gateway holds it up to 25 s while undecided). */
  async poll(requestId: string): Promise<StatusOutput> {
    const timestampMs = this.#clock.now();
    return this.#transport.status({
      requestId,
      deviceId: this.#identity.deviceId,
      timestampMs,
      signature: this.#identity.sign(statusMessage(requestId, timestampMs)),
    });
  }

  /** Polls until decided. The delivered certificate must come from the CA and carry our CSR's key. */
  async waitForDecision(pending: PendingPairing, onPoll?: (state: string) => void): Promise<PairedMaterial> {
    const giveUpAt = this.#clock.now() + limits.pairingRequestTtlMs;
    let retryMs: number = limits.statusRetryMinMs;
    for (;;) {
      let status: StatusOutput;
      try {
        status = await this.poll(pending.requestId);
        retryMs = limits.statusRetryMinMs;
      } catch (err) {
        if (!this.#transport.isTransient?.(err) || this.#clock.now() >= giveUpAt) throw err;
        await new Promise((resolve) => setTimeout(resolve, retryMs));
        retryMs = Math.min(retryMs * 2, limits.statusRetryMaxMs);
        continue;
      }
      onPoll?.(status.state);
      if (status.state === "pending_approval" || status.state === "approved") continue;
      if (status.state !== "completed") return { state: status.state, reason: status.reason };
      const cert = new X509Certificate(status.clientCertPem);
      const caDer = new X509Certificate(status.caCertPem).raw;
      const verdict = verifyIssuedBy(cert.raw, pending.caCertDer, this.#clock.now(), { purpose: "client" });
      if (!verdict.ok || !caDer.equals(pending.caCertDer))
        throw new PairingError(
          "gateway_unverified",
          "the delivered certificate is not from the gateway's CA",
        );
      const ourKey = pending.keyPair.publicKey.export({ type: "spki", format: "der" });
      if (!cert.publicKey.export({ type: "spki", format: "der" }).equals(ourKey))
        throw new PairingError("gateway_unverified", "the delivered certificate is not for our key");
      return { ...status };
    }
  }

  #checkGateway(caCertDer: Buffer, pin: Buffer | undefined): X509Certificate {
    if (caCertDer.length === 0 || caCertDer.length > limits.maxCertificateBytes)
      throw new PairingError("gateway_unverified", "the gateway sent no usable CA certificate");
    let ca: X509Certificate;
    try {
      ca = new X509Certificate(caCertDer);
    } catch (err) {
      throw new PairingError("gateway_unverified", "the gateway's CA certificate does not parse", {
        cause: err,
      });
    }
    if (pin && !constantTimeEqual(spkiDigest(ca), pin))
      throw new PairingError(
        "gateway_unverified",
        "the gateway's CA does not match the QR code's pin: refusing to pair",
      );
    const server = this.#transport.serverCertificate?.();
    if (server) {
      const verdict = verifyIssuedBy(server, caCertDer, this.#clock.now(), { purpose: "server" });
      if (!verdict.ok)
        throw new PairingError(
          "gateway_unverified",
          `the TLS server certificate is not from the CA the gateway sent (${verdict.reason}): someone may be in the middle`,
        );
    }
    return ca;
  }
}

/** What BeginPairing answers enters the Context and PBKDF2: its sizes and shapes are checked first. */
function checkBeginShape(begun: BeginOutput): void {
  const bad = (what: string) => {
    throw new PairingError("gateway_unverified", `the gateway's BeginPairing answer is malformed: ${what}`);
  };
  if (!isCanonicalId(begun.sessionId)) bad("session_id is not a canonical ULID");
  if (begun.challenge.length !== 32) bad("challenge is not 32 bytes");
  if (begun.salt.length !== 16) bad("salt is not 16 bytes");
  if (
    !Number.isSafeInteger(begun.iterations) ||
    begun.iterations < 1_000 ||
    begun.iterations > limits.maxPbkdfIterations
  )
    bad(`iterations must be 1000 to ${limits.maxPbkdfIterations}`);
}

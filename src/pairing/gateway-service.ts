import type { Clock } from "../common/clock.js";
import { isCanonicalId, newId } from "../common/ids.js";
import { limits } from "../common/limits.js";
import type { Random } from "../common/random.js";
import { addressBucket, SlidingWindowLimiter } from "../common/rate-limiter.js";
import { Secret } from "../common/redaction.js";
import { identityFingerprint } from "../crypto/fingerprint.js";
import { comparisonCode, decodeScalar, verifierRespond, verifyConfirmation } from "../crypto/spake2plus.js";
import type { CertificateAuthority } from "../identity/ca.js";
import { parseAndVerifyCsr } from "../identity/csr.js";
import { isValidIdentityKey, verifyIdentitySignature } from "../identity/device-identity.js";
import type { DeviceRegistry } from "../identity/device-registry.js";
import type { AuditLog, PairingRepository } from "../store/ports.js";
import type { PairingCodeRecord, PairingRequestRecord } from "../store/records.js";
import type { ApprovalService } from "./approvals.js";
import type { CodeService } from "./code-service.js";
import { CODE_NOT_VALID, PairingError } from "./errors.js";
import { kindMismatchMessage } from "./pair-command.js";
import { CLIENT_KIND } from "./qr-uri.js";
import { type PairingSession, SessionTable } from "./sessions.js";
import {
  completionMessage,
  PROTOCOL,
  pairingContext,
  statusMessage,
  verifierIdentity,
} from "./transcript.js";

export interface BeginInput {
  version: string;
  clientKind: string;
  codeId: string;
  deviceId: string;
}
export interface BeginOutput {
  sessionId: string;
  expiresAt: number;
  salt: Buffer;
  iterations: number;
  challenge: Buffer;
  caCertDer: Buffer;
}
export interface CompleteInput {
  sessionId: string;
  confirmP: Uint8Array;
  identityPublic: Uint8Array;
  csrDer: Uint8Array;
  deviceName: string;
  platform: string;
  signature: Uint8Array;
}
export interface StatusInput {
  requestId: string;
  deviceId: string;
  timestampMs: number;
  signature: Uint8Array;
}
export interface StatusOutput {
  state: PairingRequestRecord["state"];
  reason: string;
  clientCertPem: string;
  caCertPem: string;
  certExpiresAt: number;
}

/** The gateway side of palyra-pairing-v1, independent of the transport that carries it. */
export class PairingGatewayService {
  readonly #repo: PairingRepository;
  readonly #audit: AuditLog;
  readonly #codes: CodeService;
  readonly #approvals: ApprovalService;
  readonly #registry: DeviceRegistry;
  readonly #ca: CertificateAuthority;
  readonly #clock: Clock;
  readonly #random: Random;
  readonly #sessions: SessionTable;
  readonly #perAddress: SlidingWindowLimiter;
  readonly #global: SlidingWindowLimiter;
  readonly #idVerifier: Buffer;

  constructor(deps: {
    repo: PairingRepository;
    audit: AuditLog;
    codes: CodeService;
    approvals: ApprovalService;
    registry: DeviceRegistry;
    ca: CertificateAuthority;
    clock: Clock;
    random: Random;
    beginRates?: { perAddress: number; total: number };
  }) {
    this.#repo = deps.repo;
    this.#audit = deps.audit;
    this.#codes = deps.codes;
    this.#approvals = deps.approvals;
    this.#registry = deps.registry;
    this.#ca = deps.ca;
    this.#clock = deps.clock;
    this.#random = deps.random;
    this.#sessions = new SessionTable(deps.clock, deps.random, {
      lifeMs: limits.pairingSessionLifeMs,
      maxLive: limits.maxLivePairingSessions,
      maxPerCode: limits.pairingSessionsPerCode,
    });
    const windowMs = limits.beginRateWindowMs;
    this.#perAddress = new SlidingWindowLimiter(deps.clock, {
      limit: deps.beginRates?.perAddress ?? limits.beginPerAddressPerWindow,
      windowMs,
    });
    this.#global = new SlidingWindowLimiter(deps.clock, {
      limit: deps.beginRates?.total ?? limits.beginGlobalPerWindow,
      windowMs,
    });
    this.#idVerifier = verifierIdentity(deps.ca.spkiFingerprint);
  }

  async begin(input: BeginInput, sourceAddress: string): Promise<BeginOutput> {
    if (input.version !== PROTOCOL)
      throw new PairingError("invalid_input", `unsupported pairing protocol (want ${PROTOCOL})`);
    if (!isCanonicalId(input.deviceId))
      throw new PairingError("invalid_input", "device id must be a canonical ULID");
    if (!CLIENT_KIND.test(input.clientKind)) throw new PairingError("invalid_input", "bad client kind");
    if (!this.#perAddress.take(addressBucket(sourceAddress)) || !this.#global.take())
      throw new PairingError("rate_limited", "too many pairing attempts; wait a minute and try again");
    // The code's client kind is not checked here: that would tell anyone, code or not, which code ids
    // are live. It is checked at Complete, once the device has proved it knows the code.
    const code = await this.#codes.resolve(input.codeId);
    if (!code) throw new PairingError("code_invalid", CODE_NOT_VALID);
    const device = await this.#registry.get(input.deviceId);
    if (device?.revokedAt !== undefined)
      throw new PairingError(
        "device_revoked",
        "this device id is revoked; the operator must remove it before it can pair again",
      );
    const session = this.#sessions.open(
      {
        codeRowId: code.id,
        // As the device sent it (empty for a bare PIN): both sides must build the same context.
        codeId: input.codeId,
        clientKind: input.clientKind,
        deviceId: input.deviceId,
        sourceAddress,
        challenge: this.#random.bytes(32),
      },
      code.expiresAt,
    );
    await this.#audit.append({
      kind: "pairing.begin",
      actor: `device:${input.deviceId}`,
      deviceId: input.deviceId,
      detail: { code_id: code.codeId, source: sourceAddress },
    });
    return {
      sessionId: session.sessionId,
      expiresAt: session.expiresAt,
      salt: code.salt,
      iterations: code.iterations,
      challenge: session.challenge,
      caCertDer: this.#ca.certDer,
    };
  }

  async exchange(input: {
    sessionId: string;
    shareP: Uint8Array;
  }): Promise<{ shareV: Buffer; confirmV: Buffer }> {
    const session = this.#sessions.require(input.sessionId, "begun");
    const code = await this.#repo.codeByRowId(session.codeRowId);
    if (code?.state !== "live" || this.#clock.now() >= code.expiresAt) {
      this.#sessions.endCode(session.codeRowId);
      throw new PairingError("code_invalid", CODE_NOT_VALID);
    }
    const context = pairingContext({ ...session, caCertDer: this.#ca.certDer });
    let result: ReturnType<typeof verifierRespond>;
    try {
      result = verifierRespond(
        { w0: decodeScalar(code.w0), L: code.L },
        input.shareP,
        { context, idProver: Buffer.from(session.deviceId), idVerifier: this.#idVerifier },
        this.#random,
      );
    } catch (err) {
      this.#sessions.end(session.sessionId);
      throw new PairingError("invalid_input", "share_p is not a valid P-256 point", { cause: err });
    }
    // The attempt counts now, not at Complete: confirm_v already tells the prover whether its guess
    // was right, so a guesser could otherwise test PINs and walk away uncounted. A success gives it back.
    // Attempts are counted in the database across all the code's sessions, restarts and gateways: the
    // increment is one conditional UPDATE, so at most maxAttempts Exchanges ever answer on one code.
    const counted = await this.#repo.takeAttempt(code.id, this.#clock.now(), (c) => ({
      kind: "pairing.exchange",
      actor: `device:${session.deviceId}`,
      deviceId: session.deviceId,
      detail: { code_id: c.codeId, attempts: c.failedAttempts, source: session.sourceAddress },
    }));
    if (!counted) {
      const now = await this.#repo.codeByRowId(code.id);
      if (now?.state === "live" && now.failedAttempts >= now.maxAttempts) await this.#exhaust(now, session);
      else this.#sessions.endCode(code.id);
      throw new PairingError("code_invalid", CODE_NOT_VALID);
    }
    session.state = "exchanged";
    session.exchange = {
      expectedConfirmP: Buffer.from(result.expectedConfirmP),
      kMain: new Secret(Buffer.from(result.kMain)),
      kShared: new Secret(Buffer.from(result.kShared)),
    };
    return { shareV: Buffer.from(result.shareV), confirmV: Buffer.from(result.confirmV) };
  }

  async complete(
    input: CompleteInput,
  ): Promise<{ requestId: string; state: "pending_approval"; comparisonCode: string }> {
    const session = this.#sessions.require(input.sessionId, "exchanged");
    const exchange = session.exchange!;
    // The session is single-use whatever happens next.
    this.#sessions.end(session.sessionId);
    const code = await this.#repo.codeByRowId(session.codeRowId);
    if (code?.state !== "live") throw new PairingError("code_invalid", CODE_NOT_VALID);
    if (!verifyConfirmation(exchange.expectedConfirmP, input.confirmP)) {
      // The attempt was counted at Exchange; a code with none left dies now.
      if (code.failedAttempts >= code.maxAttempts) await this.#exhaust(code, session);
      else
        await this.#audit.append({
          kind: "pairing.failed_attempt",
          actor: `device:${session.deviceId}`,
          deviceId: session.deviceId,
          detail: {
            code_id: code.codeId,
            failed_attempts: code.failedAttempts,
            source: session.sourceAddress,
          },
        });
      throw new PairingError("confirmation_failed", "wrong pairing code");
    }
    if (code.clientKind !== session.clientKind) {
      // The device knows the code, so it may learn the code's kind; the attempt is given back, since
      // the right kind of device may still use the code.
      await this.#repo.returnAttempt(code.id, {
        kind: "pairing.kind_mismatch",
        actor: `device:${session.deviceId}`,
        deviceId: session.deviceId,
        detail: {
          code_id: code.codeId,
          code_kind: code.clientKind,
          device_kind: session.clientKind,
          source: session.sourceAddress,
        },
      });
      throw new PairingError("kind_mismatch", kindMismatchMessage(code.clientKind, session.clientKind));
    }
    if (input.identityPublic.length !== 32)
      throw new PairingError("invalid_input", "identity_public must be 32 bytes");
    if (!isValidIdentityKey(input.identityPublic))
      throw new PairingError(
        "invalid_input",
        "identity_public is not a valid Ed25519 public key (small-order or non-canonical point)",
      );
    const message = completionMessage(exchange.kMain.expose(), input.identityPublic, input.csrDer);
    if (!verifyIdentitySignature(input.identityPublic, message, input.signature))
      throw new PairingError("signature_invalid", "the device's identity signature does not verify");
    let csrKeyFingerprint: string;
    try {
      csrKeyFingerprint = (await parseAndVerifyCsr(input.csrDer)).keyFingerprint;
    } catch (err) {
      throw new PairingError(
        "csr_invalid",
        `the certificate request was refused: ${(err as Error).message}`,
        { cause: err },
      );
    }
    const deviceName = checkText(input.deviceName, "device name", limits.maxDeviceNameLength);
    const platform = checkText(input.platform, "platform", limits.maxPlatformLength);
    const identityPublic = Buffer.from(input.identityPublic);
    const existing = await this.#registry.get(session.deviceId);
    if (existing?.revokedAt !== undefined)
      throw new PairingError("device_revoked", "this device id is revoked");
    if (existing && !existing.identityPublicKey.equals(identityPublic))
      throw new PairingError("identity_mismatch", "this device id is paired with a different identity key");
    // A device keeps its kind: a node host must not re-pair as a cli and come back holding a role.
    if (existing && existing.clientKind !== session.clientKind)
      throw new PairingError(
        "identity_mismatch",
        `this device is paired as "${existing.clientKind}"; an operator must remove it before it pairs as "${session.clientKind}"`,
      );

    const now = this.#clock.now();
    const request: PairingRequestRecord = {
      requestId: newId(this.#clock, this.#random),
      codeRowId: code.id,
      deviceId: session.deviceId,
      clientKind: session.clientKind,
      deviceName,
      platform,
      identityPublic,
      identityFingerprint: identityFingerprint(identityPublic),
      csrDer: Buffer.from(input.csrDer),
      csrKeyFingerprint,
      sourceAddress: session.sourceAddress,
      comparisonCode: comparisonCode(exchange.kShared.expose()),
      requestedAt: now,
      expiresAt: now + limits.pairingRequestTtlMs,
      state: "pending_approval",
    };
    // live -> used and the request, in one transaction: of two devices completing on one code (on two
    // gateways), one gets the request and the other the same answer as for any dead code.
    const used = await this.#repo.consumeCode(code.id, now, request, {
      kind: "pairing.complete",
      actor: `device:${session.deviceId}`,
      deviceId: session.deviceId,
      detail: { code_id: code.codeId, request_id: request.requestId, source: session.sourceAddress },
    });
    this.#sessions.endCode(code.id);
    if (!used) throw new PairingError("code_invalid", CODE_NOT_VALID);
    return {
      requestId: request.requestId,
      state: "pending_approval",
      comparisonCode: request.comparisonCode,
    };
  }

  /** Long-polls (up to 25 s) for a decision; delivers the certificate once approved. */
  async status(input: StatusInput, signal?: AbortSignal): Promise<StatusOutput> {
    const request = await this.#approvals.get(input.requestId);
    if (!request || request.deviceId !== input.deviceId)
      throw new PairingError("request_not_found", "no such pairing request for this device");
    if (
      !Number.isSafeInteger(input.timestampMs) ||
      Math.abs(this.#clock.now() - input.timestampMs) > limits.statusSignatureSkewMs
    )
      throw new PairingError(
        "signature_invalid",
        "status poll timestamp is too far from the gateway's clock",
      );
    if (
      !verifyIdentitySignature(
        request.identityPublic,
        statusMessage(input.requestId, input.timestampMs),
        input.signature,
      )
    )
      throw new PairingError("signature_invalid", "status poll signature does not verify");
    if (request.state === "pending_approval")
      await this.#approvals.waitForDecision(input.requestId, limits.statusLongPollMs, signal);
    let current = (await this.#approvals.get(input.requestId))!;
    if (current.state === "approved") current = await this.#approvals.markCompleted(current);
    const delivered = current.state === "completed";
    return {
      state: current.state,
      reason: current.reason ?? "",
      clientCertPem: delivered ? (current.clientCertPem ?? "") : "",
      caCertPem: delivered ? this.#ca.certPem : "",
      certExpiresAt: delivered ? (current.certExpiresAt ?? 0) : 0,
    };
  }

  /** For tests and metrics: sessions in flight. */
  liveSessions(): number {
    return this.#sessions.size;
  }

  /** Kills a code whose attempts are used up, and ends every session on it. */
  async #exhaust(code: PairingCodeRecord, session: PairingSession): Promise<void> {
    await this.#repo.exhaustCode(code.id, this.#clock.now(), (c) => ({
      kind: "pairing.code_exhausted",
      actor: `device:${session.deviceId}`,
      deviceId: session.deviceId,
      detail: { code_id: c.codeId, failed_attempts: c.failedAttempts, source: session.sourceAddress },
    }));
    this.#sessions.endCode(code.id);
  }
}

function checkText(value: string, what: string, max: number): string {
  const printable =
    typeof value === "string" && [...value].every((c) => c.charCodeAt(0) >= 0x20 && c !== "\x7f");
  if (!printable || value.length === 0 || value.length > max)
    throw new PairingError("invalid_input", `${what} must be 1-${max} printable characters`);
  return value;
}

import { createHash } from "node:crypto";
import type { Clock } from "../common/clock.js";
import { isCanonicalId } from "../common/ids.js";
import { limits } from "../common/limits.js";
import type { CertificateAuthority, IssuedCertificate } from "./ca.js";
import { verifyIdentitySignature } from "./device-identity.js";
import type { DeviceRegistry } from "./device-registry.js";
import { IdentityError } from "./errors.js";

const DAY = 24 * 60 * 60 * 1000;

/**
 * What a device signs with its identity key to recover: bound to the device, the time (so a captured
 * request cannot be replayed later), the certificate it holds, and the CSR, under a purpose label no
 * other signature uses.
 */
export function recoveryMessage(
  deviceId: string,
  timestampMs: number,
  heldFingerprint: string,
  csrDer: Uint8Array,
): Buffer {
  const ts = Buffer.alloc(8);
  ts.writeBigInt64BE(BigInt(timestampMs));
  const held = Buffer.from(heldFingerprint, "ascii");
  return createHash("sha256")
    .update("palyra-recovery-v1")
    .update(deviceId)
    .update(ts)
    .update(Buffer.of(held.length))
    .update(held)
    .update(createHash("sha256").update(csrDer).digest())
    .digest();
}

export interface RecoveryRequest {
  deviceId: string;
  csrDer: Uint8Array;
  timestampMs: number;
  heldFingerprint: string;
  signature: Uint8Array;
}

/**
 * Certificate recovery: a paired device whose certificate expired while it was away (a laptop asleep
 * past its 24 h certificate) proves possession of the identity key it registered at pairing and gets
 * a new certificate for a new key, within `windowMs` after the expiry. Never for a revoked or removed
 * device, and only with a valid identity signature: the identity key is the device's root credential,
 * as it is for renewal. Each refusal says what to do.
 */
export class CertificateRecovery {
  readonly #ca: CertificateAuthority;
  readonly #registry: DeviceRegistry;
  readonly #clock: Clock;
  readonly #windowMs: number;
  readonly #lifetimeMs: number | undefined;

  constructor(deps: {
    ca: CertificateAuthority;
    registry: DeviceRegistry;
    clock: Clock;
    /** 0 disables recovery. */
    windowMs: number;
    clientCertificateLifetimeMs?: number;
  }) {
    this.#ca = deps.ca;
    this.#registry = deps.registry;
    this.#clock = deps.clock;
    this.#windowMs = deps.windowMs;
    this.#lifetimeMs = deps.clientCertificateLifetimeMs;
  }

  async recover(request: RecoveryRequest): Promise<IssuedCertificate> {
    const now = this.#clock.now();
    if (!isCanonicalId(request.deviceId))
      throw new IdentityError("invalid_input", "device id must be a canonical ULID");
    if (request.csrDer.length === 0 || request.csrDer.length > limits.maxCsrBytes)
      throw new IdentityError("invalid_csr", `a CSR is 1 to ${limits.maxCsrBytes} bytes`);
    if (request.heldFingerprint !== "" && !/^[0-9a-f]{64}$/.test(request.heldFingerprint))
      throw new IdentityError("invalid_input", "held_fingerprint is empty or 64 lowercase hex digits");
    if (
      !Number.isSafeInteger(request.timestampMs) ||
      Math.abs(now - request.timestampMs) > limits.statusSignatureSkewMs
    )
      throw new IdentityError(
        "signature_invalid",
        "the recovery timestamp is too far from the gateway's clock",
      );
    const device = await this.#registry.get(request.deviceId);
    if (!device)
      throw new IdentityError(
        "device_not_found",
        "this device is not paired with this gateway (it may have been removed); pair again with a new code",
      );
    const message = recoveryMessage(
      request.deviceId,
      request.timestampMs,
      request.heldFingerprint,
      request.csrDer,
    );
    if (!verifyIdentitySignature(device.identityPublicKey, message, request.signature))
      throw new IdentityError("signature_invalid", "the recovery is not signed by the device's identity key");
    // Only now, to a proven device, is its state told.
    if (device.revokedAt !== undefined)
      throw new IdentityError(
        "device_revoked",
        `this device was revoked${device.revokedReason ? `: ${device.revokedReason}` : ""}`,
      );
    if (request.heldFingerprint === device.current.fingerprint && now < device.current.expiresAt)
      throw new IdentityError(
        "nothing_to_recover",
        "the certificate this device holds is still valid; nothing to recover",
      );
    const expiredFor = now - device.current.expiresAt;
    if (this.#windowMs === 0)
      throw new IdentityError(
        "recovery_refused",
        "certificate recovery is disabled on this gateway; re-pair with a new code",
      );
    if (expiredFor > this.#windowMs)
      throw new IdentityError(
        "recovery_refused",
        `the certificate expired ${Math.floor(expiredFor / DAY)} days ago, past the ${Math.round(this.#windowMs / DAY)}-day recovery window; re-pair with a new code`,
      );
    const issued = await this.#ca.issueClientCertificate(request.csrDer, {
      deviceId: request.deviceId,
      ...(this.#lifetimeMs === undefined ? {} : { lifetimeMs: this.#lifetimeMs }),
    });
    await this.#registry.recordRecovery(
      request.deviceId,
      { fingerprint: issued.fingerprint, expiresAt: issued.notAfter.getTime() },
      { expired_ms_ago: Math.max(0, expiredFor) },
    );
    return issued;
  }
}

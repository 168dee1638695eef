import { createHash, X509Certificate } from "node:crypto";
import type { Clock } from "../common/clock.js";
import { limits } from "../common/limits.js";
import type { Random } from "../common/random.js";
import type { CertificateAuthority, IssuedCertificate } from "./ca.js";
import { deviceIdFromUri } from "./certificate-profiles.js";
import { verifyIdentitySignature } from "./device-identity.js";
import type { PairedDevice } from "./device-records.js";
import type { DeviceRegistry } from "./device-registry.js";
import { IdentityError } from "./errors.js";

/**
 * What a device signs with its Ed25519 identity key to renew: the CSR hash, bound to the device id and
 * a purpose label so a pairing signature can never be replayed as a renewal (or the reverse).
 */
export function renewalMessage(deviceId: string, csrDer: Uint8Array): Buffer {
  return createHash("sha256")
    .update("palyra-renewal-signature-v1")
    .update(deviceId)
    .update(createHash("sha256").update(csrDer).digest())
    .digest();
}

/**
 * When a certificate is due for renewal: at `renewAtFraction` of its life (counted from issue, not
 * from the backdated notBefore), moved by up to +-`renewJitterFraction` of that delay.
 */
export function renewalDelayMs(certPem: string, nowMs: number, random?: Random): number {
  const cert = new X509Certificate(certPem);
  const issued = Date.parse(cert.validFrom) + limits.certificateBackdateMs;
  const due = issued + (Date.parse(cert.validTo) - issued) * limits.renewAtFraction;
  const delay = Math.max(0, due - nowMs);
  if (!random) return delay;
  // Uniform in [-1, 1), from 32 bits of the injected source.
  const unit = (random.bytes(4).readUInt32BE() / 2 ** 32) * 2 - 1;
  return Math.max(0, Math.round(delay * (1 + unit * limits.renewJitterFraction)));
}

export interface RenewalResult {
  device: PairedDevice;
  issued: IssuedCertificate;
  /** Fingerprint of the certificate that is now `previous` (accepted until the overlap ends). */
  previousFingerprint: string;
}

/**
 * Renewal over mutual TLS (DESIGN section 4, "Rotation"): a new certificate from a new CSR, signed for
 * by the device's identity key, becomes current; the old one is accepted for the overlap, then refused.
 */
export class CertificateRotation {
  readonly #ca: CertificateAuthority;
  readonly #registry: DeviceRegistry;
  readonly #lifetimeMs: number | undefined;

  constructor(deps: {
    ca: CertificateAuthority;
    registry: DeviceRegistry;
    clock: Clock;
    clientCertificateLifetimeMs?: number;
  }) {
    this.#ca = deps.ca;
    this.#registry = deps.registry;
    this.#lifetimeMs = deps.clientCertificateLifetimeMs;
  }

  async renew(deviceId: string, csrDer: Uint8Array, identitySignature: Uint8Array): Promise<RenewalResult> {
    if (!(csrDer instanceof Uint8Array) || csrDer.length === 0 || csrDer.length > limits.maxCsrBytes)
      throw new IdentityError("invalid_csr", `a CSR is 1 to ${limits.maxCsrBytes} bytes`);
    const device = await this.#registry.get(deviceId);
    if (!device) throw new IdentityError("device_not_found", `no paired device ${deviceId}`);
    if (device.revokedAt !== undefined)
      throw new IdentityError("device_revoked", `device ${deviceId} is revoked`);
    if (
      !verifyIdentitySignature(device.identityPublicKey, renewalMessage(deviceId, csrDer), identitySignature)
    )
      throw new IdentityError("signature_invalid", "the renewal is not signed by the device's identity key");
    const issued = await this.#ca.issueClientCertificate(csrDer, {
      deviceId,
      ...(this.#lifetimeMs === undefined ? {} : { lifetimeMs: this.#lifetimeMs }),
    });
    const updated = await this.#registry.recordRotation(deviceId, {
      fingerprint: issued.fingerprint,
      expiresAt: issued.notAfter.getTime(),
    });
    return { device: updated, issued, previousFingerprint: device.current.fingerprint };
  }
}

/** The device id a client certificate is bound to (its `urn:palyra:device:` URI SAN), if any. */
export function certificateDeviceId(certPem: string): string | undefined {
  const san = new X509Certificate(certPem).subjectAltName ?? "";
  for (const part of san.split(", "))
    if (part.startsWith("URI:")) {
      const id = deviceIdFromUri(part.slice(4));
      if (id) return id;
    }
  return undefined;
}

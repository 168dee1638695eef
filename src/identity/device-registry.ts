import { X509Certificate } from "node:crypto";
import type { Clock } from "../common/clock.js";
import { limits } from "../common/limits.js";
import { certificateFingerprint, identityFingerprint } from "../crypto/fingerprint.js";
import { AllowlistMemo, frozenCopy } from "./allowlist-memo.js";
import type {
  DeviceRepository,
  PairedDevice,
  RevokedCertificate,
  TrustedCertificate,
} from "./device-records.js";
import { IdentityError } from "./errors.js";

/** Why a TLS peer is not accepted as a device. Each reason is distinct so operators can tell them apart. */
export type PeerRefusal =
  | "unknown_certificate"
  | "certificate_revoked"
  | "device_revoked"
  | "rotation_overlap_ended"
  | "certificate_expired";

export type PeerDecision =
  | { ok: true; device: PairedDevice; certificate: "current" | "previous"; fingerprint: string }
  | { ok: false; reason: PeerRefusal; fingerprint: string; deviceId?: string };

export interface PairingRecord {
  deviceId: string;
  clientKind: string;
  deviceName: string;
  platform: string;
  identityPublicKey: Uint8Array;
  certificate: TrustedCertificate;
}

/**
 * Who may connect: an allowlist, not a denylist. A peer is a device only if its leaf is that device's
 * current certificate, or the previous one inside the rotation overlap, and the device is not revoked.
 */
export class DeviceRegistry {
  readonly #repo: DeviceRepository;
  readonly #clock: Clock;
  readonly #overlapMs: number;
  readonly #memo: AllowlistMemo;

  constructor(repo: DeviceRepository, clock: Clock, options: { rotationOverlapMs?: number } = {}) {
    this.#repo = repo;
    this.#memo = new AllowlistMemo();
    this.#clock = clock;
    this.#overlapMs = options.rotationOverlapMs ?? limits.rotationOverlapMs;
  }

  /**
   * The allowlist check, run at every handshake and on every device RPC. Devices it accepted are kept in
   * memory by fingerprint, valid until the next change to the registry (see AllowlistMemo), so a
   * repeated check is one hash and a map lookup; the time limits (expiry, end of the rotation overlap)
   * are applied afresh on every check, cached or not.
   */
  async authorizePeer(leafDer: Uint8Array): Promise<PeerDecision> {
    const fingerprint = certificateFingerprint(leafDer);
    const memo = this.#memo;
    const remembered = memo.get(fingerprint);
    if (remembered) return decide(remembered, fingerprint, this.#clock.now());
    const generation = memo.generation;
    const revoked = await this.#repo.findRevokedCertificate(fingerprint);
    if (revoked) return { ok: false, reason: "certificate_revoked", fingerprint, deviceId: revoked.deviceId };
    const device = await this.#repo.findByCertificate(fingerprint);
    if (!device) return { ok: false, reason: "unknown_certificate", fingerprint };
    const kept = frozenCopy(device);
    const decision = decide(kept, fingerprint, this.#clock.now());
    if (decision.ok) memo.remember(fingerprint, kept, generation);
    return decision;
  }

  get(deviceId: string): Promise<PairedDevice | undefined> {
    return this.#repo.get(deviceId);
  }

  list(): Promise<PairedDevice[]> {
    return this.#repo.list();
  }

  counts(): Promise<{ active: number; revoked: number }> {
    return this.#repo.counts();
  }

  /** Records a newly paired device. Re-pairing keeps the device id only with the same identity key. */
  async recordPairing(record: PairingRecord, actor = "admin"): Promise<PairedDevice> {
    const now = this.#clock.now();
    const identityPublicKey = Buffer.from(record.identityPublicKey);
    const existing = await this.#repo.get(record.deviceId);
    const revokedOld: RevokedCertificate[] = [];
    if (existing) {
      if (existing.revokedAt !== undefined)
        throw new IdentityError(
          "device_revoked",
          `device ${record.deviceId} is revoked; remove it before pairing again`,
        );
      if (!existing.identityPublicKey.equals(identityPublicKey))
        throw new IdentityError(
          "identity_mismatch",
          `device ${record.deviceId} is paired with a different identity key`,
        );
      for (const cert of certificatesOf(existing))
        revokedOld.push(revocationOf(cert, existing.deviceId, now, "superseded by re-pairing"));
    }
    const device: PairedDevice = {
      deviceId: record.deviceId,
      clientKind: record.clientKind,
      deviceName: record.deviceName,
      platform: record.platform,
      identityPublicKey,
      identityFingerprint: identityFingerprint(identityPublicKey),
      current: { ...record.certificate },
      pairedAt: existing?.pairedAt ?? now,
      updatedAt: now,
    };
    await AllowlistMemo.change(() =>
      this.#repo.save(device, revokedOld, {
        kind: existing ? "device.repaired" : "device.paired",
        actor,
        deviceId: device.deviceId,
        detail: { certificate: record.certificate.fingerprint, client_kind: record.clientKind },
      }),
    );
    return device;
  }

  /**
   * Makes `next` the device's current certificate. The old current one stays trusted for the overlap
   * (5 minutes, or half its remaining life if that is shorter); an older previous one is revoked now.
   */
  async recordRotation(
    deviceId: string,
    next: TrustedCertificate,
    actor = `device:${deviceId}`,
  ): Promise<PairedDevice> {
    const now = this.#clock.now();
    const device = await this.#require(deviceId);
    if (device.revokedAt !== undefined)
      throw new IdentityError("device_revoked", `device ${deviceId} is revoked`);
    const revoked = device.previous ? [revocationOf(device.previous, deviceId, now, "rotated out")] : [];
    // The overlap is the configured one or half the old certificate's remaining life, whichever is
    // shorter: it always ends before the old certificate expires (short-lived certificates included).
    const overlap = Math.min(this.#overlapMs, Math.max(0, Math.floor((device.current.expiresAt - now) / 2)));
    const updated: PairedDevice = {
      ...device,
      current: { ...next },
      previous: { ...device.current, acceptedUntil: now + overlap },
      updatedAt: now,
    };
    await AllowlistMemo.change(() =>
      this.#repo.save(updated, revoked, {
        kind: "device.certificate_rotated",
        actor,
        deviceId,
        detail: { previous: device.current.fingerprint, current: next.fingerprint },
      }),
    );
    return updated;
  }

  /**
   * Makes `next` the device's current certificate after a recovery: the certificates it replaces are
   * revoked at once (the device no longer holds them, or they expired), with no overlap.
   */
  async recordRecovery(
    deviceId: string,
    next: TrustedCertificate,
    detail: Record<string, unknown>,
  ): Promise<PairedDevice> {
    const now = this.#clock.now();
    const device = await this.#require(deviceId);
    if (device.revokedAt !== undefined)
      throw new IdentityError("device_revoked", `device ${deviceId} is revoked`);
    const revoked = certificatesOf(device).map((cert) =>
      revocationOf(cert, deviceId, now, "replaced by recovery"),
    );
    const { previous: _dropped, ...rest } = device;
    const updated: PairedDevice = { ...rest, current: { ...next }, updatedAt: now };
    await AllowlistMemo.change(() =>
      this.#repo.save(updated, revoked, {
        kind: "device.certificate_recovered",
        actor: `device:${deviceId}`,
        deviceId,
        detail: { ...detail, replaced: device.current.fingerprint, current: next.fingerprint },
      }),
    );
    return updated;
  }

  /** Revokes the device and every certificate it holds. Idempotent on an already revoked device. */
  async revoke(deviceId: string, reason: string, actor = "admin"): Promise<PairedDevice> {
    const now = this.#clock.now();
    const device = await this.#require(deviceId);
    if (device.revokedAt !== undefined) return device;
    const updated: PairedDevice = { ...device, revokedAt: now, revokedReason: reason, updatedAt: now };
    const revoked = certificatesOf(device).map((cert) => revocationOf(cert, deviceId, now, reason));
    await AllowlistMemo.change(() =>
      this.#repo.save(updated, revoked, { kind: "device.revoked", actor, deviceId, detail: { reason } }),
    );
    return updated;
  }

  /** Forgets a device (clears a revocation); its certificates stay on the revoked list until they expire. */
  async remove(deviceId: string, actor = "admin"): Promise<boolean> {
    const device = await this.#repo.get(deviceId);
    if (!device) return false;
    return AllowlistMemo.change(() =>
      this.#repo.remove(deviceId, { kind: "device.removed", actor, deviceId }),
    );
  }

  pruneRevokedCertificates(): Promise<number> {
    return AllowlistMemo.change(() => this.#repo.pruneRevokedCertificates(this.#clock.now()));
  }

  listRevokedCertificates(): Promise<RevokedCertificate[]> {
    return this.#repo.listRevokedCertificates();
  }

  async #require(deviceId: string): Promise<PairedDevice> {
    const device = await this.#repo.get(deviceId);
    if (!device) throw new IdentityError("device_not_found", `no paired device ${deviceId}`);
    return device;
  }
}

/** The allowlist rules for a device found by one of its certificates' fingerprint, at `now`. */
function decide(device: PairedDevice, fingerprint: string, now: number): PeerDecision {
  const deviceId = device.deviceId;
  if (device.revokedAt !== undefined) return { ok: false, reason: "device_revoked", fingerprint, deviceId };
  if (device.current.fingerprint === fingerprint) {
    if (now >= device.current.expiresAt)
      return { ok: false, reason: "certificate_expired", fingerprint, deviceId };
    return { ok: true, device, certificate: "current", fingerprint };
  }
  const previous = device.previous;
  if (previous?.fingerprint !== fingerprint) return { ok: false, reason: "unknown_certificate", fingerprint };
  if (now >= previous.acceptedUntil)
    return { ok: false, reason: "rotation_overlap_ended", fingerprint, deviceId };
  if (now >= previous.expiresAt) return { ok: false, reason: "certificate_expired", fingerprint, deviceId };
  return { ok: true, device, certificate: "previous", fingerprint };
}

function certificatesOf(device: PairedDevice): TrustedCertificate[] {
  return device.previous ? [device.current, device.previous] : [device.current];
}

function revocationOf(
  cert: TrustedCertificate,
  deviceId: string,
  now: number,
  reason: string,
): RevokedCertificate {
  return { fingerprint: cert.fingerprint, deviceId, revokedAt: now, expiresAt: cert.expiresAt, reason };
}

/** The registry's view of an issued certificate. */
export function trustedCertificateOf(pemOrDer: string | Uint8Array): TrustedCertificate {
  const cert = new X509Certificate(pemOrDer);
  return { fingerprint: certificateFingerprint(cert.raw), expiresAt: Date.parse(cert.validTo) };
}

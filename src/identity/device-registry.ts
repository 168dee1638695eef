import { X509Certificate } from "node:crypto";
import type { AuditEntry } from "../common/audit.js";
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
import { assertRoleFits, type DeviceRole } from "./device-roles.js";
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
  /** The role the approval granted (none: the device calls no operator method). */
  role?: DeviceRole;
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

  /**
   * Records a newly paired device. Re-pairing keeps the device id only with the same identity key.
   * Idempotent for the same certificate (two gateways delivering one approval record it once).
   */
  async recordPairing(record: PairingRecord, actor = "admin"): Promise<PairedDevice> {
    const identityPublicKey = Buffer.from(record.identityPublicKey);
    assertRoleFits(record.clientKind, record.role);
    return this.#change(record.deviceId, true, (existing, now) => {
      if (existing?.current.fingerprint === record.certificate.fingerprint) return existing;
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
        if (existing.clientKind !== record.clientKind)
          throw new IdentityError(
            "identity_mismatch",
            `device ${record.deviceId} is paired as "${existing.clientKind}"; remove it before pairing it as "${record.clientKind}"`,
          );
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
        ...(record.role === undefined ? {} : { role: record.role }),
      };
      const revoked = existing
        ? certificatesOf(existing).map((cert) =>
            revocationOf(cert, existing.deviceId, now, "superseded by re-pairing"),
          )
        : [];
      return {
        device,
        revoked,
        audit: {
          kind: existing ? "device.repaired" : "device.paired",
          actor,
          deviceId: device.deviceId,
          detail: {
            certificate: record.certificate.fingerprint,
            client_kind: record.clientKind,
            role: record.role ?? null,
          },
        },
      };
    });
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
    return this.#change(deviceId, false, (device, now) => {
      if (device!.revokedAt !== undefined)
        throw new IdentityError("device_revoked", `device ${deviceId} is revoked`);
      const current = device!.current;
      const revoked = device!.previous ? [revocationOf(device!.previous, deviceId, now, "rotated out")] : [];
      // The overlap is the configured one or half the old certificate's remaining life, whichever is
      // shorter: it always ends before the old certificate expires (short-lived certificates included).
      const overlap = Math.min(this.#overlapMs, Math.max(0, Math.floor((current.expiresAt - now) / 2)));
      return {
        device: { ...device!, current: { ...next }, previous: { ...current, acceptedUntil: now + overlap } },
        revoked,
        audit: {
          kind: "device.certificate_rotated",
          actor,
          deviceId,
          detail: { previous: current.fingerprint, current: next.fingerprint },
        },
      };
    });
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
    return this.#change(deviceId, false, (device, now) => {
      if (device!.revokedAt !== undefined)
        throw new IdentityError("device_revoked", `device ${deviceId} is revoked`);
      const revoked = certificatesOf(device!).map((cert) =>
        revocationOf(cert, deviceId, now, "replaced by recovery"),
      );
      const { previous: _dropped, ...rest } = device!;
      return {
        device: { ...rest, current: { ...next } },
        revoked,
        audit: {
          kind: "device.certificate_recovered",
          actor: `device:${deviceId}`,
          deviceId,
          detail: { ...detail, replaced: device!.current.fingerprint, current: next.fingerprint },
        },
      };
    });
  }

  /** Revokes the device and every certificate it holds. Idempotent on an already revoked device. */
  async revoke(deviceId: string, reason: string, actor = "admin"): Promise<PairedDevice> {
    return this.#change(deviceId, false, (device, now) => {
      if (device!.revokedAt !== undefined) return device!;
      return {
        device: { ...device!, revokedAt: now, revokedReason: reason },
        revoked: certificatesOf(device!).map((cert) => revocationOf(cert, deviceId, now, reason)),
        audit: { kind: "device.revoked", actor, deviceId, detail: { reason } },
      };
    });
  }

  /**
   * Gives a device a role, or takes it away (`undefined`). Audited with the old and new role; a revoked
   * device keeps no role worth changing, and a `node` device may hold none.
   */
  async setRole(deviceId: string, role: DeviceRole | undefined, actor = "admin"): Promise<PairedDevice> {
    return this.#change(deviceId, false, (device, now) => {
      assertRoleFits(device!.clientKind, role);
      if (device!.revokedAt !== undefined)
        throw new IdentityError("device_revoked", `device ${deviceId} is revoked; its role cannot change`);
      if (device!.role === role) return device!;
      const { role: _old, ...rest } = device!;
      return {
        device: { ...rest, ...(role === undefined ? {} : { role }), updatedAt: now },
        revoked: [],
        audit: {
          kind: "device.role_changed",
          actor,
          deviceId,
          detail: { from: device!.role ?? null, to: role ?? null },
        },
      };
    });
  }

  /** Forgets a device (clears a revocation); its certificates stay on the revoked list until they expire. */
  async remove(deviceId: string, actor = "admin"): Promise<boolean> {
    const device = await this.#repo.get(deviceId);
    if (!device) return false;
    return AllowlistMemo.change(() =>
      this.#repo.remove(deviceId, { kind: "device.removed", actor, deviceId }),
    );
  }

  /**
   * Read, plan, compare-and-set, retried when another writer (another gateway, or another call in this
   * one) changed the device in between: a rotation read before a revocation can never write the device
   * back unrevoked. `plan` returns the device itself when there is nothing to write.
   * Each write's `updatedAt` is strictly greater than the last, so it works as the row's version.
   */
  async #change(
    deviceId: string,
    mayBeNew: boolean,
    plan: (device: PairedDevice | undefined, now: number) => PairedDevice | Planned,
  ): Promise<PairedDevice> {
    for (let attempt = 0; ; attempt++) {
      const existing = await this.#repo.get(deviceId);
      if (!existing && !mayBeNew) throw new IdentityError("device_not_found", `no paired device ${deviceId}`);
      const now = this.#clock.now();
      const planned = plan(existing, now);
      if (!("audit" in planned)) return planned;
      const device = { ...planned.device, updatedAt: Math.max(now, (existing?.updatedAt ?? 0) + 1) };
      const saved = await AllowlistMemo.change(() =>
        this.#repo.save(device, planned.revoked, planned.audit, existing ? existing.updatedAt : null),
      );
      if (saved) return device;
      if (attempt >= 8)
        throw new IdentityError("conflict", `device ${deviceId} kept changing while it was being updated`);
    }
  }

  pruneRevokedCertificates(): Promise<number> {
    return AllowlistMemo.change(() => this.#repo.pruneRevokedCertificates(this.#clock.now()));
  }

  listRevokedCertificates(): Promise<RevokedCertificate[]> {
    return this.#repo.listRevokedCertificates();
  }
}

interface Planned {
  device: PairedDevice;
  revoked: RevokedCertificate[];
  audit: AuditEntry;
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

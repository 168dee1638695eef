import type { AuditEntry } from "../common/audit.js";
import type { DeviceRole } from "./device-roles.js";

/** A device's certificate as the gateway trusts it: by DER fingerprint, with its expiry. */
export interface TrustedCertificate {
  fingerprint: string;
  expiresAt: number;
}

export interface PairedDevice {
  deviceId: string;
  clientKind: string;
  deviceName: string;
  platform: string;
  /** Raw 32-byte Ed25519 identity public key; signs pairing, status polls and renewals. */
  identityPublicKey: Buffer;
  identityFingerprint: string;
  current: TrustedCertificate;
  /** The certificate before the last rotation, trusted until `acceptedUntil` (the overlap). */
  previous?: TrustedCertificate & { acceptedUntil: number };
  pairedAt: number;
  updatedAt: number;
  revokedAt?: number;
  revokedReason?: string;
  /** What the device may do as an operator (device-roles.ts); absent: nothing. */
  role?: DeviceRole;
}

export interface RevokedCertificate {
  fingerprint: string;
  deviceId: string;
  revokedAt: number;
  /** The certificate's own expiry: after it, the entry is pruned (the certificate is dead anyway). */
  expiresAt: number;
  reason: string;
}

/**
 * Persistence port for the device registry. Each mutation writes its audit entry in the same
 * transaction. The SQLite implementation is in store/; a PostgreSQL one can implement the same.
 */
export interface DeviceRepository {
  get(deviceId: string): Promise<PairedDevice | undefined>;
  list(): Promise<PairedDevice[]>;
  /** Devices by state (active: not revoked). */
  counts(): Promise<{ active: number; revoked: number }>;
  findByCertificate(fingerprint: string): Promise<PairedDevice | undefined>;
  findRevokedCertificate(fingerprint: string): Promise<RevokedCertificate | undefined>;
  /**
   * Inserts or replaces the device row, and records revoked certificates, atomically. With `expected`
   * the write is a compare-and-set: `null` means the device must not exist yet, a number is the
   * `updatedAt` the stored row must still have (so a rotation read before a revocation on another
   * gateway cannot write the device back unrevoked). Returns false, writing nothing, when it does not match.
   */
  save(
    device: PairedDevice,
    revokedCertificates: readonly RevokedCertificate[],
    audit: AuditEntry,
    expected?: number | null,
  ): Promise<boolean>;
  remove(deviceId: string, audit: AuditEntry): Promise<boolean>;
  pruneRevokedCertificates(now: number): Promise<number>;
  listRevokedCertificates(): Promise<RevokedCertificate[]>;
}

import type { AuditEntry } from "../../common/audit.js";
import type { DeviceRepository, PairedDevice, RevokedCertificate } from "../../identity/device-records.js";
import { type DeviceRow, type RevokedRow, toDevice, toRevoked } from "../rows.js";
import type { PgAuditLog } from "./audit-log.js";
import type { PgDatabase } from "./database.js";
import { publish } from "./signals.js";

const COLUMNS = [
  "device_id",
  "client_kind",
  "device_name",
  "platform",
  "identity_public",
  "identity_fingerprint",
  "current_cert_fingerprint",
  "current_cert_expires_at",
  "previous_cert_fingerprint",
  "previous_cert_expires_at",
  "previous_cert_accepted_until",
  "paired_at",
  "updated_at",
  "revoked_at",
  "revoked_reason",
  "role",
] as const;
const PLACEHOLDERS = COLUMNS.map((_, i) => `$${i + 1}`).join(", ");
const INSERT = `INSERT INTO devices (${COLUMNS.join(", ")}) VALUES (${PLACEHOLDERS})`;
const SET_ALL = COLUMNS.slice(1)
  .map((c) => `${c} = excluded.${c}`)
  .join(", ");
/** The compare-and-set update: the stored `updated_at` must still be the one the caller read. */
const UPDATE_IF = `UPDATE devices SET ${COLUMNS.slice(1)
  .map((c, i) => `${c} = $${i + 2}`)
  .join(", ")} WHERE device_id = $1 AND updated_at = $${COLUMNS.length + 1} RETURNING device_id`;

function values(device: PairedDevice): unknown[] {
  return [
    device.deviceId,
    device.clientKind,
    device.deviceName,
    device.platform,
    device.identityPublicKey,
    device.identityFingerprint,
    device.current.fingerprint,
    device.current.expiresAt,
    device.previous?.fingerprint ?? null,
    device.previous?.expiresAt ?? null,
    device.previous?.acceptedUntil ?? null,
    device.pairedAt,
    device.updatedAt,
    device.revokedAt ?? null,
    device.revokedReason ?? null,
    device.role ?? null,
  ];
}

/** The device registry on PostgreSQL; each mutation, its audit entry and its `device` signal commit together. */
export class PgDeviceRepository implements DeviceRepository {
  readonly #db: PgDatabase;
  readonly #audit: PgAuditLog;

  constructor(db: PgDatabase, audit: PgAuditLog) {
    this.#db = db;
    this.#audit = audit;
  }

  async get(deviceId: string): Promise<PairedDevice | undefined> {
    const [row] = await this.#db.rows<DeviceRow>("SELECT * FROM devices WHERE device_id = $1", [deviceId]);
    return row && toDevice(row);
  }

  async list(): Promise<PairedDevice[]> {
    const rows = await this.#db.rows<DeviceRow>("SELECT * FROM devices ORDER BY paired_at, device_id");
    return rows.map(toDevice);
  }

  async counts(): Promise<{ active: number; revoked: number }> {
    const [row] = await this.#db.rows<{ active: number; revoked: number }>(
      "SELECT count(*) - count(revoked_at) AS active, count(revoked_at) AS revoked FROM devices",
    );
    return { active: row?.active ?? 0, revoked: row?.revoked ?? 0 };
  }

  async findByCertificate(fingerprint: string): Promise<PairedDevice | undefined> {
    const [row] = await this.#db.rows<DeviceRow>(
      "SELECT * FROM devices WHERE current_cert_fingerprint = $1 OR previous_cert_fingerprint = $1",
      [fingerprint],
    );
    return row && toDevice(row);
  }

  async findRevokedCertificate(fingerprint: string): Promise<RevokedCertificate | undefined> {
    const [row] = await this.#db.rows<RevokedRow>(
      "SELECT * FROM revoked_certificates WHERE fingerprint = $1",
      [fingerprint],
    );
    return row && toRevoked(row);
  }

  async listRevokedCertificates(): Promise<RevokedCertificate[]> {
    const rows = await this.#db.rows<RevokedRow>(
      "SELECT * FROM revoked_certificates ORDER BY revoked_at, fingerprint",
    );
    return rows.map(toRevoked);
  }

  /**
   * One statement decides, so of two gateways saving the same device against the same `expected`,
   * exactly one wins: the loser waits on the row lock, then finds `updated_at` changed (or the row
   * present) and writes nothing.
   */
  async save(
    device: PairedDevice,
    revoked: readonly RevokedCertificate[],
    audit: AuditEntry,
    expected?: number | null,
  ): Promise<boolean> {
    return this.#db.transaction(async (tx) => {
      if (expected === undefined)
        await tx.execute(`${INSERT} ON CONFLICT (device_id) DO UPDATE SET ${SET_ALL}`, values(device));
      else if (expected === null) {
        const inserted = await tx.execute(
          `${INSERT} ON CONFLICT (device_id) DO NOTHING RETURNING device_id`,
          values(device),
        );
        if (inserted === 0) return false;
      } else if ((await tx.execute(UPDATE_IF, [...values(device), expected])) === 0) return false;
      for (const r of revoked)
        await tx.execute(
          `INSERT INTO revoked_certificates (fingerprint, device_id, revoked_at, expires_at, reason)
           VALUES ($1, $2, $3, $4, $5) ON CONFLICT (fingerprint) DO NOTHING`,
          [r.fingerprint, r.deviceId, r.revokedAt, r.expiresAt, r.reason],
        );
      await this.#audit.appendIn(tx, audit);
      await publish(tx, "device", device.deviceId);
      return true;
    });
  }

  async remove(deviceId: string, audit: AuditEntry): Promise<boolean> {
    return this.#db.transaction(async (tx) => {
      if ((await tx.execute("DELETE FROM devices WHERE device_id = $1", [deviceId])) === 0) return false;
      await this.#audit.appendIn(tx, audit);
      await publish(tx, "device", deviceId);
      return true;
    });
  }

  async pruneRevokedCertificates(now: number): Promise<number> {
    return this.#db.execute("DELETE FROM revoked_certificates WHERE expires_at <= $1", [now]);
  }
}

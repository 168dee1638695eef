import type { Database } from "better-sqlite3";
import type { AuditEntry } from "../../common/audit.js";
import type { DeviceRepository, PairedDevice, RevokedCertificate } from "../../identity/device-records.js";
import type { LocalSignals } from "../local-signals.js";
import { type DeviceRow, type RevokedRow, toDevice, toRevoked } from "../rows.js";
import type { SqliteAuditLog } from "./audit-log.js";

/** Device registry persistence on SQLite; each mutation and its audit entry commit together. */
export class SqliteDeviceRepository implements DeviceRepository {
  readonly #db: Database;
  readonly #audit: SqliteAuditLog;
  readonly #signals: LocalSignals;
  readonly #byId;
  readonly #all;
  readonly #byCert;
  readonly #revokedByFp;
  readonly #allRevoked;
  readonly #upsert;
  readonly #insertRevoked;
  readonly #delete;
  readonly #prune;

  constructor(db: Database, audit: SqliteAuditLog, signals: LocalSignals) {
    this.#db = db;
    this.#audit = audit;
    this.#signals = signals;
    this.#byId = db.prepare<[string], DeviceRow>("SELECT * FROM devices WHERE device_id = ?");
    this.#all = db.prepare<[], DeviceRow>("SELECT * FROM devices ORDER BY paired_at, device_id");
    this.#byCert = db.prepare<[string, string], DeviceRow>(
      "SELECT * FROM devices WHERE current_cert_fingerprint = ? OR previous_cert_fingerprint = ?",
    );
    this.#revokedByFp = db.prepare<[string], RevokedRow>(
      "SELECT * FROM revoked_certificates WHERE fingerprint = ?",
    );
    this.#allRevoked = db.prepare<[], RevokedRow>("SELECT * FROM revoked_certificates ORDER BY revoked_at");
    this.#upsert = db.prepare(`
      INSERT OR REPLACE INTO devices (device_id, client_kind, device_name, platform, identity_public,
        identity_fingerprint, current_cert_fingerprint, current_cert_expires_at, previous_cert_fingerprint,
        previous_cert_expires_at, previous_cert_accepted_until, paired_at, updated_at, revoked_at, revoked_reason,
        role)
      VALUES (@device_id, @client_kind, @device_name, @platform, @identity_public, @identity_fingerprint,
        @current_cert_fingerprint, @current_cert_expires_at, @previous_cert_fingerprint, @previous_cert_expires_at,
        @previous_cert_accepted_until, @paired_at, @updated_at, @revoked_at, @revoked_reason, @role)`);
    this.#insertRevoked = db.prepare(`
      INSERT OR IGNORE INTO revoked_certificates (fingerprint, device_id, revoked_at, expires_at, reason)
      VALUES (?, ?, ?, ?, ?)`);
    this.#delete = db.prepare("DELETE FROM devices WHERE device_id = ?");
    this.#prune = db.prepare("DELETE FROM revoked_certificates WHERE expires_at <= ?");
  }

  async get(deviceId: string): Promise<PairedDevice | undefined> {
    const row = this.#byId.get(deviceId);
    return row && toDevice(row);
  }

  async list(): Promise<PairedDevice[]> {
    return this.#all.all().map(toDevice);
  }

  /** Paired devices by state, counted by the database (for /metrics at any fleet size). */
  async counts(): Promise<{ active: number; revoked: number }> {
    const row = this.#db
      .prepare("SELECT count(*) - count(revoked_at) AS active, count(revoked_at) AS revoked FROM devices")
      .get() as { active: number; revoked: number };
    return { active: row.active, revoked: row.revoked };
  }

  async findByCertificate(fingerprint: string): Promise<PairedDevice | undefined> {
    const row = this.#byCert.get(fingerprint, fingerprint);
    return row && toDevice(row);
  }

  async findRevokedCertificate(fingerprint: string): Promise<RevokedCertificate | undefined> {
    const row = this.#revokedByFp.get(fingerprint);
    return row && toRevoked(row);
  }

  async listRevokedCertificates(): Promise<RevokedCertificate[]> {
    return this.#allRevoked.all().map(toRevoked);
  }

  async save(
    device: PairedDevice,
    revoked: readonly RevokedCertificate[],
    audit: AuditEntry,
    expected?: number | null,
  ): Promise<boolean> {
    const saved = this.#db
      .transaction(() => {
        if (expected !== undefined) {
          const stored = this.#byId.get(device.deviceId);
          if (expected === null ? stored !== undefined : stored?.updated_at !== expected) return false;
        }
        this.#upsert.run({
          device_id: device.deviceId,
          client_kind: device.clientKind,
          device_name: device.deviceName,
          platform: device.platform,
          identity_public: device.identityPublicKey,
          identity_fingerprint: device.identityFingerprint,
          current_cert_fingerprint: device.current.fingerprint,
          current_cert_expires_at: device.current.expiresAt,
          previous_cert_fingerprint: device.previous?.fingerprint ?? null,
          previous_cert_expires_at: device.previous?.expiresAt ?? null,
          previous_cert_accepted_until: device.previous?.acceptedUntil ?? null,
          paired_at: device.pairedAt,
          updated_at: device.updatedAt,
          revoked_at: device.revokedAt ?? null,
          revoked_reason: device.revokedReason ?? null,
          role: device.role ?? null,
        });
        for (const r of revoked)
          this.#insertRevoked.run(r.fingerprint, r.deviceId, r.revokedAt, r.expiresAt, r.reason);
        this.#audit.appendSync(audit);
        return true;
      })
      .immediate();
    if (saved) this.#signals.publish("device", device.deviceId);
    return saved;
  }

  async remove(deviceId: string, audit: AuditEntry): Promise<boolean> {
    const gone = this.#db
      .transaction(() => {
        const removed = this.#delete.run(deviceId).changes > 0;
        if (removed) this.#audit.appendSync(audit);
        return removed;
      })
      .immediate();
    if (gone) this.#signals.publish("device", deviceId);
    return gone;
  }

  async pruneRevokedCertificates(now: number): Promise<number> {
    return this.#prune.run(now).changes;
  }
}

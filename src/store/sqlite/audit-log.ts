import type { Database } from "better-sqlite3";
import type { AuditEntry, AuditRecord } from "../../common/audit.js";
import type { Clock } from "../../common/clock.js";
import { newId } from "../../common/ids.js";
import type { Random } from "../../common/random.js";
import type { AuditLog, AuditQuery } from "../ports.js";
import { type AuditRow, recordOf } from "../rows.js";

/** What the admin API shows of an audit entry: snake_case names, the time as ISO 8601. */
export interface AuditView {
  id: string;
  at: string;
  kind: string;
  actor: string;
  device_id?: string;
  detail: Record<string, string | number | boolean | null>;
}

export function auditView(record: AuditRecord): AuditView {
  return {
    id: record.id,
    at: new Date(record.at).toISOString(),
    kind: record.kind,
    actor: record.actor,
    ...(record.deviceId === undefined ? {} : { device_id: record.deviceId }),
    detail: record.detail ?? {},
  };
}

/** Appends audit entries; called inside the transaction of the change being audited. */
export class SqliteAuditLog implements AuditLog {
  readonly #insert;
  readonly #recent;
  readonly #clock: Clock;
  readonly #random: Random;
  readonly #db: Database;
  /** Told of every entry after it is written (the console's live updates); never throws into a write. */
  onAppend: ((record: AuditRecord) => void) | undefined;

  constructor(db: Database, clock: Clock, random: Random) {
    this.#clock = clock;
    this.#random = random;
    this.#db = db;
    this.#insert = db.prepare(
      "INSERT INTO audit_events (id, at, kind, actor, device_id, detail) VALUES (?, ?, ?, ?, ?, ?)",
    );
    this.#recent = db.prepare<[number], AuditRow>(
      "SELECT * FROM audit_events ORDER BY at DESC, rowid DESC LIMIT ?",
    );
  }

  /** Synchronous so it can run inside a better-sqlite3 transaction. */
  appendSync(entry: AuditEntry): AuditRecord {
    const record: AuditRecord = { id: newId(this.#clock, this.#random), at: this.#clock.now(), ...entry };
    this.#insert.run(
      record.id,
      record.at,
      record.kind,
      record.actor,
      record.deviceId ?? null,
      JSON.stringify(record.detail ?? {}),
    );
    // After the surrounding transaction has committed (better-sqlite3 commits synchronously).
    if (this.onAppend) {
      const listener = this.onAppend;
      setImmediate(() => listener(record));
    }
    return record;
  }

  async append(entry: AuditEntry): Promise<AuditRecord> {
    return this.appendSync(entry);
  }

  /** Deletes entries written before `olderThan` (ms since the epoch), in batches so a large backlog
   *  never holds the write lock for long; returns how many. */
  async prune(olderThan: number): Promise<number> {
    const batch = this.#db.prepare(
      "DELETE FROM audit_events WHERE rowid IN (SELECT rowid FROM audit_events WHERE at < ? LIMIT 5000)",
    );
    let total = 0;
    for (;;) {
      const { changes } = batch.run(olderThan);
      total += changes;
      if (changes < 5000) return total;
    }
  }

  async recent(limit = 100): Promise<AuditRecord[]> {
    return this.#recent.all(limit).map(recordOf);
  }

  /**
   * Newest first, filtered: `kind` matches itself and its sub-kinds (`pairing` matches
   * `pairing.approved`), `since` is ms since the epoch, `deviceId` exact.
   */
  async query(filter: AuditQuery): Promise<AuditRecord[]> {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (filter.before !== undefined) {
      // Row values order exactly like ORDER BY at DESC, rowid DESC; an unknown id matches nothing.
      where.push("(at, rowid) < (SELECT at, rowid FROM audit_events WHERE id = ?)");
      args.push(filter.before);
    }
    if (filter.kind) {
      where.push("(kind = ? OR kind LIKE ? ESCAPE '\\')");
      args.push(filter.kind, `${filter.kind.replace(/[\\%_]/g, "\\$&")}.%`);
    }
    if (filter.since !== undefined) {
      where.push("at >= ?");
      args.push(filter.since);
    }
    if (filter.deviceId) {
      where.push("device_id = ?");
      args.push(filter.deviceId);
    }
    const sql = `SELECT * FROM audit_events ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY at DESC, rowid DESC LIMIT ?`;
    return this.#db
      .prepare<(string | number)[], AuditRow>(sql)
      .all(...args, filter.limit)
      .map(recordOf);
  }
}

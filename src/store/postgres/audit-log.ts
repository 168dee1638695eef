import type { AuditEntry, AuditRecord } from "../../common/audit.js";
import type { Clock } from "../../common/clock.js";
import { newId } from "../../common/ids.js";
import type { Random } from "../../common/random.js";
import type { AuditLog, AuditQuery } from "../ports.js";
import { type AuditRow, recordOf } from "../rows.js";
import type { PgDatabase, Tx } from "./database.js";

const PRUNE_BATCH = 5000;

/** The entry an operation audits, built from the row the statement returned when it is a function. */

/**
 * The audit log on PostgreSQL. Entries are written inside the transaction of the change they describe
 * (`appendIn`); ordering is `at DESC, seq DESC`, seq being the insertion order the ULID alone cannot
 * give across gateways.
 */
export class PgAuditLog implements AuditLog {
  readonly #db: PgDatabase;
  readonly #clock: Clock;
  readonly #random: Random;
  onAppend: ((record: AuditRecord) => void) | undefined;

  constructor(db: PgDatabase, clock: Clock, random: Random) {
    this.#db = db;
    this.#clock = clock;
    this.#random = random;
  }

  /** Writes the entry in `tx`; `onAppend` hears of it only after that transaction committed. */
  async appendIn(tx: Tx, entry: AuditEntry): Promise<AuditRecord> {
    const record: AuditRecord = { id: newId(this.#clock, this.#random), at: this.#clock.now(), ...entry };
    await tx.execute(
      "INSERT INTO audit_events (id, at, kind, actor, device_id, detail) VALUES ($1, $2, $3, $4, $5, $6)",
      [
        record.id,
        record.at,
        record.kind,
        record.actor,
        record.deviceId ?? null,
        JSON.stringify(record.detail ?? {}),
      ],
    );
    tx.afterCommit(() => this.onAppend?.(record));
    return record;
  }

  async append(entry: AuditEntry): Promise<AuditRecord> {
    return this.#db.transaction((tx) => this.appendIn(tx, entry));
  }

  async query(filter: AuditQuery): Promise<AuditRecord[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    const arg = (value: unknown) => {
      args.push(value);
      return `$${args.length}`;
    };
    if (filter.before !== undefined)
      // Row values order exactly like ORDER BY at DESC, seq DESC; an unknown id gives NULL: no rows.
      where.push(`(at, seq) < (SELECT at, seq FROM audit_events WHERE id = ${arg(filter.before)})`);
    if (filter.kind)
      where.push(
        `(kind = ${arg(filter.kind)} OR kind LIKE ${arg(`${filter.kind.replace(/[\\%_]/g, "\\$&")}.%`)} ESCAPE '\\')`,
      );
    if (filter.since !== undefined) where.push(`at >= ${arg(filter.since)}`);
    if (filter.deviceId) where.push(`device_id = ${arg(filter.deviceId)}`);
    const sql = `SELECT * FROM audit_events ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
      ORDER BY at DESC, seq DESC LIMIT ${arg(filter.limit)}`;
    return (await this.#db.rows<AuditRow>(sql, args)).map(recordOf);
  }

  async recent(limit = 100): Promise<AuditRecord[]> {
    const rows = await this.#db.rows<AuditRow>(
      "SELECT * FROM audit_events ORDER BY at DESC, seq DESC LIMIT $1",
      [limit],
    );
    return rows.map(recordOf);
  }

  /** In batches, each its own short transaction, so a large backlog never holds locks for long. */
  async prune(olderThan: number): Promise<number> {
    let total = 0;
    for (;;) {
      const deleted = await this.#db.execute(
        "DELETE FROM audit_events WHERE seq IN (SELECT seq FROM audit_events WHERE at < $1 LIMIT $2)",
        [olderThan, PRUNE_BATCH],
      );
      total += deleted;
      if (deleted < PRUNE_BATCH) return total;
    }
  }
}

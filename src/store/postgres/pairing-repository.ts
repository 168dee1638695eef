import type { AuditEntry } from "../../common/audit.js";
import { CODE_COLUMNS, fromRow, insertSql, REQUEST_COLUMNS, valuesOf } from "../pairing-rows.js";
import type { AuditOf, PairingRepository } from "../ports.js";
import type { PairingCodeRecord, PairingRequestRecord, PairingRequestState } from "../records.js";
import { auditOf } from "../rows.js";
import type { PgAuditLog } from "./audit-log.js";
import type { PgDatabase, Tx } from "./database.js";
import { publish } from "./signals.js";

type Row = Record<string, unknown>;
const toCode = (row: Row) => fromRow(CODE_COLUMNS, row);
const toRequest = (row: Row) => fromRow(REQUEST_COLUMNS, row);

/** Every column but the key, written from `next` when its compare-and-set matches. */
const TRANSITION = `UPDATE pairing_requests SET ${REQUEST_COLUMNS.slice(1)
  .map(([, c], i) => `${c} = $${i + 2}`)
  .join(
    ", ",
  )} WHERE request_id = $1 AND state = ANY($${REQUEST_COLUMNS.length + 1}::text[]) RETURNING request_id`;

/**
 * Pairing codes and requests on PostgreSQL. Each change is one statement whose WHERE clause names the
 * state it expects, run in a transaction with its audit entry: two gateways racing on a code or a
 * request serialize on the row lock, and the loser's re-checked WHERE clause matches nothing.
 */
export class PgPairingRepository implements PairingRepository {
  readonly #db: PgDatabase;
  readonly #audit: PgAuditLog;

  constructor(db: PgDatabase, audit: PgAuditLog) {
    this.#db = db;
    this.#audit = audit;
  }

  async insertCode(code: PairingCodeRecord, audit: AuditEntry): Promise<void> {
    await this.#db.transaction(async (tx) => {
      await tx.execute(insertSql("pairing_codes", CODE_COLUMNS), valuesOf(CODE_COLUMNS, code));
      await this.#audit.appendIn(tx, audit);
    });
  }

  async liveCode(codeId: string): Promise<PairingCodeRecord | undefined> {
    const [row] = await this.#db.rows<Row>(
      "SELECT * FROM pairing_codes WHERE code_id = $1 AND state = 'live'",
      [codeId],
    );
    return row && toCode(row);
  }

  async codeByRowId(id: string): Promise<PairingCodeRecord | undefined> {
    const [row] = await this.#db.rows<Row>("SELECT * FROM pairing_codes WHERE id = $1", [id]);
    return row && toCode(row);
  }

  async liveCodes(): Promise<PairingCodeRecord[]> {
    const rows = await this.#db.rows<Row>(
      "SELECT * FROM pairing_codes WHERE state = 'live' ORDER BY created_at, id",
    );
    return rows.map(toCode);
  }

  async recentCodes(limit = 100): Promise<PairingCodeRecord[]> {
    const rows = await this.#db.rows<Row>(
      "SELECT * FROM pairing_codes ORDER BY created_at DESC, id DESC LIMIT $1",
      [limit],
    );
    return rows.map(toCode);
  }

  async expireCodes(now: number): Promise<string[]> {
    return this.#db.transaction(async (tx) => {
      const rows = await tx.rows<{ code_id: string }>(
        "UPDATE pairing_codes SET state = 'expired', ended_at = $1 WHERE state = 'live' AND expires_at <= $1 RETURNING code_id",
        [now],
      );
      for (const row of rows)
        await this.#audit.appendIn(tx, {
          kind: "pairing.code_expired",
          actor: "system",
          detail: { code_id: row.code_id },
        });
      return rows.map((r) => r.code_id);
    });
  }

  async takeAttempt(
    codeRowId: string,
    now: number,
    audit: AuditOf<PairingCodeRecord>,
  ): Promise<PairingCodeRecord | undefined> {
    return this.#updateCode(
      `UPDATE pairing_codes SET failed_attempts = failed_attempts + 1
       WHERE id = $1 AND state = 'live' AND expires_at > $2 AND failed_attempts < max_attempts RETURNING *`,
      [codeRowId, now],
      audit,
    );
  }

  async returnAttempt(codeRowId: string, audit: AuditOf<PairingCodeRecord>): Promise<void> {
    await this.#updateCode(
      `UPDATE pairing_codes SET failed_attempts = greatest(failed_attempts - 1, 0)
       WHERE id = $1 AND state = 'live' RETURNING *`,
      [codeRowId],
      audit,
    );
  }

  async exhaustCode(codeRowId: string, now: number, audit: AuditOf<PairingCodeRecord>): Promise<boolean> {
    const code = await this.#updateCode(
      "UPDATE pairing_codes SET state = 'exhausted', ended_at = $2 WHERE id = $1 AND state = 'live' RETURNING *",
      [codeRowId, now],
      audit,
    );
    return code !== undefined;
  }

  async consumeCode(
    codeRowId: string,
    now: number,
    request: PairingRequestRecord,
    audit: AuditEntry,
  ): Promise<boolean> {
    return this.#db.transaction(async (tx) => {
      // The code first: if it is no longer live nothing has been written and the commit is empty.
      const used = await tx.execute(
        `UPDATE pairing_codes SET state = 'used', failed_attempts = greatest(failed_attempts - 1, 0), ended_at = $2
         WHERE id = $1 AND state = 'live'`,
        [codeRowId, now],
      );
      if (used === 0) return false;
      await tx.execute(insertSql("pairing_requests", REQUEST_COLUMNS), valuesOf(REQUEST_COLUMNS, request));
      await this.#audit.appendIn(tx, audit);
      await publish(tx, "pairing_request", request.requestId);
      return true;
    });
  }

  async request(requestId: string): Promise<PairingRequestRecord | undefined> {
    const [row] = await this.#db.rows<Row>("SELECT * FROM pairing_requests WHERE request_id = $1", [
      requestId,
    ]);
    return row && toRequest(row);
  }

  async pendingCount(now: number): Promise<number> {
    const [row] = await this.#db.rows<{ n: number }>(
      "SELECT count(*) AS n FROM pairing_requests WHERE state = 'pending_approval' AND expires_at > $1",
      [now],
    );
    return row?.n ?? 0;
  }

  async recentRequests(limit = 100): Promise<PairingRequestRecord[]> {
    const rows = await this.#db.rows<Row>(
      "SELECT * FROM pairing_requests ORDER BY requested_at DESC, request_id DESC LIMIT $1",
      [limit],
    );
    return rows.map(toRequest);
  }

  async openRequestsOf(deviceId: string): Promise<PairingRequestRecord[]> {
    const rows = await this.#db.rows<Row>(
      "SELECT * FROM pairing_requests WHERE state IN ('pending_approval', 'approved') AND device_id = $1",
      [deviceId],
    );
    return rows.map(toRequest);
  }

  async transitionRequest(
    next: PairingRequestRecord,
    from: readonly PairingRequestState[],
    audit: AuditEntry,
  ): Promise<boolean> {
    return this.#db.transaction(async (tx) => {
      const changed = await tx.execute(TRANSITION, [...valuesOf(REQUEST_COLUMNS, next), [...from]]);
      if (changed === 0) return false;
      await this.#audit.appendIn(tx, audit);
      await publish(tx, "pairing_request", next.requestId);
      return true;
    });
  }

  /** One code update and, when it matched, its audit entry from the updated row; one transaction. */
  async #updateCode(
    sql: string,
    args: unknown[],
    audit: AuditOf<PairingCodeRecord>,
  ): Promise<PairingCodeRecord | undefined> {
    return this.#db.transaction(async (tx: Tx) => {
      const [row] = await tx.rows<Row>(sql, args);
      if (!row) return undefined;
      const code = toCode(row);
      await this.#audit.appendIn(tx, auditOf(audit, code));
      return code;
    });
  }
}

import type { Database } from "better-sqlite3";
import type { AuditEntry } from "../../common/audit.js";
import type { LocalSignals } from "../local-signals.js";
import { CODE_COLUMNS, type Columns, fromRow, REQUEST_COLUMNS } from "../pairing-rows.js";
import type { AuditOf, PairingRepository } from "../ports.js";
import type { PairingCodeRecord, PairingRequestRecord, PairingRequestState } from "../records.js";
import { auditOf } from "../rows.js";
import type { SqliteAuditLog } from "./audit-log.js";

export type { PairingCodeRecord, PairingRequestRecord } from "../records.js";

function toParams<T>(columns: Columns<T>, record: T): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [field, column] of columns) out[column] = (record[field] as unknown) ?? null;
  return out;
}

function insertSql<T>(table: string, columns: Columns<T>): string {
  const names = columns.map(([, c]) => c);
  return `INSERT OR REPLACE INTO ${table} (${names.join(", ")}) VALUES (${names.map((c) => `@${c}`).join(", ")})`;
}

/**
 * Pairing codes and requests on SQLite; every state change commits with its audit entry. One gateway
 * owns the file, but the operations are the same compare-and-sets as on PostgreSQL, so concurrent
 * async callers in this process cannot race either.
 */
export class SqlitePairingRepository implements PairingRepository {
  readonly #db: Database;
  readonly #audit: SqliteAuditLog;
  readonly #signals: LocalSignals;
  readonly #saveCode;
  readonly #saveRequest;
  readonly #liveCodeById;
  readonly #codeByRow;
  readonly #liveCodes;
  readonly #allCodes;
  readonly #request;
  readonly #requests;
  readonly #openOf;
  readonly #expireCodes;
  readonly #takeAttempt;
  readonly #returnAttempt;
  readonly #exhaust;
  readonly #use;
  readonly #pending;

  constructor(db: Database, audit: SqliteAuditLog, signals: LocalSignals) {
    this.#db = db;
    this.#audit = audit;
    this.#signals = signals;
    this.#saveCode = db.prepare(insertSql("pairing_codes", CODE_COLUMNS));
    this.#saveRequest = db.prepare(insertSql("pairing_requests", REQUEST_COLUMNS));
    this.#liveCodeById = db.prepare("SELECT * FROM pairing_codes WHERE code_id = ? AND state = 'live'");
    this.#codeByRow = db.prepare("SELECT * FROM pairing_codes WHERE id = ?");
    this.#liveCodes = db.prepare("SELECT * FROM pairing_codes WHERE state = 'live' ORDER BY created_at");
    this.#allCodes = db.prepare("SELECT * FROM pairing_codes ORDER BY created_at DESC LIMIT ?");
    this.#request = db.prepare("SELECT * FROM pairing_requests WHERE request_id = ?");
    this.#requests = db.prepare("SELECT * FROM pairing_requests ORDER BY requested_at DESC LIMIT ?");
    this.#openOf = db.prepare(
      "SELECT * FROM pairing_requests WHERE state IN ('pending_approval', 'approved') AND device_id = ?",
    );
    this.#expireCodes = db.prepare(
      "UPDATE pairing_codes SET state = 'expired', ended_at = @now WHERE state = 'live' AND expires_at <= @now RETURNING id, code_id",
    );
    this.#takeAttempt = db.prepare(`
      UPDATE pairing_codes SET failed_attempts = failed_attempts + 1
      WHERE id = @id AND state = 'live' AND expires_at > @now AND failed_attempts < max_attempts RETURNING *`);
    this.#returnAttempt = db.prepare(`
      UPDATE pairing_codes SET failed_attempts = max(0, failed_attempts - 1)
      WHERE id = ? AND state = 'live' RETURNING *`);
    this.#exhaust = db.prepare(
      "UPDATE pairing_codes SET state = 'exhausted', ended_at = @now WHERE id = @id AND state = 'live' RETURNING *",
    );
    this.#use = db.prepare(`
      UPDATE pairing_codes SET state = 'used', ended_at = @now, failed_attempts = max(0, failed_attempts - 1)
      WHERE id = @id AND state = 'live'`);
    this.#pending = db.prepare(
      "SELECT count(*) FROM pairing_requests WHERE state = 'pending_approval' AND expires_at > ?",
    );
  }

  #tx<T>(fn: () => T): T {
    return this.#db.transaction(fn).immediate();
  }

  async insertCode(code: PairingCodeRecord, audit: AuditEntry): Promise<void> {
    this.#tx(() => {
      this.#saveCode.run(toParams(CODE_COLUMNS, code));
      this.#audit.appendSync(audit);
    });
  }

  async liveCode(codeId: string): Promise<PairingCodeRecord | undefined> {
    return this.#code(this.#liveCodeById.get(codeId));
  }

  async codeByRowId(id: string): Promise<PairingCodeRecord | undefined> {
    return this.#code(this.#codeByRow.get(id));
  }

  async liveCodes(): Promise<PairingCodeRecord[]> {
    return (this.#liveCodes.all() as Record<string, unknown>[]).map((r) => this.#code(r)!);
  }

  async recentCodes(limit = 100): Promise<PairingCodeRecord[]> {
    return (this.#allCodes.all(limit) as Record<string, unknown>[]).map((r) => this.#code(r)!);
  }

  async expireCodes(now: number): Promise<string[]> {
    return this.#tx(() => {
      const rows = this.#expireCodes.all({ now }) as { id: string; code_id: string }[];
      for (const row of rows)
        this.#audit.appendSync({
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
    return this.#codeChange(this.#takeAttempt, { id: codeRowId, now }, audit);
  }

  async returnAttempt(codeRowId: string, audit: AuditOf<PairingCodeRecord>): Promise<void> {
    this.#codeChange(this.#returnAttempt, codeRowId, audit);
  }

  async exhaustCode(codeRowId: string, now: number, audit: AuditOf<PairingCodeRecord>): Promise<boolean> {
    return this.#codeChange(this.#exhaust, { id: codeRowId, now }, audit) !== undefined;
  }

  async consumeCode(
    codeRowId: string,
    now: number,
    request: PairingRequestRecord,
    audit: AuditEntry,
  ): Promise<boolean> {
    const used = this.#tx(() => {
      if (this.#use.run({ id: codeRowId, now }).changes !== 1) return false;
      this.#saveRequest.run(toParams(REQUEST_COLUMNS, request));
      this.#audit.appendSync(audit);
      return true;
    });
    if (used) this.#signals.publish("pairing_request", request.requestId);
    return used;
  }

  async request(requestId: string): Promise<PairingRequestRecord | undefined> {
    const row = this.#request.get(requestId) as Record<string, unknown> | undefined;
    return row && fromRow<PairingRequestRecord>(REQUEST_COLUMNS, row);
  }

  async pendingCount(now: number): Promise<number> {
    return this.#pending.pluck().get(now) as number;
  }

  async recentRequests(limit = 100): Promise<PairingRequestRecord[]> {
    return (this.#requests.all(limit) as Record<string, unknown>[]).map((r) =>
      fromRow<PairingRequestRecord>(REQUEST_COLUMNS, r),
    );
  }

  async openRequestsOf(deviceId: string): Promise<PairingRequestRecord[]> {
    return (this.#openOf.all(deviceId) as Record<string, unknown>[]).map((r) =>
      fromRow<PairingRequestRecord>(REQUEST_COLUMNS, r),
    );
  }

  async transitionRequest(
    next: PairingRequestRecord,
    from: readonly PairingRequestState[],
    audit: AuditEntry,
  ): Promise<boolean> {
    const moved = this.#tx(() => {
      const stored = this.#request.get(next.requestId) as { state: PairingRequestState } | undefined;
      if (!stored || !from.includes(stored.state)) return false;
      this.#saveRequest.run(toParams(REQUEST_COLUMNS, next));
      this.#audit.appendSync(audit);
      return true;
    });
    if (moved) this.#signals.publish("pairing_request", next.requestId);
    return moved;
  }

  #code(row: unknown): PairingCodeRecord | undefined {
    return row ? fromRow<PairingCodeRecord>(CODE_COLUMNS, row as Record<string, unknown>) : undefined;
  }

  /** One conditional UPDATE ... RETURNING and, if it changed a row, its audit entry: one transaction. */
  #codeChange(
    statement: { get(params: unknown): unknown },
    params: unknown,
    audit: AuditOf<PairingCodeRecord>,
  ): PairingCodeRecord | undefined {
    return this.#tx(() => {
      const code = this.#code(statement.get(params));
      if (code) this.#audit.appendSync(auditOf(audit, code));
      return code;
    });
  }
}

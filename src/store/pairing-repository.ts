import type { Database } from "better-sqlite3";
import type { AuditEntry } from "../common/audit.js";
import type { SqliteAuditLog } from "./audit-log.js";

export type CodeState = "live" | "used" | "exhausted" | "expired" | "revoked";
export type RequestState = "pending_approval" | "approved" | "rejected" | "expired" | "completed";

/** A pairing code as stored: the SPAKE2+ verifier (w0, L) and salt, never the PIN or QR secret. */
export interface PairingCodeRecord {
  id: string;
  codeId: string;
  method: "pin" | "qr";
  clientKind: string;
  salt: Buffer;
  iterations: number;
  w0: Buffer;
  L: Buffer;
  createdAt: number;
  expiresAt: number;
  maxAttempts: number;
  failedAttempts: number;
  state: CodeState;
  endedAt?: number;
}

export interface PairingRequestRecord {
  requestId: string;
  codeRowId: string;
  deviceId: string;
  clientKind: string;
  deviceName: string;
  platform: string;
  identityPublic: Buffer;
  identityFingerprint: string;
  csrDer: Buffer;
  csrKeyFingerprint: string;
  sourceAddress: string;
  comparisonCode: string;
  requestedAt: number;
  expiresAt: number;
  state: RequestState;
  decidedAt?: number;
  decidedBy?: string;
  reason?: string;
  clientCertPem?: string;
  certExpiresAt?: number;
}

const CODE_COLUMNS: [keyof PairingCodeRecord, string][] = [
  ["id", "id"],
  ["codeId", "code_id"],
  ["method", "method"],
  ["clientKind", "client_kind"],
  ["salt", "salt"],
  ["iterations", "iterations"],
  ["w0", "w0"],
  ["L", "l"],
  ["createdAt", "created_at"],
  ["expiresAt", "expires_at"],
  ["maxAttempts", "max_attempts"],
  ["failedAttempts", "failed_attempts"],
  ["state", "state"],
  ["endedAt", "ended_at"],
];

const REQUEST_COLUMNS: [keyof PairingRequestRecord, string][] = [
  ["requestId", "request_id"],
  ["codeRowId", "code_row_id"],
  ["deviceId", "device_id"],
  ["clientKind", "client_kind"],
  ["deviceName", "device_name"],
  ["platform", "platform"],
  ["identityPublic", "identity_public"],
  ["identityFingerprint", "identity_fingerprint"],
  ["csrDer", "csr_der"],
  ["csrKeyFingerprint", "csr_key_fingerprint"],
  ["sourceAddress", "source_address"],
  ["comparisonCode", "comparison_code"],
  ["requestedAt", "requested_at"],
  ["expiresAt", "expires_at"],
  ["state", "state"],
  ["decidedAt", "decided_at"],
  ["decidedBy", "decided_by"],
  ["reason", "reason"],
  ["clientCertPem", "client_cert_pem"],
  ["certExpiresAt", "cert_expires_at"],
];

function fromRow<T>(columns: readonly [keyof T, string][], row: Record<string, unknown>): T {
  const out: Record<string, unknown> = {};
  for (const [field, column] of columns) if (row[column] !== null) out[field as string] = row[column];
  return out as T;
}

function toParams<T>(columns: [keyof T, string][], record: T): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [field, column] of columns) out[column] = (record[field] as unknown) ?? null;
  return out;
}

function insertSql(table: string, columns: [unknown, string][]): string {
  const names = columns.map(([, c]) => c);
  return `INSERT OR REPLACE INTO ${table} (${names.join(", ")}) VALUES (${names.map((c) => `@${c}`).join(", ")})`;
}

/** Pairing codes and requests on SQLite; every state change commits with its audit entry. */
export class SqlitePairingRepository {
  readonly #db: Database;
  readonly #audit: SqliteAuditLog;
  readonly #saveCode;
  readonly #saveRequest;
  readonly #liveCodeById;
  readonly #codeByRow;
  readonly #liveCodes;
  readonly #allCodes;
  readonly #request;
  readonly #requests;
  readonly #expireCodes;

  constructor(db: Database, audit: SqliteAuditLog) {
    this.#db = db;
    this.#audit = audit;
    this.#saveCode = db.prepare(insertSql("pairing_codes", CODE_COLUMNS));
    this.#saveRequest = db.prepare(insertSql("pairing_requests", REQUEST_COLUMNS));
    this.#liveCodeById = db.prepare("SELECT * FROM pairing_codes WHERE code_id = ? AND state = 'live'");
    this.#codeByRow = db.prepare("SELECT * FROM pairing_codes WHERE id = ?");
    this.#liveCodes = db.prepare("SELECT * FROM pairing_codes WHERE state = 'live' ORDER BY created_at");
    this.#allCodes = db.prepare("SELECT * FROM pairing_codes ORDER BY created_at DESC LIMIT ?");
    this.#request = db.prepare("SELECT * FROM pairing_requests WHERE request_id = ?");
    this.#requests = db.prepare("SELECT * FROM pairing_requests ORDER BY requested_at DESC LIMIT ?");
    this.#expireCodes = db.prepare(
      "UPDATE pairing_codes SET state = 'expired', ended_at = @now WHERE state = 'live' AND expires_at <= @now RETURNING id, code_id",
    );
  }

  /** Runs `fn` in one IMMEDIATE transaction (synchronous: better-sqlite3 transactions cannot await). */
  transaction<T>(fn: () => T): T {
    return this.#db.transaction(fn).immediate();
  }

  saveCode(code: PairingCodeRecord, audit?: AuditEntry): void {
    this.transaction(() => {
      this.#saveCode.run(toParams(CODE_COLUMNS, code));
      if (audit) this.#audit.appendSync(audit);
    });
  }

  liveCode(codeId: string): PairingCodeRecord | undefined {
    const row = this.#liveCodeById.get(codeId) as Record<string, unknown> | undefined;
    return row && fromRow<PairingCodeRecord>(CODE_COLUMNS, row);
  }

  codeByRowId(id: string): PairingCodeRecord | undefined {
    const row = this.#codeByRow.get(id) as Record<string, unknown> | undefined;
    return row && fromRow<PairingCodeRecord>(CODE_COLUMNS, row);
  }

  liveCodes(): PairingCodeRecord[] {
    return (this.#liveCodes.all() as Record<string, unknown>[]).map((r) =>
      fromRow<PairingCodeRecord>(CODE_COLUMNS, r),
    );
  }

  recentCodes(limit = 100): PairingCodeRecord[] {
    return (this.#allCodes.all(limit) as Record<string, unknown>[]).map((r) =>
      fromRow<PairingCodeRecord>(CODE_COLUMNS, r),
    );
  }

  /** Marks codes past their expiry as expired, auditing each; returns their code ids. */
  expireCodes(now: number): string[] {
    return this.transaction(() => {
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

  saveRequest(request: PairingRequestRecord, audit?: AuditEntry): void {
    this.transaction(() => {
      this.#saveRequest.run(toParams(REQUEST_COLUMNS, request));
      if (audit) this.#audit.appendSync(audit);
    });
  }

  request(requestId: string): PairingRequestRecord | undefined {
    const row = this.#request.get(requestId) as Record<string, unknown> | undefined;
    return row && fromRow<PairingRequestRecord>(REQUEST_COLUMNS, row);
  }

  /** Requests still waiting for a decision at `now` (an index lookup, for /metrics). */
  pendingCount(now: number): number {
    return this.#db
      .prepare("SELECT count(*) FROM pairing_requests WHERE state = 'pending_approval' AND expires_at > ?")
      .pluck()
      .get(now) as number;
  }

  recentRequests(limit = 100): PairingRequestRecord[] {
    return (this.#requests.all(limit) as Record<string, unknown>[]).map((r) =>
      fromRow<PairingRequestRecord>(REQUEST_COLUMNS, r),
    );
  }

  /** Same-transaction write of a code and a request (Complete uses the code and creates the request). */
  saveCodeAndRequest(code: PairingCodeRecord, request: PairingRequestRecord, audit: AuditEntry): void {
    this.transaction(() => {
      this.#saveCode.run(toParams(CODE_COLUMNS, code));
      this.#saveRequest.run(toParams(REQUEST_COLUMNS, request));
      this.#audit.appendSync(audit);
    });
  }
}

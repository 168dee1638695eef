import type { PairingCodeRecord, PairingRequestRecord } from "./records.js";

/** Field-to-column maps for pairing codes and requests (the same column names as SQLite's). */
export type Columns<T> = readonly (readonly [keyof T & string, string])[];

export const CODE_COLUMNS: Columns<PairingCodeRecord> = [
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

export const REQUEST_COLUMNS: Columns<PairingRequestRecord> = [
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
  ["grantedRole", "granted_role"],
];

/** A row as a record; NULL columns become absent optional fields. */
export function fromRow<T>(columns: Columns<T>, row: Record<string, unknown>): T {
  const out: Record<string, unknown> = {};
  for (const [field, column] of columns) if (row[column] !== null) out[field] = row[column];
  return out as T;
}

/** A record's values in column order (absent fields as NULL), for `$1..$n`. */
export function valuesOf<T>(columns: Columns<T>, record: T): unknown[] {
  return columns.map(([field]) => (record[field] as unknown) ?? null);
}

export function insertSql<T>(table: string, columns: Columns<T>): string {
  return `INSERT INTO ${table} (${columns.map(([, c]) => c).join(", ")}) VALUES (${columns
    .map((_, i) => `$${i + 1}`)
    .join(", ")})`;
}

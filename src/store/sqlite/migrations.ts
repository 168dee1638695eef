import type { Database } from "better-sqlite3";
import { StoreError } from "../errors.js";

/**
 * Versioned schema changes, applied in order inside one transaction each. Never edit a released
 * migration: add a new one. Times are integer milliseconds since the epoch; fingerprints lowercase hex.
 */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "identity foundation",
    sql: `
      CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
      ) STRICT;

      CREATE TABLE devices (
        device_id TEXT PRIMARY KEY,
        client_kind TEXT NOT NULL,
        device_name TEXT NOT NULL,
        platform TEXT NOT NULL,
        identity_public BLOB NOT NULL CHECK (length(identity_public) = 32),
        identity_fingerprint TEXT NOT NULL,
        current_cert_fingerprint TEXT NOT NULL UNIQUE,
        current_cert_expires_at INTEGER NOT NULL,
        previous_cert_fingerprint TEXT UNIQUE,
        previous_cert_expires_at INTEGER,
        previous_cert_accepted_until INTEGER,
        paired_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        revoked_at INTEGER,
        revoked_reason TEXT
      ) STRICT;

      CREATE TABLE revoked_certificates (
        fingerprint TEXT PRIMARY KEY,
        device_id TEXT NOT NULL,
        revoked_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        reason TEXT NOT NULL
      ) STRICT;
      CREATE INDEX revoked_certificates_expiry ON revoked_certificates (expires_at);

      CREATE TABLE audit_events (
        id TEXT PRIMARY KEY,
        at INTEGER NOT NULL,
        kind TEXT NOT NULL,
        actor TEXT NOT NULL,
        device_id TEXT,
        detail TEXT NOT NULL
      ) STRICT;
      CREATE INDEX audit_events_at ON audit_events (at);
    `,
  },
  {
    version: 2,
    name: "pairing codes and requests",
    sql: `
      CREATE TABLE pairing_codes (
        id TEXT PRIMARY KEY,
        code_id TEXT NOT NULL,
        method TEXT NOT NULL CHECK (method IN ('pin', 'qr')),
        client_kind TEXT NOT NULL,
        salt BLOB NOT NULL CHECK (length(salt) = 16),
        iterations INTEGER NOT NULL,
        w0 BLOB NOT NULL CHECK (length(w0) = 32),
        l BLOB NOT NULL CHECK (length(l) = 65),
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        max_attempts INTEGER NOT NULL,
        failed_attempts INTEGER NOT NULL DEFAULT 0,
        state TEXT NOT NULL CHECK (state IN ('live', 'used', 'exhausted', 'expired', 'revoked')),
        ended_at INTEGER
      ) STRICT;
      CREATE UNIQUE INDEX pairing_codes_live_id ON pairing_codes (code_id) WHERE state = 'live';

      CREATE TABLE pairing_requests (
        request_id TEXT PRIMARY KEY,
        code_row_id TEXT NOT NULL REFERENCES pairing_codes (id),
        device_id TEXT NOT NULL,
        client_kind TEXT NOT NULL,
        device_name TEXT NOT NULL,
        platform TEXT NOT NULL,
        identity_public BLOB NOT NULL CHECK (length(identity_public) = 32),
        identity_fingerprint TEXT NOT NULL,
        csr_der BLOB NOT NULL,
        csr_key_fingerprint TEXT NOT NULL,
        source_address TEXT NOT NULL,
        comparison_code TEXT NOT NULL,
        requested_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('pending_approval', 'approved', 'rejected', 'expired', 'completed')),
        decided_at INTEGER,
        decided_by TEXT,
        reason TEXT,
        client_cert_pem TEXT,
        cert_expires_at INTEGER
      ) STRICT;
      CREATE INDEX pairing_requests_state ON pairing_requests (state, expires_at);
    `,
  },
  {
    version: 3,
    name: "node runtime",
    sql: `
      CREATE TABLE nodes (
        device_id TEXT PRIMARY KEY,
        platform TEXT NOT NULL,
        version TEXT NOT NULL,
        capabilities TEXT NOT NULL,
        registered_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      ) STRICT;

      CREATE TABLE capability_requests (
        request_id TEXT PRIMARY KEY,
        device_id TEXT NOT NULL,
        capability TEXT NOT NULL,
        input_json TEXT NOT NULL,
        max_payload_bytes INTEGER NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('queued', 'dispatched', 'awaiting_local_mediation', 'succeeded',
          'failed', 'timed_out', 'cancelled')),
        created_at INTEGER NOT NULL,
        deadline_at INTEGER NOT NULL,
        dispatched_at INTEGER,
        finished_at INTEGER,
        output_json TEXT,
        error TEXT
      ) STRICT;
      CREATE INDEX capability_requests_state ON capability_requests (state, finished_at);
    `,
  },
  {
    version: 4,
    name: "recent capability requests per node",
    sql: `CREATE INDEX capability_requests_device ON capability_requests (device_id, created_at);`,
  },
  {
    version: 5,
    name: "the gateway holding each capability request",
    sql: `ALTER TABLE capability_requests ADD COLUMN gateway_id TEXT;`,
  },
  {
    version: 6,
    name: "gateways and the node sessions they hold",
    sql: `
      CREATE TABLE gateways (
        gateway_id TEXT PRIMARY KEY,
        seen_at INTEGER NOT NULL
      ) STRICT;
      CREATE TABLE node_sessions (
        device_id TEXT PRIMARY KEY,
        gateway_id TEXT NOT NULL,
        since INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX node_sessions_gateway ON node_sessions (gateway_id);
    `,
  },
  {
    version: 7,
    name: "operator roles",
    sql: `
      ALTER TABLE devices ADD COLUMN role TEXT;
      ALTER TABLE pairing_requests ADD COLUMN granted_role TEXT;
    `,
  },
];

export function currentSchemaVersion(db: Database): number {
  return db.pragma("user_version", { simple: true }) as number;
}

/** Brings the schema up to date; refuses a database written by a newer Palyra. */
export function migrate(db: Database, migrations: readonly Migration[] = MIGRATIONS): number {
  const latest = migrations.at(-1)?.version ?? 0;
  const current = currentSchemaVersion(db);
  if (current > latest)
    throw new StoreError(
      "schema_too_new",
      `the database has schema version ${current}, newer than this Palyra understands (${latest}); upgrade Palyra`,
    );
  for (const migration of migrations) {
    if (migration.version <= current) continue;
    try {
      db.transaction(() => {
        db.exec(migration.sql);
        db.pragma(`user_version = ${migration.version}`);
      }).immediate();
    } catch (err) {
      throw new StoreError("migration_failed", `migration ${migration.version} (${migration.name}) failed`, {
        cause: err,
      });
    }
  }
  return currentSchemaVersion(db);
}

import { StoreError } from "../errors.js";
import type { PgDatabase } from "./database.js";

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/**
 * The schema of src/store/sqlite/migrations.ts in PostgreSQL types, version for version: BIGINT for
 * integer milliseconds, BYTEA for blobs, the same CHECK constraints. Never edit a released migration:
 * add a new one to both stores.
 */
export const PG_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "identity foundation",
    sql: `
      CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
      );

      CREATE TABLE devices (
        device_id TEXT PRIMARY KEY,
        client_kind TEXT NOT NULL,
        device_name TEXT NOT NULL,
        platform TEXT NOT NULL,
        identity_public BYTEA NOT NULL CHECK (octet_length(identity_public) = 32),
        identity_fingerprint TEXT NOT NULL,
        current_cert_fingerprint TEXT NOT NULL UNIQUE,
        current_cert_expires_at BIGINT NOT NULL,
        previous_cert_fingerprint TEXT UNIQUE,
        previous_cert_expires_at BIGINT,
        previous_cert_accepted_until BIGINT,
        paired_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        revoked_at BIGINT,
        revoked_reason TEXT
      );

      CREATE TABLE revoked_certificates (
        fingerprint TEXT PRIMARY KEY,
        device_id TEXT NOT NULL,
        revoked_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        reason TEXT NOT NULL
      );
      CREATE INDEX revoked_certificates_expiry ON revoked_certificates (expires_at);

      -- seq orders entries written in the same millisecond, as SQLite's rowid does.
      CREATE TABLE audit_events (
        id TEXT PRIMARY KEY,
        seq BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
        at BIGINT NOT NULL,
        kind TEXT NOT NULL,
        actor TEXT NOT NULL,
        device_id TEXT,
        detail TEXT NOT NULL
      );
      CREATE INDEX audit_events_at ON audit_events (at, seq);
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
        salt BYTEA NOT NULL CHECK (octet_length(salt) = 16),
        iterations INTEGER NOT NULL,
        w0 BYTEA NOT NULL CHECK (octet_length(w0) = 32),
        l BYTEA NOT NULL CHECK (octet_length(l) = 65),
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        max_attempts INTEGER NOT NULL,
        failed_attempts INTEGER NOT NULL DEFAULT 0,
        state TEXT NOT NULL CHECK (state IN ('live', 'used', 'exhausted', 'expired', 'revoked')),
        ended_at BIGINT
      );
      CREATE UNIQUE INDEX pairing_codes_live_id ON pairing_codes (code_id) WHERE state = 'live';

      CREATE TABLE pairing_requests (
        request_id TEXT PRIMARY KEY,
        code_row_id TEXT NOT NULL REFERENCES pairing_codes (id),
        device_id TEXT NOT NULL,
        client_kind TEXT NOT NULL,
        device_name TEXT NOT NULL,
        platform TEXT NOT NULL,
        identity_public BYTEA NOT NULL CHECK (octet_length(identity_public) = 32),
        identity_fingerprint TEXT NOT NULL,
        csr_der BYTEA NOT NULL,
        csr_key_fingerprint TEXT NOT NULL,
        source_address TEXT NOT NULL,
        comparison_code TEXT NOT NULL,
        requested_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('pending_approval', 'approved', 'rejected', 'expired', 'completed')),
        decided_at BIGINT,
        decided_by TEXT,
        reason TEXT,
        client_cert_pem TEXT,
        cert_expires_at BIGINT
      );
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
        registered_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
      );

      CREATE TABLE capability_requests (
        request_id TEXT PRIMARY KEY,
        device_id TEXT NOT NULL,
        capability TEXT NOT NULL,
        input_json TEXT NOT NULL,
        max_payload_bytes INTEGER NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('queued', 'dispatched', 'awaiting_local_mediation', 'succeeded',
          'failed', 'timed_out', 'cancelled')),
        created_at BIGINT NOT NULL,
        deadline_at BIGINT NOT NULL,
        dispatched_at BIGINT,
        finished_at BIGINT,
        output_json TEXT,
        error TEXT
      );
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
        seen_at BIGINT NOT NULL
      );
      CREATE TABLE node_sessions (
        device_id TEXT PRIMARY KEY,
        gateway_id TEXT NOT NULL,
        since BIGINT NOT NULL
      );
      CREATE INDEX node_sessions_gateway ON node_sessions (gateway_id);
      CREATE INDEX capability_requests_gateway ON capability_requests (gateway_id, state);
    `,
  },
  {
    version: 7,
    name: "the cluster's vault",
    sql: `
      CREATE TABLE vault_secrets (
        scope TEXT NOT NULL,
        key TEXT NOT NULL,
        size INTEGER NOT NULL,
        blob BYTEA NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (scope, key)
      );
    `,
  },
  {
    version: 8,
    name: "operator roles",
    sql: `
      ALTER TABLE devices ADD COLUMN role TEXT;
      ALTER TABLE pairing_requests ADD COLUMN granted_role TEXT;
    `,
  },
];

/** Any fixed 64-bit number, the same in every gateway: the advisory lock that serializes migrations. */
const MIGRATION_LOCK = 0x70616c797261; // "palyra"

/**
 * Brings the schema up to date, once, however many gateways start at the same moment: the whole run
 * holds a transaction-scoped advisory lock, so a second gateway waits, then finds nothing left to do.
 * DDL is transactional in PostgreSQL, so a failed migration leaves the schema as it was.
 * Refuses a database written by a newer Palyra. Returns the schema version.
 */
export async function migratePostgres(
  db: PgDatabase,
  migrations: readonly Migration[] = PG_MIGRATIONS,
): Promise<number> {
  const latest = migrations.at(-1)?.version ?? 0;
  return db.transaction(async (tx) => {
    await tx.rows("SELECT pg_advisory_xact_lock($1)", [MIGRATION_LOCK]);
    await tx.execute(`
      CREATE TABLE IF NOT EXISTS schema_migrations (
        version INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        applied_at BIGINT NOT NULL
      )`);
    const [row] = await tx.rows<{ v: number }>(
      "SELECT coalesce(max(version), 0) AS v FROM schema_migrations",
    );
    const current = row?.v ?? 0;
    if (current > latest)
      throw new StoreError(
        "schema_too_new",
        `the database has schema version ${current}, newer than this Palyra understands (${latest}); upgrade Palyra`,
      );
    for (const migration of migrations) {
      if (migration.version <= current) continue;
      try {
        await tx.execute(migration.sql);
        await tx.execute(
          "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, (extract(epoch FROM clock_timestamp()) * 1000)::bigint)",
          [migration.version, migration.name],
        );
      } catch (err) {
        throw new StoreError(
          "migration_failed",
          `migration ${migration.version} (${migration.name}) failed: ${db.error(err).message}`,
          { cause: err },
        );
      }
    }
    return Math.max(current, latest);
  });
}

import { chmodSync, existsSync } from "node:fs";
import BetterSqlite3, { type Database, type Statement } from "better-sqlite3";
import { PRIVATE_FILE_MODE } from "../common/atomic-file.js";
import type { BackendKind } from "./backends/blob-backend.js";
import { VaultError } from "./errors.js";
import { settingsSchema, type VaultSettings } from "./settings.js";

/**
 * The vault's index (vault.db, SQLite): which blob holds which secret, with metadata and never a value.
 * SQLite makes the vault safe for several processes at once (the CLI beside the daemon): WAL, writes in
 * IMMEDIATE transactions, synchronous=FULL so an acknowledged write survives power loss.
 *
 * `orphans` lists blobs that may exist without a secret pointing at them: one being written (pending,
 * until its secret row commits) or one replaced or deleted (to be removed from its backend). A crash at
 * any point leaves at worst a listed orphan, collected later; never a secret without its blob.
 */

export interface SecretRow {
  scope: string;
  key: string;
  object_id: string;
  backend: BackendKind;
  size: number;
  created_at: number;
  updated_at: number;
}

export interface Lease {
  owner: string;
  pid: number;
  detail: string;
  expires_at: number;
}

export interface OrphanRow {
  object_id: string;
  backend: BackendKind;
  since: number;
  pending: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS secrets (
  scope TEXT NOT NULL, key TEXT NOT NULL, object_id TEXT NOT NULL UNIQUE, backend TEXT NOT NULL,
  size INTEGER NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
  PRIMARY KEY (scope, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS orphans (
  object_id TEXT PRIMARY KEY, backend TEXT NOT NULL, since INTEGER NOT NULL, pending INTEGER NOT NULL
) WITHOUT ROWID;
`;

export class VaultCatalog {
  readonly db: Database;
  readonly #statements = new Map<string, Statement>();

  private constructor(db: Database) {
    this.db = db;
  }

  /** Prepared once per connection: preparing costs more than running these small queries. */
  #sql(sql: string): Statement {
    let statement = this.#statements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  static open(path: string, busyTimeoutMs: number): VaultCatalog {
    let db: Database;
    try {
      db = new BetterSqlite3(path);
    } catch (err) {
      throw new VaultError(
        "backend_failed",
        `cannot open the vault index ${path}: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    try {
      db.pragma(`busy_timeout = ${busyTimeoutMs}`);
      db.pragma("journal_mode = WAL");
      db.pragma("synchronous = FULL");
      const version = db.pragma("user_version", { simple: true }) as number;
      if (version > 1)
        throw new VaultError(
          "backend_failed",
          `the vault index ${path} is from a newer Palyra (schema ${version})`,
        );
      if (version === 0)
        db.transaction(() => {
          db.exec(SCHEMA);
          db.pragma("user_version = 1");
        }).immediate();
      for (const file of [path, `${path}-wal`, `${path}-shm`])
        if (existsSync(file)) chmodSync(file, PRIVATE_FILE_MODE);
    } catch (err) {
      db.close();
      if (err instanceof VaultError) throw err;
      const code = (err as { code?: string }).code;
      throw new VaultError(
        code === "SQLITE_BUSY" || code === "SQLITE_LOCKED" ? "busy" : "backend_failed",
        `cannot prepare the vault index ${path}: ${(err as Error).message}`,
        { cause: err },
      );
    }
    return new VaultCatalog(db);
  }

  /** The settings of a vault without opening it for use (for `palyra doctor`); undefined if none. */
  static peek(path: string): VaultSettings | undefined {
    if (!existsSync(path)) return undefined;
    const db = new BetterSqlite3(path, { readonly: true, fileMustExist: true });
    try {
      const row = db.prepare("SELECT value FROM settings WHERE name = 'vault'").get() as
        | { value: string }
        | undefined;
      return row === undefined ? undefined : settingsSchema.parse(JSON.parse(row.value));
    } finally {
      db.close();
    }
  }

  /** Every secret row, read without opening the vault for use (for `palyra doctor`). */
  static peekSecrets(path: string): SecretRow[] {
    if (!existsSync(path)) return [];
    const db = new BetterSqlite3(path, { readonly: true, fileMustExist: true });
    try {
      return db.prepare("SELECT * FROM secrets ORDER BY scope, key").all() as SecretRow[];
    } finally {
      db.close();
    }
  }

  /** Runs `fn` in a write transaction that holds the database's write lock from its first statement. */
  write<T>(fn: () => T): T {
    try {
      return this.db.transaction(fn).immediate();
    } catch (err) {
      if ((err as { code?: string }).code === "SQLITE_BUSY")
        throw new VaultError("busy", "another process kept the vault locked too long; try again", {
          cause: err,
        });
      throw err;
    }
  }

  settings(): VaultSettings | undefined {
    const row = this.#sql("SELECT value FROM settings WHERE name = 'vault'").get() as
      | { value: string }
      | undefined;
    if (row === undefined) return undefined;
    const parsed = settingsSchema.safeParse(JSON.parse(row.value));
    if (!parsed.success)
      throw new VaultError(
        "backend_failed",
        `the vault settings are corrupt: ${parsed.error.issues[0]?.message}`,
      );
    return parsed.data;
  }

  saveSettings(settings: VaultSettings): void {
    this.#sql(
      "INSERT INTO settings (name, value) VALUES ('vault', ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
    ).run(JSON.stringify(settingsSchema.parse(settings)));
  }

  secret(scope: string, key: string): SecretRow | undefined {
    return this.#sql("SELECT * FROM secrets WHERE scope = ? AND key = ?").get(scope, key) as
      | SecretRow
      | undefined;
  }

  list(scope?: string): SecretRow[] {
    return scope === undefined
      ? (this.#sql("SELECT * FROM secrets ORDER BY scope, key").all() as SecretRow[])
      : (this.#sql("SELECT * FROM secrets WHERE scope = ? ORDER BY key").all(scope) as SecretRow[]);
  }

  notOn(backend: BackendKind): SecretRow[] {
    return this.#sql("SELECT * FROM secrets WHERE backend != ? ORDER BY scope, key").all(
      backend,
    ) as SecretRow[];
  }

  count(): number {
    return (this.#sql("SELECT count(*) AS n FROM secrets").get() as { n: number }).n;
  }

  upsert(row: SecretRow): void {
    this.#sql(
      `INSERT INTO secrets (scope, key, object_id, backend, size, created_at, updated_at)
         VALUES (@scope, @key, @object_id, @backend, @size, @created_at, @updated_at)
         ON CONFLICT (scope, key) DO UPDATE SET object_id = excluded.object_id, backend = excluded.backend,
           size = excluded.size, updated_at = excluded.updated_at`,
    ).run(row);
  }

  /** Points a secret at a moved blob, only if it still points where it did (a concurrent write wins). */
  repoint(row: SecretRow, objectId: string, backend: BackendKind): boolean {
    return (
      this.#sql(
        "UPDATE secrets SET object_id = ?, backend = ? WHERE scope = ? AND key = ? AND object_id = ?",
      ).run(objectId, backend, row.scope, row.key, row.object_id).changes === 1
    );
  }

  remove(scope: string, key: string): void {
    this.#sql("DELETE FROM secrets WHERE scope = ? AND key = ?").run(scope, key);
  }

  addOrphan(objectId: string, backend: BackendKind, since: number, pending: boolean): void {
    this.#sql("INSERT OR REPLACE INTO orphans (object_id, backend, since, pending) VALUES (?, ?, ?, ?)").run(
      objectId,
      backend,
      since,
      pending ? 1 : 0,
    );
  }

  /** Claims a pending blob for its secret; false if it was given up (collected) meanwhile. */
  claimPending(objectId: string): boolean {
    return this.#sql("DELETE FROM orphans WHERE object_id = ? AND pending = 1").run(objectId).changes === 1;
  }

  /**
   * Gives up pending writes older than `before` (their writer crashed or hung): they become settled
   * orphans, and the writer, if it is still alive, fails to claim them and reports an error.
   */
  abandonPending(before: number): void {
    this.#sql("UPDATE orphans SET pending = 0 WHERE pending = 1 AND since < ?").run(before);
  }

  /** Orphans safe to delete from their backend. */
  settled(limit = 256): OrphanRow[] {
    return this.#sql("SELECT * FROM orphans WHERE pending = 0 ORDER BY since LIMIT ?").all(
      limit,
    ) as OrphanRow[];
  }

  /** Writes still in progress (pending blobs) to backends other than `backend`. */
  pendingNotOn(backend: BackendKind): number {
    return (
      this.#sql("SELECT count(*) AS n FROM orphans WHERE pending = 1 AND backend != ?").get(backend) as {
        n: number;
      }
    ).n;
  }

  /** A named lease (one migration at a time), or undefined. */
  lease(name: string): Lease | undefined {
    const row = this.#sql("SELECT value FROM settings WHERE name = ?").get(`lease:${name}`) as
      | { value: string }
      | undefined;
    return row === undefined ? undefined : (JSON.parse(row.value) as Lease);
  }

  takeLease(name: string, lease: Lease): void {
    this.#sql(
      "INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
    ).run(`lease:${name}`, JSON.stringify(lease));
  }

  releaseLease(name: string, owner: string): void {
    if (this.lease(name)?.owner === owner)
      this.#sql("DELETE FROM settings WHERE name = ?").run(`lease:${name}`);
  }

  forgetOrphan(objectId: string): void {
    this.#sql("DELETE FROM orphans WHERE object_id = ?").run(objectId);
  }

  close(): void {
    this.db.close();
  }
}

import type { VaultEntry, VaultRepository } from "../ports.js";
import type { PgDatabase } from "./database.js";

interface EntryRow {
  scope: string;
  key: string;
  size: number;
  created_at: number;
  updated_at: number;
}

function entryOf(row: EntryRow): VaultEntry {
  return {
    scope: row.scope,
    key: row.key,
    size: row.size,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** The shared vault's sealed rows on PostgreSQL. */
export class PgVaultRepository implements VaultRepository {
  readonly #db: PgDatabase;

  constructor(db: PgDatabase) {
    this.#db = db;
  }

  async put(entry: VaultEntry, blob: Buffer): Promise<VaultEntry> {
    const [row] = await this.#db.rows<EntryRow>(
      `INSERT INTO vault_secrets (scope, key, size, blob, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (scope, key) DO UPDATE SET size = excluded.size, blob = excluded.blob,
         updated_at = excluded.updated_at
       RETURNING scope, key, size, created_at, updated_at`,
      [entry.scope, entry.key, entry.size, blob, entry.createdAt, entry.updatedAt],
    );
    return entryOf(row!);
  }

  async get(scope: string, key: string): Promise<{ entry: VaultEntry; blob: Buffer } | undefined> {
    const [row] = await this.#db.rows<EntryRow & { blob: Buffer }>(
      "SELECT * FROM vault_secrets WHERE scope = $1 AND key = $2",
      [scope, key],
    );
    return row && { entry: entryOf(row), blob: row.blob };
  }

  async list(scope?: string): Promise<VaultEntry[]> {
    const rows =
      scope === undefined
        ? await this.#db.rows<EntryRow>(
            "SELECT scope, key, size, created_at, updated_at FROM vault_secrets ORDER BY scope, key",
          )
        : await this.#db.rows<EntryRow>(
            "SELECT scope, key, size, created_at, updated_at FROM vault_secrets WHERE scope = $1 ORDER BY key",
            [scope],
          );
    return rows.map(entryOf);
  }

  async delete(scope: string, key: string): Promise<boolean> {
    return (
      (await this.#db.execute("DELETE FROM vault_secrets WHERE scope = $1 AND key = $2", [scope, key])) > 0
    );
  }
}

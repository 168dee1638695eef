import { StoreError } from "../errors.js";
import type { MetaRepository } from "../ports.js";
import type { PgDatabase } from "./database.js";

/** Small key/value facts about the installation (which CA this database belongs to, and the like). */
export class PgMetaRepository implements MetaRepository {
  readonly #db: PgDatabase;

  constructor(db: PgDatabase) {
    this.#db = db;
  }

  async get(key: string): Promise<string | undefined> {
    const [row] = await this.#db.rows<{ value: string }>("SELECT value FROM meta WHERE key = $1", [key]);
    return row?.value;
  }

  async set(key: string, value: string): Promise<void> {
    await this.#db.execute(
      "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      [key, value],
    );
  }

  /**
   * First writer wins across gateways: the insert does nothing when a value exists (waiting for a
   * racing insert to commit or roll back), and the read after it, a new statement with a new snapshot,
   * sees whichever value won.
   */
  async setIfAbsent(key: string, value: string): Promise<string> {
    await this.#db.execute("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING", [
      key,
      value,
    ]);
    const stored = await this.get(key);
    if (stored === undefined)
      throw new StoreError("not_found", `meta ${key} vanished right after it was set`);
    return stored;
  }
}

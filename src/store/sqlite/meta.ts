import type { Database } from "better-sqlite3";
import type { MetaRepository } from "../ports.js";

/** Small key/value facts about the installation (e.g. which CA this database belongs to). */
export class SqliteMetaRepository implements MetaRepository {
  readonly #get;
  readonly #set;
  readonly #insert;
  constructor(db: Database) {
    this.#get = db.prepare<[string], { value: string }>("SELECT value FROM meta WHERE key = ?");
    this.#set = db.prepare(
      "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    );
    this.#insert = db.prepare("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO NOTHING");
  }
  getSync(key: string): string | undefined {
    return this.#get.get(key)?.value;
  }
  async get(key: string): Promise<string | undefined> {
    return this.getSync(key);
  }
  async set(key: string, value: string): Promise<void> {
    this.#set.run(key, value);
  }
  async setIfAbsent(key: string, value: string): Promise<string> {
    this.#insert.run(key, value);
    return this.getSync(key)!;
  }
}

import type { Database } from "better-sqlite3";

/** Small key/value facts about the installation (e.g. which CA this database belongs to). */
export class MetaRepository {
  readonly #get;
  readonly #set;
  constructor(db: Database) {
    this.#get = db.prepare<[string], { value: string }>("SELECT value FROM meta WHERE key = ?");
    this.#set = db.prepare(
      "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    );
  }
  get(key: string): string | undefined {
    return this.#get.get(key)?.value;
  }
  set(key: string, value: string): void {
    this.#set.run(key, value);
  }
}

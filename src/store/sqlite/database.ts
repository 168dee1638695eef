import { chmodSync, existsSync } from "node:fs";
import { dirname } from "node:path";
import BetterSqlite3, { type Database } from "better-sqlite3";
import { ensurePrivateDirectory, PRIVATE_FILE_MODE } from "../../common/atomic-file.js";
import { noSpaceError } from "../../common/storage-errors.js";
import { StoreError } from "../errors.js";
import { migrate } from "./migrations.js";

export type { Database };

/**
 * Opens (creating if needed) the embedded SQLite database: WAL for concurrent readers, synchronous=FULL
 * so an acknowledged commit survives power loss, foreign keys on, schema migrated. `:memory:` works
 * for tests. The file and its WAL/SHM side files are 0600 in a 0700 directory.
 */
export function openDatabase(path: string): Database {
  const onDisk = path !== ":memory:";
  if (onDisk) ensurePrivateDirectory(dirname(path));
  let db: Database;
  try {
    db = new BetterSqlite3(path);
  } catch (err) {
    throw new StoreError("open_failed", `could not open the database at ${path}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  try {
    if (onDisk) db.pragma("journal_mode = WAL");
    db.pragma("synchronous = FULL");
    db.pragma("foreign_keys = ON");
    db.pragma("busy_timeout = 5000");
    migrate(db);
    if (onDisk) {
      for (const file of [path, `${path}-wal`, `${path}-shm`])
        if (existsSync(file)) chmodSync(file, PRIVATE_FILE_MODE);
    }
  } catch (err) {
    db.close();
    throw onDisk ? (noSpaceError(err, path) ?? damaged(err, path) ?? err) : err;
  }
  return db;
}

/** A damaged database file, named: SQLite alone says "file is not a database" and nothing more. */
function damaged(err: unknown, path: string): StoreError | undefined {
  const code = (err as { code?: unknown }).code;
  if (typeof code !== "string" || !(code === "SQLITE_NOTADB" || code.startsWith("SQLITE_CORRUPT")))
    return undefined;
  return new StoreError(
    "open_failed",
    `the database ${path} is damaged (${(err as Error).message}); restore it from a backup`,
    { cause: err },
  );
}

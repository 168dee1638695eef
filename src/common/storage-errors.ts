import { existsSync, statfsSync } from "node:fs";
import { dirname } from "node:path";
import { defineErrorFamily, ExitCode } from "./errors.js";

/**
 * A full disk, said as such. Writes fail with ENOSPC (files), SQLITE_FULL (SQLite), or, when SQLite
 * could not even grow its shared-memory file, a bare SQLITE_IOERR. Those reached operators as "internal
 * error"; `noSpaceError` recognises them anywhere in an error's cause chain and names the path written.
 * Exit code 1 (the CLI), HTTP 507 (the admin API).
 */
export class StorageError extends defineErrorFamily("storage", {
  no_space: ExitCode.internal,
}) {}

const FULL_CODES = new Set(["ENOSPC", "EDQUOT", "SQLITE_FULL"]);
/** Generic I/O failures: a full disk only when the filesystem has (almost) no room left. */
const IO_CODES = /^(EIO|SQLITE_IOERR(_[A-Z_]+)?)$/;
/** Below this much free space an I/O error is taken for a full disk (SQLite cannot map its -shm file). */
const NEARLY_FULL_BYTES = 1024 * 1024;

function* causes(err: unknown): Generator<{ code?: unknown; path?: unknown }> {
  let current = err;
  for (let i = 0; i < 8 && current !== null && typeof current === "object"; i++) {
    yield current as { code?: unknown; path?: unknown };
    current = (current as { cause?: unknown }).cause;
  }
}

/** Whether the filesystem holding `path` (or its nearest existing ancestor) is out of room. */
export function filesystemFull(path: string): boolean {
  let at = path;
  while (!existsSync(at) && dirname(at) !== at) at = dirname(at);
  try {
    const fs = statfsSync(at);
    return fs.bavail * fs.bsize < NEARLY_FULL_BYTES;
  } catch {
    return false;
  }
}

/**
 * The StorageError for `err` when it (or a cause) is a full disk, else undefined. `path` names what
 * was being written (a database file, the vault directory); without it the failing call's own path is
 * used when it has one, and failing both, `shown` (a caller that knows a name but not a path).
 */
export function noSpaceError(err: unknown, path?: string, shown?: string): StorageError | undefined {
  if (err instanceof StorageError) return err;
  for (const e of causes(err)) {
    const code = typeof e.code === "string" ? e.code : "";
    const own = typeof e.path === "string" ? e.path : undefined;
    const where = path ?? own;
    const full =
      FULL_CODES.has(code) || (IO_CODES.test(code) && where !== undefined && filesystemFull(where));
    if (full)
      return new StorageError("no_space", `no space left writing ${where ?? shown ?? "to disk"}`, {
        cause: err,
      });
  }
  return undefined;
}

/** Runs `write`, turning a full disk into a StorageError that names `path`. */
export async function writingTo<T>(path: string, write: () => Promise<T> | T): Promise<T> {
  try {
    return await write();
  } catch (err) {
    throw noSpaceError(err, path) ?? err;
  }
}

import { readdirSync, statSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { fsyncDirectory } from "./atomic-file.js";

/**
 * Temp files that a writer killed mid-write leaves behind: `writeFileAtomic` (and the exclusive creates
 * built on it) write `.<name>.<12 hex>.tmp` beside the target and rename it over the target. A crash
 * before the rename leaves the temp file. Stores collect them when they open, but only once older than
 * `maxAgeMs`: a younger one may belong to a live writer in another process.
 */

/** `.<name>.<12 hex>.tmp`: the temp file names of writeFileAtomic and of the exclusive creates. */
export const TEMP_FILE_NAME = /^\..+\.[0-9a-f]{12}\.tmp$/;

/** Removes stale temp files from `dir` (a missing directory has none); returns how many went. */
export function removeStaleTempFiles(dir: string, now: number, maxAgeMs: number): number {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    if (!TEMP_FILE_NAME.test(name)) continue;
    const path = join(dir, name);
    try {
      if (now - statSync(path).mtimeMs < maxAgeMs) continue;
      unlinkSync(path);
      removed++;
    } catch {
      // raced with its writer or another cleaner: nothing to do
    }
  }
  if (removed > 0) fsyncDirectory(dir);
  return removed;
}

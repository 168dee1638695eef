import { existsSync, rmSync } from "node:fs";
import { dirname } from "node:path";
import { z } from "zod";
import { ensurePrivateDirectory, readFileLimited, writeFileAtomic } from "../common/atomic-file.js";
import { processStartTime, sameProcess } from "../common/process-alive.js";
import { acquireStateLock } from "../common/state-lock.js";
import { NodeHostError } from "./errors.js";

const pidRecord = z.object({ pid: z.number().int().positive(), start_time: z.string().nullable() }).strict();
export type PidRecord = z.infer<typeof pidRecord>;

/** The process the pid file names, if it is still that process. */
export function runningProcess(path: string): PidRecord | undefined {
  if (!existsSync(path)) return undefined;
  let record: PidRecord;
  try {
    record = pidRecord.parse(JSON.parse(readFileLimited(path, 4096).toString("utf8")));
  } catch {
    return undefined;
  }
  return sameProcess(record.pid, record.start_time) ? record : undefined;
}

/**
 * Claims the pid file for this process (one node host per state root: two would fight over the session
 * and over renewed credentials). Returns the function that releases it.
 */
export async function claimPidFile(path: string): Promise<() => void> {
  ensurePrivateDirectory(dirname(path));
  // The lock decides (atomically, and it dies with its holder); the pid file only tells who holds it.
  const lock = await acquireStateLock(dirname(path), "node");
  if (!lock) {
    const holder = runningProcess(path);
    throw new NodeHostError(
      "already_running",
      `a node host${holder ? ` (pid ${holder.pid})` : ""} already runs from this state root`,
    );
  }
  const record: PidRecord = { pid: process.pid, start_time: processStartTime(process.pid) ?? null };
  writeFileAtomic(path, `${JSON.stringify(record)}\n`);
  return () => {
    if (runningProcess(path)?.pid === process.pid) rmSync(path, { force: true });
    lock.release();
  };
}

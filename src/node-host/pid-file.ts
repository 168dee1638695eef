import { existsSync, readFileSync, rmSync } from "node:fs";
import { dirname } from "node:path";
import { z } from "zod";
import { ensurePrivateDirectory, readFileLimited, writeFileAtomic } from "../common/atomic-file.js";
import { processAlive } from "../common/process-alive.js";
import { NodeHostError } from "./errors.js";

const pidRecord = z.object({ pid: z.number().int().positive(), start_time: z.string().nullable() }).strict();
export type PidRecord = z.infer<typeof pidRecord>;

/**
 * When the kernel started `pid` (Linux: field 22 of /proc/<pid>/stat, in clock ticks since boot), so a
 * pid file is believed only while the same process holds that pid: pids are reused, and a stale pid
 * file must never make us signal a stranger. Undefined where /proc is unavailable.
 */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces and parentheses: split after the last ")".
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

/** The process the pid file names, if it is still that process. */
export function runningProcess(path: string): PidRecord | undefined {
  if (!existsSync(path)) return undefined;
  let record: PidRecord;
  try {
    record = pidRecord.parse(JSON.parse(readFileLimited(path, 4096).toString("utf8")));
  } catch {
    return undefined;
  }
  if (!processAlive(record.pid)) return undefined;
  const now = processStartTime(record.pid);
  if (record.start_time !== null && now !== undefined && now !== record.start_time) return undefined;
  return record;
}

/**
 * Claims the pid file for this process (one node host per state root: two would fight over the session
 * and over renewed credentials). Returns the function that releases it.
 */
export function claimPidFile(path: string): () => void {
  const holder = runningProcess(path);
  if (holder && holder.pid !== process.pid)
    throw new NodeHostError(
      "already_running",
      `a node host (pid ${holder.pid}) already runs from this state root`,
    );
  const record: PidRecord = { pid: process.pid, start_time: processStartTime(process.pid) ?? null };
  ensurePrivateDirectory(dirname(path));
  writeFileAtomic(path, `${JSON.stringify(record)}\n`);
  return () => {
    if (runningProcess(path)?.pid === process.pid) rmSync(path, { force: true });
  };
}

import { readFileSync } from "node:fs";

/**
 * When the kernel started `pid` (Linux: field 22 of /proc/<pid>/stat, in clock ticks since boot), so a
 * recorded pid is believed only while the same process holds it: pids are reused, and a stale record
 * must never make us trust or signal a stranger. Undefined where /proc is unavailable.
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

/** Whether `pid` is alive and (when a start time was recorded and can be read) still the same process. */
export function sameProcess(pid: number, startTime: string | null | undefined): boolean {
  if (!processAlive(pid)) return false;
  if (startTime === null || startTime === undefined) return true;
  const now = processStartTime(pid);
  return now === undefined || now === startTime;
}

/** Whether a process with this pid exists (EPERM: it exists but belongs to someone else). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

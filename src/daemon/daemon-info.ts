import { readFileSync, rmSync } from "node:fs";
import { z } from "zod";
import { writeFileAtomic } from "../common/atomic-file.js";
import { sameProcess } from "../common/process-alive.js";

/** What a running daemon tells local CLI commands: its pid and where it actually listens. */
const daemonInfoSchema = z
  .object({
    pid: z.number().int().positive(),
    /** The kernel's start time of `pid`, so a leftover file naming a reused pid is not believed. */
    pid_start_time: z.string().max(32).nullable().optional(),
    started_at: z.string(),
    version: z.string(),
    admin_url: z.string().url(),
    node_address: z.string().min(3).max(300),
    quic_address: z.string().min(3).max(300).optional(),
    ca_fingerprint: z.string().regex(/^[0-9a-f]{64}$/),
  })
  .strict();
export type DaemonInfo = z.infer<typeof daemonInfoSchema>;

export function writeDaemonInfo(path: string, info: DaemonInfo): void {
  writeFileAtomic(path, `${JSON.stringify(info, null, 2)}\n`, 0o600);
}

/** The daemon info if the file exists, parses, and its process is alive; else undefined. */
export function readDaemonInfo(path: string): DaemonInfo | undefined {
  let raw: string;
  try {
    raw = readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
  let parsed: DaemonInfo;
  try {
    parsed = daemonInfoSchema.parse(JSON.parse(raw));
  } catch {
    return undefined;
  }
  return sameProcess(parsed.pid, parsed.pid_start_time) ? parsed : undefined;
}

export function removeDaemonInfo(path: string, pid = process.pid): void {
  const info = readDaemonInfo(path);
  if (!info || info.pid === pid) rmSync(path, { force: true });
}

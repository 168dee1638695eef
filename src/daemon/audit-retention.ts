import type { Clock } from "../common/clock.js";
import { limits } from "../common/limits.js";
import type { AuditLog } from "../store/ports.js";
import type { Logger } from "./logger.js";

const DAY_MS = 24 * 60 * 60 * 1000;

/** Deletes audit entries older than the retention now; returns how many. 0 days keeps everything. */
export async function pruneAuditNow(audit: AuditLog, clock: Clock, retentionDays: number): Promise<number> {
  if (retentionDays === 0) return 0;
  return audit.prune(clock.now() - retentionDays * DAY_MS);
}

/**
 * Prunes once at start and then every `auditPruneIntervalMs`; the returned timer is cleared on stop.
 * A failed prune (a busy or full disk) is logged and tried again at the next interval: keeping entries a
 * little longer is harmless.
 */
export function startAuditRetention(
  audit: AuditLog,
  clock: Clock,
  retentionDays: number,
  logger: Logger,
): NodeJS.Timeout | undefined {
  if (retentionDays === 0) return undefined;
  const run = () => {
    pruneAuditNow(audit, clock, retentionDays).then(
      (pruned) => {
        if (pruned > 0) logger.info({ pruned, retention_days: retentionDays }, "pruned old audit entries");
      },
      (err: unknown) => logger.warn({ err: (err as Error).message }, "audit retention prune failed"),
    );
  };
  run();
  const timer = setInterval(run, limits.auditPruneIntervalMs);
  timer.unref();
  return timer;
}

import type { AuditRecord } from "../common/audit.js";
import type { Clock } from "../common/clock.js";
import { limits } from "../common/limits.js";
import { SlidingWindowLimiter } from "../common/rate-limiter.js";
import type { Logger } from "./logger.js";

/** Audit kinds an operator tailing the log wants to see as they happen (details hold no secrets). */
const LOGGED_KINDS = new Set([
  "pairing.begin",
  "pairing.complete",
  "pairing.approved",
  "pairing.rejected",
  "pairing.completed",
  "pairing.expired",
  "pairing.failed_attempt",
  "pairing.code_exhausted",
  "pairing.kind_mismatch",
  "device.paired",
  "device.revoked",
  "device.removed",
  "device.certificate_rotated",
  "device.certificate_recovered",
  "node.registered",
]);

/**
 * The daemon's operational log lines at info: pairing steps, registrations, revocations and recoveries
 * as they are recorded, nodes disconnecting, and refused handshakes with their reason. Refusals are
 * caused by whoever connects, so they are rate limited (a flood cannot fill the disk); the next line
 * that gets through says how many were left out.
 */
export class OperationalLog {
  readonly #logger: Logger;
  readonly #refusals: SlidingWindowLimiter;
  #suppressed = 0;

  constructor(logger: Logger, clock: Clock) {
    this.#logger = logger;
    this.#refusals = new SlidingWindowLimiter(clock, {
      limit: limits.refusalLogLinesPerWindow,
      windowMs: limits.refusalLogWindowMs,
    });
  }

  audit(record: AuditRecord): void {
    if (!LOGGED_KINDS.has(record.kind)) return;
    this.#logger.info(
      {
        kind: record.kind,
        actor: record.actor,
        ...(record.deviceId === undefined ? {} : { device_id: record.deviceId }),
        ...(record.detail === undefined ? {} : { detail: record.detail }),
      },
      record.kind.replace(/[._]/g, " "),
    );
  }

  nodeDisconnected(deviceId: string): void {
    this.#logger.info({ device_id: deviceId }, "node disconnected");
  }

  refused(fields: Record<string, unknown>, message: string): void {
    if (!this.#refusals.take()) {
      this.#suppressed++;
      return;
    }
    const suppressed = this.#suppressed;
    this.#suppressed = 0;
    this.#logger.info({ ...fields, ...(suppressed > 0 ? { suppressed_before: suppressed } : {}) }, message);
  }
}

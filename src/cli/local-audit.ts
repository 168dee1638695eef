import { userInfo } from "node:os";
import type { AuditEntry } from "../common/audit.js";
import { systemClock } from "../common/clock.js";
import { systemRandom } from "../common/random.js";
import type { StatePaths } from "../daemon/state-root.js";
import { openGatewayStore } from "../store/gateway-store.js";

/**
 * Records what a local CLI command did in the gateway's audit log (the same log the daemon writes, safe
 * to share: SQLite in WAL mode), so a reveal from a shell is as visible as one from the console.
 */
export function auditLocally(paths: StatePaths, entry: Omit<AuditEntry, "actor">): void {
  const store = openGatewayStore(paths.database, systemClock, systemRandom);
  try {
    store.audit.appendSync({ ...entry, actor: `cli:${localUser()}` });
  } finally {
    store.close();
  }
}

function localUser(): string {
  try {
    return userInfo().username;
  } catch {
    return String(process.getuid?.() ?? "unknown");
  }
}

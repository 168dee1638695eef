import Database from "better-sqlite3";
import { ulid } from "ulid";

export interface SeededAuditRow {
  at: number;
  kind: string;
  actor: string;
  deviceId?: string;
  detail: Record<string, unknown>;
}

/**
 * Writes audit rows straight into a gateway's database while its daemon runs (SQLite in WAL mode lets
 * both write), in one transaction: the quick way to a log too long for one page.
 */
export function seedAuditRows(databasePath: string, rows: Iterable<SeededAuditRow>): void {
  const db = new Database(databasePath);
  try {
    db.pragma("busy_timeout = 5000");
    const insert = db.prepare(
      "INSERT INTO audit_events (id, at, kind, actor, device_id, detail) VALUES (?, ?, ?, ?, ?, ?)",
    );
    db.transaction(() => {
      for (const r of rows)
        insert.run(ulid(r.at), r.at, r.kind, r.actor, r.deviceId ?? null, JSON.stringify(r.detail));
    })();
  } finally {
    db.close();
  }
}

/** Audit rows in a gateway's database, optionally filtered (`WHERE ...`). */
export function countAuditRows(databasePath: string, where = ""): number {
  const db = new Database(databasePath, { readonly: true });
  try {
    return (db.prepare(`SELECT count(*) AS n FROM audit_events ${where}`).get() as { n: number }).n;
  } finally {
    db.close();
  }
}

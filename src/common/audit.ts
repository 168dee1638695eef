/**
 * An audit entry recorded together with the change it describes (same transaction), so a crash can
 * never keep the change and lose its record. `detail` must hold no secrets.
 */
export interface AuditEntry {
  kind: string;
  /** Who did it: "admin", "device:<id>", "system". */
  actor: string;
  deviceId?: string;
  detail?: Record<string, string | number | boolean | null>;
}

export interface AuditRecord extends AuditEntry {
  id: string;
  at: number;
}

import type { AuditEntry, AuditRecord } from "../common/audit.js";
import type { PairedDevice, RevokedCertificate } from "../identity/device-records.js";
import { isDeviceRole } from "../identity/device-roles.js";
import type { AuditOf } from "./ports.js";
import {
  type CapabilityRecord,
  type CapabilityRequestRecord,
  type NodeRecord,
  type RequestState,
  TERMINAL_STATES,
} from "./records.js";

/**
 * Rows as both stores return them (the same column names on SQLite and PostgreSQL) and the records they
 * become. Integers are numbers on both: the PostgreSQL driver is told to parse BIGINT as a safe integer.
 */

export interface DeviceRow {
  device_id: string;
  client_kind: string;
  device_name: string;
  platform: string;
  identity_public: Buffer;
  identity_fingerprint: string;
  current_cert_fingerprint: string;
  current_cert_expires_at: number;
  previous_cert_fingerprint: string | null;
  previous_cert_expires_at: number | null;
  previous_cert_accepted_until: number | null;
  paired_at: number;
  updated_at: number;
  revoked_at: number | null;
  revoked_reason: string | null;
  role: string | null;
}

export interface RevokedRow {
  fingerprint: string;
  device_id: string;
  revoked_at: number;
  expires_at: number;
  reason: string;
}

export function toDevice(row: DeviceRow): PairedDevice {
  const device: PairedDevice = {
    deviceId: row.device_id,
    clientKind: row.client_kind,
    deviceName: row.device_name,
    platform: row.platform,
    identityPublicKey: row.identity_public,
    identityFingerprint: row.identity_fingerprint,
    current: { fingerprint: row.current_cert_fingerprint, expiresAt: row.current_cert_expires_at },
    pairedAt: row.paired_at,
    updatedAt: row.updated_at,
  };
  if (row.previous_cert_fingerprint !== null)
    device.previous = {
      fingerprint: row.previous_cert_fingerprint,
      expiresAt: row.previous_cert_expires_at!,
      acceptedUntil: row.previous_cert_accepted_until!,
    };
  if (row.revoked_at !== null) {
    device.revokedAt = row.revoked_at;
    device.revokedReason = row.revoked_reason ?? "";
  }
  // A value this version does not know (written by a newer one) grants nothing.
  if (isDeviceRole(row.role)) device.role = row.role;
  return device;
}

export function toRevoked(row: RevokedRow): RevokedCertificate {
  return {
    fingerprint: row.fingerprint,
    deviceId: row.device_id,
    revokedAt: row.revoked_at,
    expiresAt: row.expires_at,
    reason: row.reason,
  };
}

export interface RequestRow {
  request_id: string;
  device_id: string;
  capability: string;
  input_json: string;
  max_payload_bytes: number;
  state: RequestState;
  created_at: number;
  deadline_at: number;
  dispatched_at: number | null;
  finished_at: number | null;
  output_json: string | null;
  error: string | null;
  gateway_id: string | null;
}

export interface NodeRow {
  device_id: string;
  platform: string;
  version: string;
  capabilities: string;
  registered_at: number;
  updated_at: number;
}

export function toRequest(row: RequestRow): CapabilityRequestRecord {
  return {
    requestId: row.request_id,
    deviceId: row.device_id,
    capability: row.capability,
    inputJson: row.input_json,
    maxPayloadBytes: row.max_payload_bytes,
    state: row.state,
    createdAt: row.created_at,
    deadlineAt: row.deadline_at,
    ...(row.dispatched_at === null ? {} : { dispatchedAt: row.dispatched_at }),
    ...(row.finished_at === null ? {} : { finishedAt: row.finished_at }),
    ...(row.output_json === null ? {} : { outputJson: row.output_json }),
    ...(row.error === null ? {} : { error: row.error }),
    ...(row.gateway_id === null ? {} : { gatewayId: row.gateway_id }),
  };
}

export function toNode(row: NodeRow): NodeRecord {
  return {
    deviceId: row.device_id,
    platform: row.platform,
    version: row.version,
    capabilities: JSON.parse(row.capabilities) as CapabilityRecord[],
    registeredAt: row.registered_at,
    updatedAt: row.updated_at,
  };
}

export interface AuditRow {
  id: string;
  at: number;
  kind: string;
  actor: string;
  device_id: string | null;
  detail: string;
}

export function recordOf(row: AuditRow): AuditRecord {
  return {
    id: row.id,
    at: row.at,
    kind: row.kind,
    actor: row.actor,
    ...(row.device_id === null ? {} : { deviceId: row.device_id }),
    detail: JSON.parse(row.detail),
  };
}

/** Capability request states as SQL lists, from the one definition in records.ts (both dialects take them). */
const sqlList = (states: readonly string[]) => `(${states.map((st) => `'${st}'`).join(", ")})`;
export const TERMINAL_SQL = sqlList([...TERMINAL_STATES]);
export const UNFINISHED_SQL = sqlList(["queued", "dispatched", "awaiting_local_mediation"]);

/** The audit entry of a change: given as is, or built from the row the change left. */
export function auditOf<T>(audit: AuditOf<T>, row: T): AuditEntry {
  return typeof audit === "function" ? audit(row) : audit;
}

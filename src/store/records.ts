/** The rows the gateway stores, as both stores (SQLite, PostgreSQL) read and write them. */

export type CodeState = "live" | "used" | "exhausted" | "expired" | "revoked";
export type PairingRequestState = "pending_approval" | "approved" | "rejected" | "expired" | "completed";

/** A pairing code as stored: the SPAKE2+ verifier (w0, L) and salt, never the PIN or QR secret. */
export interface PairingCodeRecord {
  id: string;
  codeId: string;
  method: "pin" | "qr";
  clientKind: string;
  salt: Buffer;
  iterations: number;
  w0: Buffer;
  L: Buffer;
  createdAt: number;
  expiresAt: number;
  maxAttempts: number;
  failedAttempts: number;
  state: CodeState;
  endedAt?: number;
}

export interface PairingRequestRecord {
  requestId: string;
  codeRowId: string;
  deviceId: string;
  clientKind: string;
  deviceName: string;
  platform: string;
  identityPublic: Buffer;
  identityFingerprint: string;
  csrDer: Buffer;
  csrKeyFingerprint: string;
  sourceAddress: string;
  comparisonCode: string;
  requestedAt: number;
  expiresAt: number;
  state: PairingRequestState;
  decidedAt?: number;
  decidedBy?: string;
  reason?: string;
  /** The role the approval granted (device-roles.ts), recorded with the device at approval or delivery. */
  grantedRole?: string;
  clientCertPem?: string;
  certExpiresAt?: number;
}

export interface CapabilityRecord {
  name: string;
  requiresMediation: boolean;
  description: string;
}

export interface NodeRecord {
  deviceId: string;
  platform: string;
  version: string;
  capabilities: CapabilityRecord[];
  registeredAt: number;
  updatedAt: number;
}

export type RequestState =
  | "queued"
  | "dispatched"
  | "awaiting_local_mediation"
  | "succeeded"
  | "failed"
  | "timed_out"
  | "cancelled";

export const TERMINAL_STATES: ReadonlySet<RequestState> = new Set([
  "succeeded",
  "failed",
  "timed_out",
  "cancelled",
]);

export interface CapabilityRequestRecord {
  requestId: string;
  deviceId: string;
  capability: string;
  inputJson: string;
  maxPayloadBytes: number;
  state: RequestState;
  createdAt: number;
  deadlineAt: number;
  dispatchedAt?: number;
  finishedAt?: number;
  outputJson?: string;
  error?: string;
  /** The gateway that holds the call (its session with the node): only it may fail the call when it restarts. */
  gatewayId?: string;
}

import type { PairedDevice } from "../identity/device-records.js";
import type { DeviceRole } from "../identity/device-roles.js";

/** What operators see of a paired device: fingerprints and dates, never key material. */
export interface DeviceView {
  device_id: string;
  client_kind: string;
  device_name: string;
  platform: string;
  identity_fingerprint: string;
  certificate_fingerprint: string;
  certificate_expires_at: string;
  /** The certificate before the last rotation, while it is still accepted (the overlap). */
  previous_certificate?: { fingerprint: string; accepted_until: string };
  paired_at: string;
  state: "active" | "revoked";
  revoked_at?: string;
  revoked_reason?: string;
  connections: number;
  /** What the device may do as an operator: `operator`, `viewer`, or null (nothing). */
  role: DeviceRole | null;
  /**
   * When the gateway last heard from the device: the latest of its node's last heartbeat (or last
   * registration when offline) and the last certificate issued to it (pairing, rotation, renewal,
   * recovery). A revoked device's last issuance is no longer recorded, so its pairing stands in.
   */
  last_seen_at: string;
}

export function deviceView(
  device: PairedDevice,
  connections: number,
  /** The device's node's `last_seen_at`, when it registered as a node. */
  nodeLastSeenAt?: string,
): DeviceView {
  const iso = (ms: number) => new Date(ms).toISOString();
  // Every write of an active device's row issues it a certificate; revocation rewrites updatedAt.
  const issued = device.revokedAt === undefined ? device.updatedAt : device.pairedAt;
  const heard = nodeLastSeenAt === undefined ? Number.NaN : Date.parse(nodeLastSeenAt);
  return {
    device_id: device.deviceId,
    client_kind: device.clientKind,
    device_name: device.deviceName,
    platform: device.platform,
    identity_fingerprint: device.identityFingerprint,
    certificate_fingerprint: device.current.fingerprint,
    certificate_expires_at: iso(device.current.expiresAt),
    ...(device.previous
      ? {
          previous_certificate: {
            fingerprint: device.previous.fingerprint,
            accepted_until: iso(Math.min(device.previous.acceptedUntil, device.previous.expiresAt)),
          },
        }
      : {}),
    paired_at: iso(device.pairedAt),
    state: device.revokedAt === undefined ? "active" : "revoked",
    ...(device.revokedAt === undefined
      ? {}
      : { revoked_at: iso(device.revokedAt), revoked_reason: device.revokedReason ?? "" }),
    connections,
    role: device.role ?? null,
    last_seen_at: iso(Number.isNaN(heard) ? issued : Math.max(issued, heard)),
  };
}

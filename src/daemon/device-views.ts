import type { PairedDevice } from "../identity/device-records.js";

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
}

export function deviceView(device: PairedDevice, connections: number): DeviceView {
  const iso = (ms: number) => new Date(ms).toISOString();
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
  };
}

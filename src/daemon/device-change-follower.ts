import { AllowlistMemo } from "../identity/allowlist-memo.js";
import type { DeviceRegistry } from "../identity/device-registry.js";
import type { StoreSignals } from "../store/ports.js";
import type { Logger } from "./logger.js";

/**
 * Revocation across gateways: every change to a device row, on any gateway sharing the database, is
 * signalled here (PostgreSQL NOTIFY, sent on commit). The allowlist memo forgets what it held, and a
 * device that is now revoked or removed loses its live gRPC and QUIC connections on this gateway too.
 * A lost notification (the listener was reconnecting) is caught by the connection sweep, which in
 * cluster mode reads the database afresh (see `sweepFresh`).
 */
export function followDeviceChanges(deps: {
  signals: StoreSignals;
  registry: DeviceRegistry;
  close: (deviceId: string, reason: string) => number;
  logger: Logger;
}): () => void {
  return deps.signals.subscribe("device", (deviceId) => {
    AllowlistMemo.invalidate();
    deps.registry.get(deviceId).then(
      (device) => {
        if (device && device.revokedAt === undefined) return;
        const reason = device ? `device revoked: ${device.revokedReason ?? ""}` : "device removed";
        const closed = deps.close(deviceId, reason);
        if (closed > 0)
          deps.logger.info({ device_id: deviceId, closed }, "cut a device changed on another gateway");
      },
      (err: Error) =>
        deps.logger.warn({ device_id: deviceId, err: err.message }, "could not read a changed device"),
    );
  });
}

/** Before each sweep on a shared database: forget the memo, so the sweep reads what every gateway wrote. */
export function sweepFresh<T>(sweep: () => Promise<T>): () => Promise<T> {
  return () => {
    AllowlistMemo.invalidate();
    return sweep();
  };
}

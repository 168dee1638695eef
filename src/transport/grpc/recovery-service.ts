import type { Clock } from "../../common/clock.js";
import { limits } from "../../common/limits.js";
import { addressBucket, SlidingWindowLimiter } from "../../common/rate-limiter.js";
import { DeviceRecoveryService } from "../../gen/palyra/v1/recovery_pb.js";
import type { CertificateRecovery } from "../../identity/recovery.js";
import { grpcStatusOf } from "./pairing-mapping.js";
import { RpcError, RpcStatus } from "./rpc-error.js";
import type { NodePortServer } from "./server.js";

/**
 * Serves DeviceRecoveryService on the node port. Anonymous like pairing (the device's certificate is
 * what no longer works), proven by the identity signature instead, and rate limited like BeginPairing
 * (its own windows, so recoveries never crowd out pairings).
 */
export function registerRecoveryService(
  server: NodePortServer,
  recovery: CertificateRecovery,
  deps: { caCertPem: string; clock: Clock; onRecovered?: (deviceId: string, remoteAddress: string) => void },
): void {
  const perAddress = new SlidingWindowLimiter(deps.clock, {
    limit: limits.beginPerAddressPerWindow,
    windowMs: limits.beginRateWindowMs,
  });
  const overall = new SlidingWindowLimiter(deps.clock, {
    limit: limits.beginGlobalPerWindow,
    windowMs: limits.beginRateWindowMs,
  });
  server.addService(
    DeviceRecoveryService,
    {
      recoverCertificate: async (req, ctx) => {
        if (!perAddress.take(addressBucket(ctx.remoteAddress)) || !overall.take())
          throw new RpcError(
            RpcStatus.RESOURCE_EXHAUSTED,
            "too many recovery attempts; wait a minute and try again",
          );
        try {
          const issued = await recovery.recover({
            deviceId: req.deviceId,
            csrDer: req.csrDer,
            timestampMs: Number(req.timestampMs),
            heldFingerprint: req.heldFingerprint,
            signature: req.signature,
          });
          deps.onRecovered?.(req.deviceId, ctx.remoteAddress);
          return {
            clientCertPem: issued.pem,
            caCertPem: deps.caCertPem,
            expiresAtUnixMs: BigInt(issued.notAfter.getTime()),
          };
        } catch (err) {
          const { code, details } = grpcStatusOf(err);
          throw new RpcError(code, details, { cause: err });
        }
      },
    },
    { recoverCertificate: "anonymous" },
  );
}

import { X509Certificate } from "node:crypto";
import { gatewayAddresses, splitHostPort } from "../common/host-port.js";
import { limits } from "../common/limits.js";
import { certificateFingerprint } from "../crypto/fingerprint.js";
import { DeviceRecoveryService } from "../gen/palyra/v1/recovery_pb.js";
import { createCsr, generateP256KeyPair } from "../identity/csr.js";
import { recoveryMessage } from "../identity/recovery.js";
import type { DeviceCredentials } from "../pairing/device-store.js";
import { NodePortClient } from "../transport/grpc/client.js";
import { isRpcError, RpcStatus } from "../transport/grpc/rpc-error.js";
import { NodeHostError } from "./errors.js";
import { checkIssued } from "./renewal.js";

export type RecoveryOutcome =
  | { kind: "recovered"; credentials: DeviceCredentials }
  /** The gateway says the certificate held is fine (the trouble is elsewhere), or it could not be asked. */
  | { kind: "not_needed" | "unreachable"; detail: string };

/**
 * Asks the gateway for a new certificate by proving the identity key (no client certificate needed):
 * what a device does when its certificate expired while it was away, or the gateway no longer accepts
 * it. Throws NodeHostError (exit 6) when the gateway says the device may not come back: revoked
 * (with the operator's reason), removed, or past the recovery window.
 */
export async function recoverCredentials(args: {
  deviceId: string;
  credentials: DeviceCredentials;
  sign: (message: Uint8Array) => Uint8Array;
  now: number;
}): Promise<RecoveryOutcome> {
  const { host, port } = splitHostPort(gatewayAddresses(args.credentials.gateway)[0]!);
  const client = new NodePortClient({ host, port, pinnedCa: args.credentials.caCertPem });
  try {
    const { privateKey, publicKey } = generateP256KeyPair();
    const csrDer = await createCsr(privateKey, publicKey);
    const held = certificateFingerprint(new X509Certificate(args.credentials.clientCertPem).raw);
    let response: { clientCertPem: string };
    try {
      response = await client.service(DeviceRecoveryService).recoverCertificate(
        {
          deviceId: args.deviceId,
          csrDer,
          timestampMs: BigInt(args.now),
          heldFingerprint: held,
          signature: args.sign(recoveryMessage(args.deviceId, args.now, held, csrDer)),
        },
        { timeoutMs: limits.sessionOpenTimeoutMs },
      );
    } catch (err) {
      if (isRpcError(err, RpcStatus.PERMISSION_DENIED))
        throw new NodeHostError("device_revoked", err.message, { cause: err });
      if (isRpcError(err, RpcStatus.NOT_FOUND) || isRpcError(err, RpcStatus.FAILED_PRECONDITION))
        throw new NodeHostError("needs_pairing", err.message, { cause: err });
      if (isRpcError(err, RpcStatus.ALREADY_EXISTS)) return { kind: "not_needed", detail: err.message };
      return { kind: "unreachable", detail: (err as Error).message };
    }
    const cert = checkIssued(response.clientCertPem, args.credentials, args.deviceId, publicKey, args.now);
    return {
      kind: "recovered",
      credentials: {
        ...args.credentials,
        clientKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
        clientCertPem: cert.toString(),
      },
    };
  } finally {
    client.close();
  }
}

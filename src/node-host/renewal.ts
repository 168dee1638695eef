import { type KeyObject, X509Certificate } from "node:crypto";
import type { NodeService } from "../gen/palyra/v1/node_pb.js";
import { createCsr, generateP256KeyPair } from "../identity/csr.js";
import { certificateDeviceId, renewalMessage } from "../identity/rotation.js";
import { verifyIssuedBy } from "../identity/verify-chain.js";
import type { DeviceCredentials } from "../pairing/device-store.js";
import type { ServiceClient } from "../transport/grpc/service-definition.js";
import { NodeHostError } from "./errors.js";

/**
 * One renewal over the device's mutual-TLS connection: a fresh P-256 key and CSR, signed for with the
 * identity key; the answer is checked (issued by the pinned CA, for this device, for the new key, a
 * client certificate valid now) before anything is stored.
 */
export async function renewCredentials(args: {
  rpc: Pick<ServiceClient<typeof NodeService.method>, "renewCertificate">;
  deviceId: string;
  credentials: DeviceCredentials;
  sign: (message: Uint8Array) => Uint8Array;
  now: number;
}): Promise<DeviceCredentials> {
  const { privateKey, publicKey } = generateP256KeyPair();
  const csrDer = await createCsr(privateKey, publicKey);
  const response = await args.rpc.renewCertificate({
    deviceId: args.deviceId,
    csrDer,
    identitySignature: args.sign(renewalMessage(args.deviceId, csrDer)),
  });
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(response.clientCertPem);
  } catch (err) {
    throw new NodeHostError("renewal_rejected", "the gateway returned a certificate that does not parse", {
      cause: err,
    });
  }
  const pinned = new X509Certificate(args.credentials.caCertPem);
  const chain = verifyIssuedBy(cert.raw, pinned.raw, args.now, { purpose: "client" });
  if (!chain.ok) throw new NodeHostError("renewal_rejected", `the renewed certificate: ${chain.detail}`);
  if (certificateDeviceId(response.clientCertPem) !== args.deviceId)
    throw new NodeHostError("renewal_rejected", "the renewed certificate names another device");
  const spki = (k: KeyObject) => k.export({ type: "spki", format: "der" });
  if (!spki(cert.publicKey).equals(spki(publicKey)))
    throw new NodeHostError("renewal_rejected", "the renewed certificate is not for the key this node made");
  return {
    ...args.credentials,
    clientKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    clientCertPem: cert.toString(),
  };
}

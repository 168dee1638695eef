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
  const cert = checkIssued(response.clientCertPem, args.credentials, args.deviceId, publicKey, args.now);
  return {
    ...args.credentials,
    clientKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    clientCertPem: cert.toString(),
  };
}

/**
 * Checks a certificate the gateway issued to this device (renewal or recovery) before anything is
 * stored: it parses, it is a client certificate valid now from the pinned CA, for this device, for the
 * key this node made.
 */
export function checkIssued(
  clientCertPem: string,
  credentials: DeviceCredentials,
  deviceId: string,
  publicKey: KeyObject,
  now: number,
): X509Certificate {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(clientCertPem);
  } catch (err) {
    throw new NodeHostError("renewal_rejected", "the gateway returned a certificate that does not parse", {
      cause: err,
    });
  }
  const pinned = new X509Certificate(credentials.caCertPem);
  const chain = verifyIssuedBy(cert.raw, pinned.raw, now, { purpose: "client" });
  if (!chain.ok) throw new NodeHostError("renewal_rejected", `the issued certificate: ${chain.detail}`);
  if (certificateDeviceId(clientCertPem) !== deviceId)
    throw new NodeHostError("renewal_rejected", "the issued certificate names another device");
  const spki = (k: KeyObject) => k.export({ type: "spki", format: "der" });
  if (!spki(cert.publicKey).equals(spki(publicKey)))
    throw new NodeHostError("renewal_rejected", "the issued certificate is not for the key this node made");
  return cert;
}

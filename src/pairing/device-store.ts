import type { KeyObject } from "node:crypto";
import type { SecretStore } from "../identity/secret-store.js";

/** Where a paired device keeps what pairing gave it, beside its identity (device/identity). */
const KEYS = {
  clientKey: "device/client-key",
  clientCert: "device/client-certificate",
  caCert: "device/ca-certificate",
  gateway: "device/gateway",
} as const;

export interface DeviceCredentials {
  clientKeyPem: string;
  clientCertPem: string;
  caCertPem: string;
  gateway: string;
}

export async function saveDeviceCredentials(
  store: SecretStore,
  material: { privateKey: KeyObject; clientCertPem: string; caCertPem: string; gateway: string },
): Promise<void> {
  const keyPem = material.privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  // Key first: a certificate without its key would be useless, a key without a certificate harmless.
  await store.write(KEYS.clientKey, Buffer.from(keyPem));
  await store.write(KEYS.clientCert, Buffer.from(material.clientCertPem));
  await store.write(KEYS.caCert, Buffer.from(material.caCertPem));
  await store.write(KEYS.gateway, Buffer.from(material.gateway));
}

export async function loadDeviceCredentials(store: SecretStore): Promise<DeviceCredentials | undefined> {
  const [key, cert, ca, gateway] = await Promise.all(Object.values(KEYS).map((k) => store.read(k)));
  if (!key || !cert || !ca || !gateway) return undefined;
  return {
    clientKeyPem: key.toString(),
    clientCertPem: cert.toString(),
    caCertPem: ca.toString(),
    gateway: gateway.toString(),
  };
}

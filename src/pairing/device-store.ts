import type { KeyObject } from "node:crypto";
import { IdentityError } from "../identity/errors.js";
import type { SecretStore } from "../identity/secret-store.js";

/**
 * Where a paired device keeps what pairing (and each renewal) gave it, beside its identity
 * (device/identity): one entry, so the key and its certificate are replaced together in one atomic
 * write and a crash can never leave a certificate beside the wrong key.
 */
const CREDENTIALS_KEY = "device/credentials";
/** Earlier layout: one entry per item (read, then replaced by the single entry on the next save). */
const LEGACY_KEYS = {
  clientKey: "device/client-key",
  clientCert: "device/client-certificate",
  caCert: "device/ca-certificate",
  gateway: "device/gateway",
} as const;
const MAX_FIELD_CHARS = 64 * 1024;

export interface DeviceCredentials {
  clientKeyPem: string;
  clientCertPem: string;
  caCertPem: string;
  gateway: string;
  /** The kind the device paired as (`cli`, `desktop`, `node`); absent in records stored before it was kept. */
  clientKind?: string;
}

/** Replaces the stored credentials in one atomic write. */
export async function storeDeviceCredentials(
  store: SecretStore,
  credentials: DeviceCredentials,
): Promise<void> {
  const record = {
    v: 1,
    client_key_pem: credentials.clientKeyPem,
    client_cert_pem: credentials.clientCertPem,
    ca_cert_pem: credentials.caCertPem,
    gateway: credentials.gateway,
    ...(credentials.clientKind === undefined ? {} : { client_kind: credentials.clientKind }),
  };
  await store.write(CREDENTIALS_KEY, Buffer.from(JSON.stringify(record)));
  for (const key of Object.values(LEGACY_KEYS)) await store.delete(key);
}

/** Deletes the stored credentials (the device pairs again). */
export async function forgetDeviceCredentials(store: SecretStore): Promise<void> {
  await store.delete(CREDENTIALS_KEY);
  for (const key of Object.values(LEGACY_KEYS)) await store.delete(key);
}

export async function saveDeviceCredentials(
  store: SecretStore,
  material: {
    privateKey: KeyObject;
    clientCertPem: string;
    caCertPem: string;
    gateway: string;
    clientKind?: string;
  },
): Promise<void> {
  await storeDeviceCredentials(store, {
    clientKeyPem: material.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    clientCertPem: material.clientCertPem,
    caCertPem: material.caCertPem,
    gateway: material.gateway,
    ...(material.clientKind === undefined ? {} : { clientKind: material.clientKind }),
  });
}

export async function loadDeviceCredentials(store: SecretStore): Promise<DeviceCredentials | undefined> {
  const stored = await store.read(CREDENTIALS_KEY);
  if (stored) return parseCredentials(stored);
  const [key, cert, ca, gateway] = await Promise.all(Object.values(LEGACY_KEYS).map((k) => store.read(k)));
  if (!key || !cert || !ca || !gateway) return undefined;
  return {
    clientKeyPem: key.toString(),
    clientCertPem: cert.toString(),
    caCertPem: ca.toString(),
    gateway: gateway.toString(),
  };
}

function parseCredentials(bytes: Buffer): DeviceCredentials {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(bytes.toString("utf8")) as Record<string, unknown>;
  } catch {
    throw new IdentityError("secret_store_corrupt", "the stored device credentials are not valid JSON");
  }
  const field = (name: string): string => {
    const value = record?.[name];
    if (typeof value !== "string" || value.length === 0 || value.length > MAX_FIELD_CHARS)
      throw new IdentityError("secret_store_corrupt", `the stored device credentials lack a valid ${name}`);
    return value;
  };
  if (record?.v !== 1)
    throw new IdentityError("secret_store_corrupt", "the stored device credentials have an unknown version");
  return {
    clientKeyPem: field("client_key_pem"),
    clientCertPem: field("client_cert_pem"),
    caCertPem: field("ca_cert_pem"),
    gateway: field("gateway"),
    ...(typeof record.client_kind === "string" && /^[a-z]{1,16}$/.test(record.client_kind)
      ? { clientKind: record.client_kind }
      : {}),
  };
}

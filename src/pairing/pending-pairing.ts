import { createPrivateKey, createPublicKey } from "node:crypto";
import { isCanonicalId } from "../common/ids.js";
import { limits } from "../common/limits.js";
import { IdentityError } from "../identity/errors.js";
import type { SecretStore } from "../identity/secret-store.js";
import type { PendingPairing } from "./device-client.js";

/**
 * A pairing that waits for approval, kept in the device's (encrypted) secret store beside its identity,
 * so that a device, or a gateway, that restarts meanwhile does not lose it: the device comes back,
 * polls the same request with the same identity key, and collects the certificate for the CSR key it
 * kept. Deleted once the certificate is stored, or when the request is decided against or gone.
 */
const PENDING_KEY = "device/pending-pairing";

export interface StoredPendingPairing extends PendingPairing {
  gateway: string;
  clientKind: string;
  /** A QR code's CA pin, kept so the resumed connection is pinned as the first one was. */
  caPin?: Buffer;
}

export async function savePendingPairing(store: SecretStore, pending: StoredPendingPairing): Promise<void> {
  const record = {
    v: 1,
    request_id: pending.requestId,
    comparison_code: pending.comparisonCode,
    ca_cert_der: pending.caCertDer.toString("base64"),
    key_pem: pending.keyPair.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    gateway: pending.gateway,
    client_kind: pending.clientKind,
    ...(pending.caPin ? { ca_pin: pending.caPin.toString("base64") } : {}),
  };
  await store.write(PENDING_KEY, Buffer.from(JSON.stringify(record)));
}

export async function loadPendingPairing(store: SecretStore): Promise<StoredPendingPairing | undefined> {
  const stored = await store.read(PENDING_KEY);
  if (!stored) return undefined;
  const corrupt = (why: string) =>
    new IdentityError("secret_store_corrupt", `the stored pending pairing ${why}`);
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(stored.toString("utf8")) as Record<string, unknown>;
  } catch {
    throw corrupt("is not valid JSON");
  }
  const text = (name: string, max = 64 * 1024): string => {
    const value = record?.[name];
    if (typeof value !== "string" || value.length === 0 || value.length > max) throw corrupt(`lacks ${name}`);
    return value;
  };
  if (record?.v !== 1) throw corrupt("has an unknown version");
  const requestId = text("request_id", 26);
  if (!isCanonicalId(requestId)) throw corrupt("has a bad request id");
  const caCertDer = Buffer.from(text("ca_cert_der"), "base64");
  if (caCertDer.length > limits.maxCertificateBytes) throw corrupt("has an oversized CA certificate");
  let privateKey: ReturnType<typeof createPrivateKey>;
  try {
    privateKey = createPrivateKey(text("key_pem"));
  } catch {
    throw corrupt("has an unreadable key");
  }
  return {
    requestId,
    comparisonCode: text("comparison_code", 6),
    caCertDer,
    keyPair: { privateKey, publicKey: createPublicKey(privateKey) },
    gateway: text("gateway", 300),
    clientKind: text("client_kind", 32),
    ...(typeof record.ca_pin === "string" ? { caPin: Buffer.from(record.ca_pin, "base64") } : {}),
  };
}

export async function forgetPendingPairing(store: SecretStore): Promise<void> {
  await store.delete(PENDING_KEY);
}

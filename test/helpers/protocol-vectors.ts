/** Shared by scripts/protocol-vectors.ts (which writes docs/protocol-vectors.json) and its test. */
import { type DescMessage, fromBinary, ScalarType } from "@bufbuild/protobuf";
import { DeviceIdentity } from "../../src/identity/device-identity.js";
import { InMemorySecretStore } from "../../src/identity/secret-store.js";

/** A field's value in the vector file: bytes in hex, 64-bit integers and enums as numbers, text as is. */
export type ReadableValue = string | number | boolean;

/**
 * Decodes `bytes` as `schema` and lists every field (defaults included) under its protobuf name, in
 * field-number order. Only messages of scalar and enum fields are supported (all the pairing messages).
 */
export function readableFields(schema: DescMessage, bytes: Uint8Array): Record<string, ReadableValue> {
  const decoded = fromBinary(schema, bytes) as unknown as Record<string, unknown>;
  const out: Record<string, ReadableValue> = {};
  for (const field of [...schema.fields].sort((a, b) => a.number - b.number)) {
    const value = decoded[field.localName];
    if (field.fieldKind === "enum") out[field.name] = value as number;
    else if (field.fieldKind !== "scalar")
      throw new Error(`${schema.typeName}.${field.name}: only scalar and enum fields are supported`);
    else if (field.scalar === ScalarType.BYTES)
      out[field.name] = Buffer.from(value as Uint8Array).toString("hex");
    else if (typeof value === "bigint") out[field.name] = Number(value);
    else out[field.name] = value as string | number | boolean;
  }
  return out;
}

/** PKCS#8 DER prefix of an Ed25519 private key; the 32-byte seed (RFC 8032 private key) follows. */
const ED25519_PKCS8_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");

/** A device identity with a given id and a fixed 32-byte Ed25519 seed, loaded the way a device loads its own. */
export async function identityFromSeed(deviceId: string, seed: Uint8Array): Promise<DeviceIdentity> {
  const store = new InMemorySecretStore();
  const record = {
    version: 1,
    deviceId,
    privateKey: Buffer.concat([ED25519_PKCS8_PREFIX, seed]).toString("base64"),
  };
  await store.write("device/identity", Buffer.from(JSON.stringify(record)));
  const identity = await DeviceIdentity.load(store);
  if (!identity) throw new Error("the identity did not load");
  return identity;
}

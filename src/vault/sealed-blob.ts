import { createHmac } from "node:crypto";
import type { Random } from "../common/random.js";
import { ENVELOPE_OVERHEAD, type EnvelopeFormat, openEnvelope, sealEnvelope } from "../crypto/envelope.js";
import { VaultError } from "./errors.js";

/**
 * A sealed secret: each value gets its own random 32-byte data key (DEK); the DEK is wrapped by the vault
 * key. Both layers are ChaCha20-Poly1305 with the same associated data, which binds the blob format
 * version, the vault key id, the scope and the key: a blob replayed under another name, another scope
 * or another vault does not open.
 *
 *   "PVB1" (4) | vault key id (8) | wrapped DEK (envelope PVK1, 65) | value (envelope PVD1, 33 + n)
 *
 * The key id (first 8 bytes of HMAC(vault key, label)) lets a blob from another vault fail with a clear
 * error instead of a bare authentication failure; it reveals nothing about the key.
 */

export const VAULT_KEY_BYTES = 32;
export const KEY_ID_BYTES = 8;
const MAGIC = Buffer.from("PVB1", "ascii");
const DEK_FORMAT: EnvelopeFormat = { magic: "PVK1", version: 1 };
const VALUE_FORMAT: EnvelopeFormat = { magic: "PVD1", version: 1 };
const WRAPPED_DEK_BYTES = ENVELOPE_OVERHEAD + VAULT_KEY_BYTES;
const HEADER_BYTES = MAGIC.length + KEY_ID_BYTES;
/** Bytes a sealed blob adds to its value. */
export const SEALED_OVERHEAD = HEADER_BYTES + WRAPPED_DEK_BYTES + ENVELOPE_OVERHEAD;

export function vaultKeyId(vaultKey: Uint8Array): Buffer {
  return createHmac("sha256", vaultKey).update("palyra-vault-key-id-v1").digest().subarray(0, KEY_ID_BYTES);
}

function associatedData(keyId: Uint8Array, scope: string, key: string): Buffer {
  return Buffer.concat([
    Buffer.from("palyra-vault-v1\0", "ascii"),
    MAGIC,
    keyId,
    Buffer.from(`\0${scope}\0${key}`, "utf8"),
  ]);
}

export function sealValue(
  vaultKey: Uint8Array,
  scope: string,
  key: string,
  value: Uint8Array,
  random: Random,
): Buffer {
  const keyId = vaultKeyId(vaultKey);
  const aad = associatedData(keyId, scope, key);
  const dek = random.bytes(VAULT_KEY_BYTES);
  try {
    const wrapped = sealEnvelope(DEK_FORMAT, vaultKey, dek, aad, random);
    const sealed = sealEnvelope(VALUE_FORMAT, dek, value, aad, random);
    return Buffer.concat([MAGIC, keyId, wrapped, sealed]);
  } finally {
    dek.fill(0);
  }
}

/** Opens a sealed blob for `scope`/`key`; `ref` names it in errors. */
export function openValue(vaultKey: Uint8Array, scope: string, key: string, blob: Uint8Array): Buffer {
  const ref = `${scope}/${key}`;
  const data = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  if (data.length < SEALED_OVERHEAD || !data.subarray(0, MAGIC.length).equals(MAGIC))
    throw new VaultError("blob_corrupt", `the stored blob of ${ref} is not a Palyra vault blob`);
  const keyId = vaultKeyId(vaultKey);
  if (!data.subarray(MAGIC.length, HEADER_BYTES).equals(keyId))
    throw new VaultError(
      "wrong_vault_key",
      `the stored blob of ${ref} was sealed by another vault key (a vault restored or copied from elsewhere?)`,
    );
  const aad = associatedData(keyId, scope, key);
  let dek: Buffer | undefined;
  try {
    dek = openEnvelope(
      DEK_FORMAT,
      vaultKey,
      data.subarray(HEADER_BYTES, HEADER_BYTES + WRAPPED_DEK_BYTES),
      aad,
    );
    return openEnvelope(VALUE_FORMAT, dek, data.subarray(HEADER_BYTES + WRAPPED_DEK_BYTES), aad);
  } catch (err) {
    throw new VaultError(
      "blob_corrupt",
      `the stored blob of ${ref} failed authentication (tampered with, or moved from another name)`,
      { cause: err },
    );
  } finally {
    dek?.fill(0);
  }
}

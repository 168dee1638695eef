import { createHash, createPublicKey, type KeyObject, X509Certificate } from "node:crypto";

/** Lowercase hex SHA-256 of a certificate's DER: the identity the gateway trusts. */
export function certificateFingerprint(der: Uint8Array): string {
  return createHash("sha256").update(der).digest("hex");
}

/** SHA-256 of a public key's SubjectPublicKeyInfo DER (hex), e.g. for the CA pin. */
export function spkiFingerprint(key: KeyObject | X509Certificate): string {
  return spkiDigest(key).toString("hex");
}

export function spkiDigest(key: KeyObject | X509Certificate): Buffer {
  const publicKey =
    key instanceof X509Certificate ? key.publicKey : key.type === "private" ? createPublicKey(key) : key;
  return createHash("sha256")
    .update(publicKey.export({ type: "spki", format: "der" }))
    .digest();
}

/** Device identity fingerprint: hex SHA-256 of the raw 32-byte Ed25519 public key. */
export function identityFingerprint(rawPublicKey: Uint8Array): string {
  if (rawPublicKey.length !== 32) throw new RangeError("an Ed25519 public key is 32 bytes");
  return createHash("sha256").update(rawPublicKey).digest("hex");
}

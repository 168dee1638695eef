import { z } from "zod";
import type { Random } from "../common/random.js";
import { type EnvelopeFormat, openEnvelope, sealEnvelope } from "../crypto/envelope.js";
import { defaultScryptParams, deriveKeyFromPassphrase } from "../crypto/passphrase-key.js";

/**
 * Secrets a cluster keeps in its shared database, sealed under a key every gateway derives from the same
 * passphrase (scrypt; salt and cost stored beside the ciphertext, so they can change without breaking
 * what was sealed before). The associated data names what is sealed: a sealed CA key does not open as a
 * vault key.
 */

export const sealedSchema = z
  .object({
    kdf: z.object({
      alg: z.literal("scrypt"),
      salt: z.string().regex(/^[A-Za-z0-9_-]{22,64}$/),
      N: z.number().int().min(1024).max(1_048_576),
      r: z.number().int().min(1).max(32),
      p: z.number().int().min(1).max(16),
    }),
    sealed: z.string().min(1).max(16_384),
  })
  .strict();
export type PassphraseSealed = z.infer<typeof sealedSchema>;

export async function sealWithPassphrase(
  plaintext: Uint8Array,
  passphrase: string,
  format: EnvelopeFormat,
  aad: Uint8Array,
  random: Random,
): Promise<PassphraseSealed> {
  const params = defaultScryptParams();
  const salt = random.bytes(16).toString("base64url");
  const kek = await deriveKeyFromPassphrase(passphrase, salt, params);
  try {
    const sealed = sealEnvelope(format, kek, plaintext, aad, random);
    return { kdf: { alg: "scrypt", salt, ...params }, sealed: sealed.toString("base64") };
  } finally {
    kek.fill(0);
  }
}

/** Throws CryptoError envelope_auth_failed when the passphrase is not the one it was sealed with. */
export async function openWithPassphrase(
  record: PassphraseSealed,
  passphrase: string,
  format: EnvelopeFormat,
  aad: Uint8Array,
): Promise<Buffer> {
  const { salt, N, r, p } = record.kdf;
  const kek = await deriveKeyFromPassphrase(passphrase, salt, { N, r, p });
  try {
    return openEnvelope(format, kek, Buffer.from(record.sealed, "base64"), aad);
  } finally {
    kek.fill(0);
  }
}

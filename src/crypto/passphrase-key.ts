import { scrypt as scryptCallback } from "node:crypto";
import { promisify } from "node:util";
import { limits } from "../common/limits.js";
import { CryptoError } from "./errors.js";

/** A 32-byte key from a passphrase with scrypt; used where a key must not rest in a file. */

export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

export const PASSPHRASE_KEY_BYTES = 32;

const scryptAsync = promisify(scryptCallback) as (
  password: Buffer,
  salt: Buffer,
  keylen: number,
  options: ScryptParams & { maxmem: number },
) => Promise<Buffer>;

/** The default cost for new keys; opens use the cost recorded beside the key. */
export function defaultScryptParams(): ScryptParams {
  return { N: limits.scryptN, r: limits.scryptR, p: limits.scryptP };
}

/** scrypt(passphrase, salt); the passphrase is NFC-normalised so the same text typed anywhere matches. */
export async function deriveKeyFromPassphrase(
  passphrase: string,
  saltBase64url: string,
  params: ScryptParams,
): Promise<Buffer> {
  const secret = Buffer.from(passphrase.normalize("NFC"), "utf8");
  const { N, r, p } = params;
  try {
    return await scryptAsync(secret, Buffer.from(saltBase64url, "base64url"), PASSPHRASE_KEY_BYTES, {
      N,
      r,
      p,
      maxmem: limits.scryptMaxmem,
    });
  } catch (err) {
    throw new CryptoError("kdf_failed", `scrypt parameters are unusable: ${(err as Error).message}`, {
      cause: err,
    });
  } finally {
    secret.fill(0);
  }
}

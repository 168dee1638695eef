import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import type { Random } from "../common/random.js";
import { readSecretFile, SecretFileError } from "../common/secret-file.js";
import { deriveKeyFromPassphrase, type ScryptParams } from "../crypto/passphrase-key.js";
import { IdentityError } from "./errors.js";
import { createFileExclusive } from "./secret-store-metadata.js";

/** The two local sources of a key-encryption key: a passphrase (scrypt) and a key file. */

export const KEK_BYTES = 32;

export type { ScryptParams };

/** scrypt(passphrase, salt) as a key-encryption key; unusable recorded parameters mean a corrupt store. */
export async function deriveKekFromPassphrase(
  passphrase: string,
  saltBase64url: string,
  params: ScryptParams,
): Promise<Buffer> {
  try {
    return await deriveKeyFromPassphrase(passphrase, saltBase64url, params);
  } catch (err) {
    throw new IdentityError("secret_store_corrupt", (err as Error).message, { cause: err });
  }
}

/**
 * Makes sure a key file exists (0600, 32 random bytes, created atomically) and returns its key. A file
 * already there (left by an interrupted creation, or made by a concurrent creator) is used, never
 * overwritten.
 */
export function createOrReadKeyFile(path: string, random: Random): Buffer {
  // No chmod of an existing parent: it may be a directory the user shares on purpose.
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  createFileExclusive(path, random.bytes(KEK_BYTES), random);
  return readKeyFile(path);
}

/**
 * Reads a key file under the secret-file rule (common/secret-file.ts: a regular 0600 file of the
 * current user in a directory others cannot write), like ssh does with private keys.
 */
export function readKeyFile(path: string): Buffer {
  let key: Buffer | undefined;
  try {
    key = readSecretFile(path, 1024);
  } catch (err) {
    if (err instanceof SecretFileError)
      throw new IdentityError("secret_store_locked", err.message, { cause: err });
    throw new IdentityError(
      "secret_store_locked",
      `cannot read key file ${path}: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  if (key === undefined)
    throw new IdentityError("secret_store_locked", `cannot read key file ${path}: it is missing`);
  if (key.length !== KEK_BYTES) {
    key.fill(0);
    throw new IdentityError("secret_store_corrupt", `key file ${path} does not hold a ${KEK_BYTES}-byte key`);
  }
  return key;
}

import { existsSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { fsyncDirectory, writeFileAtomic } from "../common/atomic-file.js";
import type { Random } from "../common/random.js";
import { readSecretFile, SecretFileError } from "../common/secret-file.js";
import { type EnvelopeFormat, openEnvelope, sealEnvelope } from "../crypto/envelope.js";
import { defaultScryptParams, deriveKeyFromPassphrase, type ScryptParams } from "../crypto/passphrase-key.js";
import type { BackendKind, BlobBackend, Protection } from "./backends/blob-backend.js";
import { VaultError } from "./errors.js";
import { VAULT_KEY_BYTES } from "./sealed-blob.js";
import type { KeyHome } from "./settings.js";

/**
 * Where the vault key is kept (its "home"). The key itself is random and never changes; moving a vault
 * to another backend adds a home there and drops the old one, so no blob needs re-sealing.
 * - in an OS backend, as the blob `vk_<vault id>` (the OS store protects it);
 * - for the encrypted-file backend: behind PALYRA_VAULT_PASSPHRASE (scrypt), or in a 0600 key file,
 *   which protects nothing from someone who can read the state directory (reported as weak).
 */

export const PASSPHRASE_ENV = "PALYRA_VAULT_PASSPHRASE";
const KEY_FILE = "vault.key";
const SEALED_KEY_FILE = "vault-key.sealed";
/** The files in the vault directory that can hold its key (the encrypted-file backend's homes). */
export const VAULT_KEY_FILES: readonly string[] = [KEY_FILE, SEALED_KEY_FILE];
const PASSPHRASE_FORMAT: EnvelopeFormat = { magic: "PVP1", version: 1 };
const PASSPHRASE_AAD = Buffer.from("palyra-vault-v1\0passphrase-wrapped-key", "utf8");

export interface KeyHomeContext {
  dir: string;
  vaultId: string;
  env: Readonly<Record<string, string | undefined>>;
  random: Random;
  backend(kind: BackendKind): BlobBackend;
  scrypt?: ScryptParams;
}

export function vaultKeyBlobId(vaultId: string): string {
  return `vk_${vaultId}`;
}

/** The home for a vault on the encrypted-file backend: the passphrase when one is set, else a key file. */
export function fileKeyHome(ctx: Pick<KeyHomeContext, "env" | "random" | "scrypt">): KeyHome {
  if (!ctx.env[PASSPHRASE_ENV]) return { kind: "key-file", file: KEY_FILE };
  return {
    kind: "passphrase",
    file: SEALED_KEY_FILE,
    salt: ctx.random.bytes(16).toString("base64url"),
    ...(ctx.scrypt ?? defaultScryptParams()),
  };
}

export function protectionOf(home: KeyHome): { protection: Protection; weak: boolean; detail: string } {
  if (home.kind === "key-file")
    return {
      protection: "key-file",
      weak: true,
      detail: `vault key in ${KEY_FILE} (0600): anyone who can read the state directory can decrypt`,
    };
  if (home.kind === "passphrase")
    return {
      protection: "passphrase",
      weak: false,
      detail: `vault key sealed by ${PASSPHRASE_ENV} (scrypt)`,
    };
  if (home.backend === "windows-dpapi")
    return {
      protection: "os-user-key",
      weak: false,
      detail: "vault key and blobs protected by DPAPI (current user)",
    };
  return {
    protection: "os-keyring",
    weak: false,
    detail: `vault key and blobs protected by the ${home.backend}`,
  };
}

async function passphraseKey(
  home: Extract<KeyHome, { kind: "passphrase" }>,
  ctx: KeyHomeContext,
): Promise<Buffer> {
  const passphrase = ctx.env[PASSPHRASE_ENV];
  if (!passphrase)
    throw new VaultError("vault_locked", `this vault needs its passphrase: set ${PASSPHRASE_ENV}`);
  return deriveKeyFromPassphrase(passphrase, home.salt, home);
}

export async function storeVaultKey(home: KeyHome, vaultKey: Buffer, ctx: KeyHomeContext): Promise<void> {
  if (home.kind === "backend") return ctx.backend(home.backend).put(vaultKeyBlobId(ctx.vaultId), vaultKey);
  const path = join(ctx.dir, home.file);
  if (home.kind === "key-file") return writeFileAtomic(path, vaultKey);
  const kek = await passphraseKey(home, ctx);
  try {
    writeFileAtomic(path, sealEnvelope(PASSPHRASE_FORMAT, kek, vaultKey, PASSPHRASE_AAD, ctx.random));
  } finally {
    kek.fill(0);
  }
}

/** Loads the vault key from one home; errors say why that home could not give it. */
export async function loadVaultKey(home: KeyHome, ctx: KeyHomeContext): Promise<Buffer> {
  if (home.kind === "backend") {
    const key = await ctx.backend(home.backend).get(vaultKeyBlobId(ctx.vaultId));
    if (key === undefined)
      throw new VaultError(
        "vault_locked",
        `the ${home.backend} holds no key for this vault (removed outside Palyra?)`,
      );
    return key;
  }
  const path = join(ctx.dir, home.file);
  let stored: Buffer | undefined;
  try {
    // The key file (and the passphrase-sealed one) follow the one rule for secret files: a regular
    // 0600 file of this user in a directory others cannot write, else refused with the fix.
    stored = readSecretFile(path, 1024);
  } catch (err) {
    throw new VaultError(
      "vault_locked",
      err instanceof SecretFileError
        ? `the vault key file is refused: ${err.message}`
        : `cannot read the vault key file ${path}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  if (stored === undefined)
    throw new VaultError("vault_locked", `the vault key file ${path} is missing (removed outside Palyra?)`);
  if (home.kind === "key-file") return stored;
  const kek = await passphraseKey(home, ctx);
  try {
    return openEnvelope(PASSPHRASE_FORMAT, kek, stored, PASSPHRASE_AAD);
  } catch (err) {
    throw new VaultError("vault_locked", `wrong ${PASSPHRASE_ENV} for this vault`, { cause: err });
  } finally {
    kek.fill(0);
  }
}

/** Drops a home (after a migration made another one the only home). */
export async function removeVaultKey(home: KeyHome, ctx: KeyHomeContext): Promise<void> {
  if (home.kind === "backend") return ctx.backend(home.backend).delete(vaultKeyBlobId(ctx.vaultId));
  const path = join(ctx.dir, home.file);
  if (!existsSync(path)) return;
  unlinkSync(path);
  fsyncDirectory(ctx.dir);
}

/** A home's short name for people: the backend's kind, or key-file / passphrase. */
export function homeLabel(home: KeyHome): string {
  return home.kind === "backend" ? home.backend : home.kind;
}

export function sameHome(a: KeyHome, b: KeyHome): boolean {
  return a.kind === b.kind && (a.kind !== "backend" || a.backend === (b as typeof a).backend);
}

export function checkKeyLength(key: Buffer): Buffer {
  if (key.length !== VAULT_KEY_BYTES)
    throw new VaultError("vault_locked", "the stored vault key has the wrong length");
  return key;
}

import { createHash } from "node:crypto";
import { readdirSync, realpathSync } from "node:fs";
import { relative, resolve } from "node:path";
import { type Clock, systemClock } from "../common/clock.js";
import { limits } from "../common/limits.js";
import { type Random, systemRandom } from "../common/random.js";
import { Secret } from "../common/redaction.js";
import { type EnvelopeFormat, openEnvelope, sealEnvelope } from "../crypto/envelope.js";
import { IdentityError } from "./errors.js";
import {
  createOrReadKeyFile,
  deriveKekFromPassphrase,
  KEK_BYTES,
  readKeyFile,
  type ScryptParams,
} from "./kek-sources.js";
import {
  KEYRING_SERVICE,
  type KeyringAccess,
  loadKekFromKeyring,
  removeFromKeyring,
  storeKekInKeyring,
} from "./keyring-kek.js";
import {
  createMetadataExclusive,
  describeFromMetadata,
  type KekDescriptor,
  type KekMode,
  readMetadata,
  type SecretStoreDescription,
  type SecretStoreMetadata,
} from "./secret-store-metadata.js";

/**
 * Where a filesystem secret store's 32-byte key-encryption key (KEK) comes from. At creation, in order:
 * the OS keyring (when a real round trip works), a passphrase (`PALYRA_STORE_PASSPHRASE`, scrypt), or a
 * key file beside the store (`<dir>.kek`, weak). The choice is recorded in `store.json`, and later opens
 * use that mode only: falling back silently would hide a lost keyring or passphrase.
 */

export const PASSPHRASE_ENV = "PALYRA_STORE_PASSPHRASE";
export const SECRET_STORE_ENVELOPE: EnvelopeFormat = { magic: "PSS1", version: 1 };
export const SECRET_FILE_SUFFIX = ".sec";
const CHECK_AAD = Buffer.from("palyra-secret-store-v1\0kek-check", "utf8");
const CHECK_PLAINTEXT = Buffer.from("palyra key check", "utf8");

export type { KekMode, ScryptParams, SecretStoreDescription };

export interface KeyProtectionOptions extends KeyringAccess {
  /** Force a mode at creation (and require it at open) instead of the keyring, passphrase, key-file order. */
  kekMode?: KekMode;
  /** Where `PALYRA_STORE_PASSPHRASE` is read (default process.env). */
  env?: Readonly<Record<string, string | undefined>>;
  random?: Random;
  clock?: Clock;
  /** scrypt cost for a new passphrase store (default: limits). Opens use the recorded cost. */
  scrypt?: ScryptParams;
  /** Key file of a new key-file store (default `<dir>.kek`). Opens use the recorded path. */
  keyFilePath?: string;
}

export interface UnlockedKek {
  kek: Secret<Buffer>;
  metadata: SecretStoreMetadata;
  created: boolean;
}

/** Key file location when none is given: beside the store directory, e.g. `~/.palyra/secrets.kek`. */
export function defaultKeyFilePath(dir: string): string {
  return `${resolve(dir)}.kek`;
}

/** Which key protection a store uses, read from `store.json` without unlocking anything. */
export async function describeSecretStore(dir: string): Promise<SecretStoreDescription | undefined> {
  const abs = resolve(dir);
  const metadata = readMetadata(abs);
  return metadata === undefined ? undefined : describeFromMetadata(abs, metadata);
}

/** Creates the KEK of a new store, or unlocks the recorded one. `dir` must exist (0700). */
export async function unlockStoreKek(dir: string, options: KeyProtectionOptions = {}): Promise<UnlockedKek> {
  const abs = resolve(dir);
  const existing = readMetadata(abs);
  if (existing !== undefined)
    return { kek: await openKek(abs, existing, options), metadata: existing, created: false };
  return createKek(abs, options);
}

async function createKek(dir: string, o: KeyProtectionOptions): Promise<UnlockedKek> {
  if (readdirSync(dir).some((name) => name.endsWith(SECRET_FILE_SUFFIX)))
    throw new IdentityError(
      "secret_store_corrupt",
      `secret store ${dir} holds secret files but no store.json; refusing to create a new key-encryption key`,
    );
  const random = o.random ?? systemRandom;
  const clock = o.clock ?? systemClock;
  const chosen = await chooseKek(dir, o, random);
  const kek = chosen.kek;
  const metadata: SecretStoreMetadata = {
    format: "palyra-secret-store",
    version: 1,
    createdAt: new Date(clock.now()).toISOString(),
    kek: chosen.descriptor,
    check: sealEnvelope(SECRET_STORE_ENVELOPE, kek, CHECK_PLAINTEXT, CHECK_AAD, random).toString("base64url"),
  };
  let won = false;
  try {
    won = createMetadataExclusive(dir, metadata, random);
  } finally {
    // Lost the race to another creator (or failed): forget our key; the winner's store is opened below.
    if (!won) {
      if (chosen.descriptor.mode === "keyring") await removeFromKeyring(o, chosen.descriptor.account);
      kek.fill(0);
    }
  }
  if (won) return { kek: new Secret(kek), metadata, created: true };
  return unlockStoreKek(dir, o);
}

async function chooseKek(
  dir: string,
  o: KeyProtectionOptions,
  random: Random,
): Promise<{ kek: Buffer; descriptor: KekDescriptor }> {
  const forced = o.kekMode;
  if (forced === undefined || forced === "keyring") {
    const digest = createHash("sha256").update(realpathSync(dir)).digest("hex").slice(0, 16);
    // The random suffix keeps two creators of the same directory from overwriting each other's KEK.
    const account = `secret-store-kek:${digest}:${random.bytes(4).toString("hex")}`;
    const kek = random.bytes(KEK_BYTES);
    const stored = await storeKekInKeyring(o, account, kek);
    if (stored.ok) return { kek, descriptor: { mode: "keyring", service: KEYRING_SERVICE, account } };
    kek.fill(0);
    if (forced === "keyring")
      throw new IdentityError("secret_store_unavailable", `the OS keyring is unavailable: ${stored.reason}`);
  }
  const passphrase = (o.env ?? process.env)[PASSPHRASE_ENV];
  if (forced === "passphrase" || (forced === undefined && passphrase)) {
    if (!passphrase) throw new IdentityError("secret_store_locked", `${PASSPHRASE_ENV} is not set`);
    const params = o.scrypt ?? { N: limits.scryptN, r: limits.scryptR, p: limits.scryptP };
    const salt = random.bytes(16).toString("base64url");
    const kek = await deriveKekFromPassphrase(passphrase, salt, params);
    return { kek, descriptor: { mode: "passphrase", kdf: "scrypt", salt, ...params } };
  }
  const keyFile = resolve(o.keyFilePath ?? defaultKeyFilePath(dir));
  return {
    kek: createOrReadKeyFile(keyFile, random),
    descriptor: { mode: "key-file", path: relative(dir, keyFile) },
  };
}

async function openKek(
  dir: string,
  metadata: SecretStoreMetadata,
  o: KeyProtectionOptions,
): Promise<Secret<Buffer>> {
  const { kek: d } = metadata;
  if (o.kekMode !== undefined && o.kekMode !== d.mode)
    throw new IdentityError(
      "secret_store_unavailable",
      `secret store ${dir} uses ${d.mode} key protection, not the requested ${o.kekMode}`,
    );
  let kek: Buffer;
  if (d.mode === "keyring") {
    const loaded = await loadKekFromKeyring(o, d.account);
    if (!loaded.ok)
      throw new IdentityError(
        "secret_store_unavailable",
        `secret store ${dir} keeps its key-encryption key in the OS keyring, which is unreachable: ${loaded.reason}`,
      );
    if (loaded.value === undefined)
      throw new IdentityError(
        "secret_store_unavailable",
        `the OS keyring has no key-encryption key for secret store ${dir} (account ${d.account})`,
      );
    kek = loaded.value;
  } else if (d.mode === "passphrase") {
    const passphrase = (o.env ?? process.env)[PASSPHRASE_ENV];
    if (!passphrase)
      throw new IdentityError(
        "secret_store_locked",
        `secret store ${dir} needs its passphrase: set ${PASSPHRASE_ENV}`,
      );
    kek = await deriveKekFromPassphrase(passphrase, d.salt, d);
  } else {
    kek = readKeyFile(resolve(dir, d.path));
  }
  if (!checkOpens(metadata, kek)) {
    kek.fill(0);
    const hint =
      d.mode === "passphrase" ? "wrong passphrase?" : d.mode === "key-file" ? "key file replaced?" : "";
    throw new IdentityError(
      "secret_store_locked",
      `cannot unlock secret store ${dir}: wrong key-encryption key${hint ? ` (${hint})` : ""}`,
    );
  }
  return new Secret(kek);
}

/**
 * What `palyra doctor` learns about a store's key-encryption key without creating or changing anything:
 * - `unchecked`: its source is not available here (no passphrase set, keyring unreachable), so nothing
 *   can be said about it;
 * - `unreadable`: the source gave no usable key (key file missing, refused by the permission rule, of
 *   the wrong size; no entry in the keyring), with the file to blame when there is one;
 * - `loaded`: the key, and whether it opens the key check in `store.json`. The caller owns `kek` and
 *   must wipe it.
 */
export type KekInspection =
  | { state: "unchecked"; reason: string }
  | { state: "unreadable"; file?: string; reason: string }
  | { state: "loaded"; kek: Buffer; checkPasses: boolean };

export async function inspectStoreKek(
  dir: string,
  metadata: SecretStoreMetadata,
  o: KeyProtectionOptions = {},
): Promise<KekInspection> {
  const d = metadata.kek;
  let kek: Buffer;
  if (d.mode === "keyring") {
    const loaded = await loadKekFromKeyring(o, d.account);
    if (!loaded.ok) return { state: "unchecked", reason: `the OS keyring is unreachable: ${loaded.reason}` };
    if (loaded.value === undefined)
      return {
        state: "unreadable",
        reason: `the OS keyring has no key-encryption key for this store (account ${d.account})`,
      };
    kek = loaded.value;
  } else if (d.mode === "passphrase") {
    const passphrase = (o.env ?? process.env)[PASSPHRASE_ENV];
    if (!passphrase) return { state: "unchecked", reason: `${PASSPHRASE_ENV} is not set` };
    try {
      kek = await deriveKekFromPassphrase(passphrase, d.salt, d);
    } catch (err) {
      return { state: "unreadable", file: resolve(dir, "store.json"), reason: (err as Error).message };
    }
  } else {
    const file = resolve(dir, d.path);
    try {
      kek = readKeyFile(file);
    } catch (err) {
      return { state: "unreadable", file, reason: (err as Error).message };
    }
  }
  return { state: "loaded", kek, checkPasses: checkOpens(metadata, kek) };
}

function checkOpens(metadata: SecretStoreMetadata, kek: Buffer): boolean {
  if (kek.length !== KEK_BYTES) return false;
  try {
    openEnvelope(SECRET_STORE_ENVELOPE, kek, Buffer.from(metadata.check, "base64url"), CHECK_AAD);
    return true;
  } catch {
    return false;
  }
}

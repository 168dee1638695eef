import { readdirSync, unlinkSync } from "node:fs";
import { join, resolve } from "node:path";
import { inspect } from "node:util";
import { ensurePrivateDirectory, fsyncDirectory, writeFileAtomic } from "../common/atomic-file.js";
import { systemClock } from "../common/clock.js";
import { limits } from "../common/limits.js";
import { type Random, systemRandom } from "../common/random.js";
import { Secret } from "../common/redaction.js";
import { readSecretFile, SecretFileError } from "../common/secret-file.js";
import { removeStaleTempFiles } from "../common/stale-temp-files.js";
import { ENVELOPE_OVERHEAD, openEnvelope, sealEnvelope } from "../crypto/envelope.js";
import { IdentityError } from "./errors.js";
import {
  inspectStoreKek,
  type KekMode,
  type KeyProtectionOptions,
  PASSPHRASE_ENV,
  SECRET_FILE_SUFFIX,
  SECRET_STORE_ENVELOPE,
  type SecretStoreDescription,
  unlockStoreKek,
} from "./key-protection.js";
import { assertSecretKey, assertSecretValue, type SecretStore } from "./secret-store.js";
import { describeFromMetadata, METADATA_FILE, readMetadata } from "./secret-store-metadata.js";

/**
 * Encrypted secret store on disk (DESIGN section 4): one file per key, named base64url(key) + ".sec" so
 * no key name can reach outside the directory; each file is a ChaCha20-Poly1305 envelope under the
 * store's key-encryption key, with the key name in the associated data so a file renamed to another
 * key's name fails to open. Writes are atomic and durable before they are acknowledged.
 */

export type FilesystemSecretStoreOptions = KeyProtectionOptions;

const AAD_PREFIX = "palyra-secret-store-v1\0key:";

function fileNameOf(key: string): string {
  return Buffer.from(key, "utf8").toString("base64url") + SECRET_FILE_SUFFIX;
}

/** The key a file name stands for, or undefined for anything that is not a canonical secret file name. */
function keyOfFileName(name: string): string | undefined {
  if (!name.endsWith(SECRET_FILE_SUFFIX) || name.startsWith(".")) return undefined;
  const key = Buffer.from(name.slice(0, -SECRET_FILE_SUFFIX.length), "base64url").toString("utf8");
  try {
    assertSecretKey(key);
  } catch {
    return undefined;
  }
  return fileNameOf(key) === name ? key : undefined;
}

function aadOf(key: string): Buffer {
  return Buffer.from(AAD_PREFIX + key, "utf8");
}

function errnoOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException).code;
}

export class FilesystemSecretStore implements SecretStore {
  readonly directory: string;
  /** Where the key-encryption key comes from (recorded at creation). */
  readonly mode: KekMode;
  readonly #kek: Secret<Buffer>;
  readonly #random: Random;
  #closed = false;

  private constructor(directory: string, kek: Secret<Buffer>, mode: KekMode, random: Random) {
    this.directory = directory;
    this.#kek = kek;
    this.mode = mode;
    this.#random = random;
  }

  /** Creates the store (directory 0700, key protection, store.json) or opens the existing one. */
  static async open(dir: string, options: FilesystemSecretStoreOptions = {}): Promise<FilesystemSecretStore> {
    const abs = resolve(dir);
    ensurePrivateDirectory(abs);
    const { kek, metadata } = await unlockStoreKek(abs, options);
    removeStaleTempFiles(abs, (options.clock ?? systemClock).now(), limits.secretStoreStaleTempMs);
    return new FilesystemSecretStore(abs, kek, metadata.kek.mode, options.random ?? systemRandom);
  }

  /** See `inspectSecretStore`. */
  static async inspect(
    dir: string,
    options: FilesystemSecretStoreOptions = {},
  ): Promise<SecretStoreInspection | undefined> {
    const abs = resolve(dir);
    const metadata = readMetadata(abs);
    if (metadata === undefined) return undefined;
    const description = describeFromMetadata(abs, metadata);
    const metadataFile = join(abs, METADATA_FILE);
    const problems: SecretStoreProblem[] = [];
    const kek = await inspectStoreKek(abs, metadata, options);
    if (kek.state === "unchecked") return { description, unchecked: kek.reason, problems, opened: 0 };
    if (kek.state === "unreadable") {
      problems.push({ file: kek.file ?? metadataFile, message: kek.reason });
      return { description, problems, opened: 0 };
    }
    const keys = readdirSync(abs)
      .map((name) => keyOfFileName(name))
      .filter((key): key is string => key !== undefined)
      .sort();
    let opened = 0;
    const damaged: SecretStoreProblem[] = [];
    for (const key of keys) {
      const file = join(abs, fileNameOf(key));
      try {
        if (readSealed(abs, kek.kek, key) !== undefined) opened++;
      } catch (err) {
        const cause = (err as Error).cause;
        damaged.push({
          file,
          message: cause instanceof SecretFileError ? cause.message : (err as Error).message,
        });
      }
    }
    const source =
      description.mode === "key-file"
        ? `the key file ${description.keyFile}`
        : description.mode === "passphrase"
          ? PASSPHRASE_ENV
          : `the OS keyring's key (account ${description.keyringAccount})`;
    if (!kek.checkPasses && opened === 0) {
      kek.kek.fill(0);
      const blamed = description.mode === "key-file" ? (description.keyFile ?? metadataFile) : metadataFile;
      problems.push({
        file: blamed,
        message:
          keys.length === 0
            ? `${source} does not open the key check in ${metadataFile}: one of the two is damaged`
            : `${source} opens neither the key check in ${metadataFile} nor any of the ${keys.length} secret(s): ` +
              (description.mode === "key-file"
                ? `the key file ${description.keyFile} is damaged or replaced`
                : description.mode === "passphrase"
                  ? "wrong passphrase"
                  : "the keyring holds another key"),
      });
      return { description, problems, opened };
    }
    if (!kek.checkPasses)
      problems.push({
        file: metadataFile,
        message: `the key check in ${metadataFile} is damaged: it does not open with ${source}, though ${opened} secret(s) do`,
      });
    problems.push(...damaged);
    const store = new FilesystemSecretStore(abs, new Secret(kek.kek), metadata.kek.mode, systemRandom);
    return { description, problems, opened, store };
  }

  async read(key: string): Promise<Buffer | undefined> {
    return readSealed(this.directory, this.#key(), assertSecretKey(key));
  }

  /** The file that holds `key` (for messages that must name it, e.g. `palyra doctor`). */
  pathOf(key: string): string {
    return secretFilePath(this.directory, key);
  }

  async write(key: string, value: Uint8Array): Promise<void> {
    const kek = this.#key();
    assertSecretKey(key);
    assertSecretValue(value);
    const sealed = sealEnvelope(SECRET_STORE_ENVELOPE, kek, value, aadOf(key), this.#random);
    writeFileAtomic(join(this.directory, fileNameOf(key)), sealed);
  }

  async delete(key: string): Promise<boolean> {
    this.#key();
    const path = join(this.directory, fileNameOf(assertSecretKey(key)));
    try {
      unlinkSync(path);
    } catch (err) {
      if (errnoOf(err) === "ENOENT") return false;
      throw new IdentityError(
        "secret_store_unavailable",
        `cannot delete secret '${key}': ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    fsyncDirectory(this.directory);
    return true;
  }

  async list(prefix = ""): Promise<string[]> {
    this.#key();
    const keys: string[] = [];
    for (const name of readdirSync(this.directory)) {
      const key = keyOfFileName(name);
      if (key?.startsWith(prefix)) keys.push(key);
    }
    return keys.sort();
  }

  /** Wipes the key-encryption key from memory; the store refuses further use. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#kek.expose().fill(0);
  }

  #key(): Buffer {
    if (this.#closed)
      throw new IdentityError("secret_store_locked", `secret store ${this.directory} is closed`);
    return this.#kek.expose();
  }

  toJSON(): { directory: string; mode: KekMode } {
    return { directory: this.directory, mode: this.mode };
  }

  [inspect.custom](): string {
    return `FilesystemSecretStore { directory: ${JSON.stringify(this.directory)}, mode: ${this.mode} }`;
  }
}

/** Creates or opens a filesystem secret store at `dir`. */
export function openFilesystemSecretStore(
  dir: string,
  options: FilesystemSecretStoreOptions = {},
): Promise<FilesystemSecretStore> {
  return FilesystemSecretStore.open(dir, options);
}

/** The file that holds `key` in the store at `dir`. */
export function secretFilePath(dir: string, key: string): string {
  return join(resolve(dir), fileNameOf(assertSecretKey(key)));
}

/**
 * Reads and opens one secret file. The file must pass the secret-file rule (common/secret-file.ts);
 * a file that breaks it is refused with its name, mode and fix, before any byte is read.
 */
function readSealed(dir: string, kek: Buffer, key: string): Buffer | undefined {
  const path = join(dir, fileNameOf(key));
  let data: Buffer | undefined;
  try {
    data = readSecretFile(path, limits.maxSecretValueBytes + ENVELOPE_OVERHEAD);
  } catch (err) {
    if (err instanceof SecretFileError)
      throw new IdentityError("secret_store_locked", `secret '${key}' is refused: ${err.message}`, {
        cause: err,
      });
    throw new IdentityError(
      "secret_store_corrupt",
      `secret '${key}' cannot be read: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  if (data === undefined) return undefined;
  try {
    return openEnvelope(SECRET_STORE_ENVELOPE, kek, data, aadOf(key));
  } catch (err) {
    throw new IdentityError(
      "secret_store_corrupt",
      `secret '${key}' in ${dir} is corrupt: its file failed authentication (changed, truncated, or renamed from another key): ${path}`,
      { cause: err },
    );
  }
}

/** A damaged or refused file found by `inspectSecretStore`, named. */
export interface SecretStoreProblem {
  file: string;
  message: string;
}

export interface SecretStoreInspection {
  description: SecretStoreDescription;
  /** Why the key-encryption key could not be checked here (passphrase not set, keyring unreachable). */
  unchecked?: string;
  /** Every damaged or refused file, named; empty when the key and every secret opened. */
  problems: SecretStoreProblem[];
  /** Secret files that opened. */
  opened: number;
  /** The store, open for reading, when its key is the right one; the caller closes it. */
  store?: FilesystemSecretStore;
}

/**
 * For `palyra doctor`: unlocks an existing store without creating, tightening or removing anything,
 * and opens every secret file, to name whatever is damaged. A key check in store.json that fails
 * while the secrets open means store.json is damaged; one that fails with nothing opening means the
 * key is wrong (a damaged or replaced key file, a wrong passphrase). Undefined if there is no store.
 */
export function inspectSecretStore(
  dir: string,
  options: FilesystemSecretStoreOptions = {},
): Promise<SecretStoreInspection | undefined> {
  return FilesystemSecretStore.inspect(dir, options);
}

import { readdirSync, statSync, unlinkSync } from "node:fs";
import { join, resolve } from "node:path";
import { inspect } from "node:util";
import {
  ensurePrivateDirectory,
  fsyncDirectory,
  readFileLimited,
  writeFileAtomic,
} from "../common/atomic-file.js";
import { type Clock, systemClock } from "../common/clock.js";
import { limits } from "../common/limits.js";
import { type Random, systemRandom } from "../common/random.js";
import type { Secret } from "../common/redaction.js";
import { ENVELOPE_OVERHEAD, openEnvelope, sealEnvelope } from "../crypto/envelope.js";
import { IdentityError } from "./errors.js";
import {
  type KekMode,
  type KeyProtectionOptions,
  SECRET_FILE_SUFFIX,
  SECRET_STORE_ENVELOPE,
  unlockStoreKek,
} from "./key-protection.js";
import { assertSecretKey, assertSecretValue, type SecretStore } from "./secret-store.js";

/**
 * Encrypted secret store on disk (DESIGN section 4): one file per key, named base64url(key) + ".sec" so
 * no key name can reach outside the directory; each file is a ChaCha20-Poly1305 envelope under the
 * store's key-encryption key, with the key name in the associated data so a file renamed to another
 * key's name fails to open. Writes are atomic and durable before they are acknowledged.
 */

export type FilesystemSecretStoreOptions = KeyProtectionOptions;

/** `.<name>.<12 hex>.tmp`: the temp files of writeFileAtomic and of the exclusive creates. */
const TEMP_FILE = /^\..+\.[0-9a-f]{12}\.tmp$/;
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
    removeStaleTempFiles(abs, options.clock ?? systemClock);
    return new FilesystemSecretStore(abs, kek, metadata.kek.mode, options.random ?? systemRandom);
  }

  async read(key: string): Promise<Buffer | undefined> {
    const kek = this.#key();
    const path = join(this.directory, fileNameOf(assertSecretKey(key)));
    let data: Buffer;
    try {
      data = readFileLimited(path, limits.maxSecretValueBytes + ENVELOPE_OVERHEAD);
    } catch (err) {
      if (errnoOf(err) === "ENOENT") return undefined;
      throw new IdentityError(
        "secret_store_corrupt",
        `secret '${key}' cannot be read: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    try {
      return openEnvelope(SECRET_STORE_ENVELOPE, kek, data, aadOf(key));
    } catch (err) {
      throw new IdentityError(
        "secret_store_corrupt",
        `secret '${key}' in ${this.directory} is corrupt: its file failed authentication (changed, truncated, or renamed from another key)`,
        { cause: err },
      );
    }
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

/** Temp files of a crashed writer; younger ones are left alone (they may belong to a live writer). */
function removeStaleTempFiles(dir: string, clock: Clock): void {
  let removed = false;
  for (const name of readdirSync(dir)) {
    if (!TEMP_FILE.test(name)) continue;
    const path = join(dir, name);
    try {
      if (clock.now() - statSync(path).mtimeMs < limits.secretStoreStaleTempMs) continue;
      unlinkSync(path);
      removed = true;
    } catch {
      // raced with its writer or another cleaner: nothing to do
    }
  }
  if (removed) fsyncDirectory(dir);
}

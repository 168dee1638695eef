import { join } from "node:path";
import type { KeyringFactory } from "../../common/os-keyring.js";
import type { Random } from "../../common/random.js";
import { SEALED_OVERHEAD } from "../sealed-blob.js";
import { type BackendKind, type BlobBackend, nativeBackendKind } from "./blob-backend.js";
import type { CommandRunner } from "./command-runner.js";
import { EncryptedFileBackend } from "./encrypted-file.js";
import { MacosKeychainBackend } from "./macos-keychain.js";
import { SecretServiceBackend } from "./secret-service.js";
import { WindowsDpapiBackend } from "./windows-dpapi.js";

/** The backends of one vault, made on first use. Each keeps its files in its own subdirectory. */

/** The subdirectories of a vault directory where backends keep blob files. */
export const BLOB_FILE_DIRS = {
  "encrypted-file": "blobs",
  "macos-keychain": "keychain",
  "windows-dpapi": "dpapi",
} as const;

export interface BackendSetOptions {
  dir: string;
  vaultId: string;
  random: Random;
  maxValueBytes: number;
  keyringTimeoutMs: number;
  commandTimeoutMs: number;
  keyring?: KeyringFactory;
  runner?: CommandRunner;
}

export class BackendSet {
  readonly #options: BackendSetOptions;
  readonly #made = new Map<BackendKind, BlobBackend>();

  constructor(options: BackendSetOptions) {
    this.#options = options;
  }

  get(kind: BackendKind): BlobBackend {
    let backend = this.#made.get(kind);
    if (!backend) {
      backend = this.#make(kind);
      this.#made.set(kind, backend);
    }
    return backend;
  }

  #make(kind: BackendKind): BlobBackend {
    const o = this.#options;
    const maxBlobBytes = o.maxValueBytes + SEALED_OVERHEAD;
    const common = { random: o.random, timeoutMs: o.commandTimeoutMs, maxBlobBytes };
    switch (kind) {
      case "encrypted-file":
        return new EncryptedFileBackend(join(o.dir, BLOB_FILE_DIRS["encrypted-file"]), maxBlobBytes);
      case "secret-service":
        return new SecretServiceBackend({
          timeoutMs: o.keyringTimeoutMs,
          ...(o.keyring ? { keyring: o.keyring } : {}),
        });
      case "macos-keychain":
        return new MacosKeychainBackend({
          ...common,
          dir: join(o.dir, BLOB_FILE_DIRS["macos-keychain"]),
          namespace: o.vaultId,
          ...(o.runner ? { runner: o.runner } : {}),
        });
      case "windows-dpapi":
        return new WindowsDpapiBackend({
          ...common,
          dir: join(o.dir, BLOB_FILE_DIRS["windows-dpapi"]),
          ...(o.runner ? { runner: o.runner } : {}),
        });
    }
  }
}

/** Whether a backend can run on a platform at all (the file backend runs everywhere). */
export function usableOn(kind: BackendKind, platform: NodeJS.Platform): boolean {
  return kind === "encrypted-file" || nativeBackendKind(platform) === kind;
}

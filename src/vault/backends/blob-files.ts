import { existsSync, readdirSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { ensurePrivateDirectory, fsyncDirectory, writeFileAtomic } from "../../common/atomic-file.js";
import { readSecretFile, SecretFileError } from "../../common/secret-file.js";
import { VaultError } from "../errors.js";
import { assertObjectId } from "./blob-backend.js";

/**
 * Blobs as files, one per blob (`<dir>/<id>.blob`, 0600 in a 0700 directory), written atomically and
 * durably. Used as is by the encrypted-file backend, and under a second wrapping by Keychain and DPAPI.
 */
export class BlobFiles {
  readonly #dir: string;
  readonly #maxBlobBytes: number;

  constructor(dir: string, maxBlobBytes: number) {
    this.#dir = dir;
    this.#maxBlobBytes = maxBlobBytes;
  }

  #path(id: string): string {
    return join(this.#dir, `${assertObjectId(id)}.blob`);
  }

  async put(id: string, blob: Uint8Array): Promise<void> {
    const path = this.#path(id);
    if (blob.length > this.#maxBlobBytes)
      throw new VaultError("backend_failed", "a blob is larger than the limit");
    ensurePrivateDirectory(this.#dir);
    writeFileAtomic(path, blob);
  }

  async get(id: string): Promise<Buffer | undefined> {
    const path = this.#path(id);
    try {
      // A blob is a secret-bearing file: read only under the rule of common/secret-file.ts.
      return readSecretFile(path, this.#maxBlobBytes);
    } catch (err) {
      throw new VaultError(
        "backend_failed",
        err instanceof SecretFileError
          ? `a vault blob is refused: ${err.message}`
          : `cannot read a vault blob: ${(err as Error).message}`,
        { cause: err },
      );
    }
  }

  async delete(id: string): Promise<void> {
    const path = this.#path(id);
    try {
      unlinkSync(path);
      fsyncDirectory(this.#dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT")
        throw new VaultError("backend_failed", `cannot delete a vault blob: ${(err as Error).message}`, {
          cause: err,
        });
    }
  }

  /** Ids of every blob file (for tests and orphan checks). */
  ids(): string[] {
    if (!existsSync(this.#dir)) return [];
    return readdirSync(this.#dir)
      .filter((name) => name.endsWith(".blob"))
      .map((name) => name.slice(0, -".blob".length));
  }
}

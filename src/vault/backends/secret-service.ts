import {
  type KeyringFactory,
  keyringBytes,
  osKeyring,
  withKeyringDeadline,
} from "../../common/os-keyring.js";
import { VaultError } from "../errors.js";
import { assertObjectId, type BlobBackend, describeFailure } from "./blob-backend.js";

/**
 * Sealed blobs as Secret Service items (gnome-keyring, KWallet, KeePassXC) through `@napi-rs/keyring`
 * with the store forced to `secret-service`. Items carry the attributes `service=palyra.vault` and
 * `username=<blob id>`, so `secret-tool search service palyra.vault` lists them. Every call is bounded:
 * a desktop keyring may pop up an unlock prompt and wait for a human.
 */

export const SECRET_SERVICE_NAME = "palyra.vault";

export class SecretServiceBackend implements BlobBackend {
  readonly kind = "secret-service" as const;
  readonly #keyring: KeyringFactory;
  readonly #timeoutMs: number;

  constructor(options: { keyring?: KeyringFactory; timeoutMs: number }) {
    this.#keyring = options.keyring ?? osKeyring;
    this.#timeoutMs = options.timeoutMs;
  }

  async #call<T>(what: string, id: string, op: (signal: AbortSignal) => Promise<T>): Promise<T> {
    assertObjectId(id);
    try {
      return await withKeyringDeadline(this.#timeoutMs, op);
    } catch (err) {
      throw new VaultError("backend_failed", `Secret Service ${what} failed: ${describeFailure(err)}`, {
        cause: err,
      });
    }
  }

  put(id: string, blob: Uint8Array): Promise<void> {
    return this.#call("write", id, async (signal) =>
      (await this.#keyring(SECRET_SERVICE_NAME, id)).setSecret(blob, signal),
    );
  }

  get(id: string): Promise<Buffer | undefined> {
    return this.#call("read", id, async (signal) => {
      const value = await (await this.#keyring(SECRET_SERVICE_NAME, id)).getSecret(signal);
      return value === null ? undefined : keyringBytes(value);
    });
  }

  delete(id: string): Promise<void> {
    return this.#call("delete", id, async (signal) => {
      // false means "there was no such item": the end state we want
      await (await this.#keyring(SECRET_SERVICE_NAME, id)).deleteCredential(signal);
    });
  }
}

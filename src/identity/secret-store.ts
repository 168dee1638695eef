import { limits } from "../common/limits.js";
import { IdentityError } from "./errors.js";

/**
 * Where identity material lives (CA key, device keys, certificates). Keys are names such as
 * `ca/key` or `device/identity`; values are bytes. Implementations: memory (tests, embedding) and the
 * encrypted filesystem store.
 */
export interface SecretStore {
  read(key: string): Promise<Buffer | undefined>;
  write(key: string, value: Uint8Array): Promise<void>;
  /** Returns whether the key existed. */
  delete(key: string): Promise<boolean>;
  /** Key names, sorted, optionally only those starting with `prefix`. */
  list(prefix?: string): Promise<string[]>;
}

const KEY_NAME = /^[a-z0-9][a-z0-9._-]*(\/[a-z0-9][a-z0-9._-]*)*$/;

/** Key names: lower-case segments of `[a-z0-9._-]` joined by `/`, no empty or dot-leading segment. */
export function assertSecretKey(key: unknown): string {
  if (
    typeof key !== "string" ||
    key.length === 0 ||
    key.length > limits.maxSecretKeyLength ||
    !KEY_NAME.test(key)
  )
    throw new IdentityError(
      "invalid_secret_key",
      `secret key names are 1-${limits.maxSecretKeyLength} characters of [a-z0-9._-] segments joined by '/'`,
    );
  return key;
}

export function assertSecretValue(value: Uint8Array): Uint8Array {
  if (!(value instanceof Uint8Array))
    throw new IdentityError("invalid_secret_key", "a secret value must be bytes");
  if (value.length > limits.maxSecretValueBytes)
    throw new IdentityError(
      "secret_too_large",
      `a secret value is at most ${limits.maxSecretValueBytes} bytes`,
    );
  return value;
}

/** Keeps secrets in process memory only; for tests and short-lived embedding. */
export class InMemorySecretStore implements SecretStore {
  readonly #entries = new Map<string, Buffer>();

  async read(key: string): Promise<Buffer | undefined> {
    const value = this.#entries.get(assertSecretKey(key));
    return value === undefined ? undefined : Buffer.from(value);
  }
  async write(key: string, value: Uint8Array): Promise<void> {
    this.#entries.set(assertSecretKey(key), Buffer.from(assertSecretValue(value)));
  }
  async delete(key: string): Promise<boolean> {
    return this.#entries.delete(assertSecretKey(key));
  }
  async list(prefix = ""): Promise<string[]> {
    return [...this.#entries.keys()].filter((k) => k.startsWith(prefix)).sort();
  }
}

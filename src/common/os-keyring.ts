/**
 * The OS keyring through `@napi-rs/keyring`, shared by the identity store (its key-encryption key) and
 * the vault (sealed blobs). On Linux the Secret Service store is forced: the library's default silently
 * falls back to kernel keyutils, which forgets everything at logout. Every call is bounded in time (a
 * desktop keyring may show a prompt and block), and a constructor throw means "unavailable".
 */

/** The subset of `@napi-rs/keyring`'s AsyncEntry we use; injectable for tests. */
export interface KeyringEntry {
  setSecret(secret: Uint8Array, signal?: AbortSignal): Promise<void>;
  getSecret(signal?: AbortSignal): Promise<ArrayLike<number> | null>;
  deleteCredential(signal?: AbortSignal): Promise<boolean>;
}
export type KeyringFactory = (service: string, account: string) => KeyringEntry | Promise<KeyringEntry>;

/** The real OS keyring. Loaded lazily so a platform without the native binary only loses this mode. */
export const osKeyring: KeyringFactory = async (service, account) => {
  const { AsyncEntry } = await import("@napi-rs/keyring");
  return new AsyncEntry(service, account, { linux: { store: "secret-service" } });
};

/** Runs keyring calls under one deadline; a late answer is ignored (the call cannot be cancelled for sure). */
export async function withKeyringDeadline<T>(
  ms: number,
  op: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(new Error(`keyring did not answer within ${ms} ms`));
    }, ms);
  });
  try {
    return await Promise.race([Promise.resolve().then(() => op(controller.signal)), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Copies a keyring answer into a Buffer and wipes the library's array. */
export function keyringBytes(value: ArrayLike<number>): Buffer {
  const bytes = Buffer.from(Array.from(value));
  if (Array.isArray(value)) value.fill(0);
  return bytes;
}

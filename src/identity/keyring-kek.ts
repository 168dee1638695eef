import { timingSafeEqual } from "node:crypto";
import { limits } from "../common/limits.js";
import { type Random, systemRandom } from "../common/random.js";

/**
 * The OS keyring as a home for a store's key-encryption key. On Linux the Secret Service store is forced:
 * `@napi-rs/keyring`'s default silently falls back to kernel keyutils, which forgets everything at
 * logout. Every call is bounded in time (a desktop keyring may show a prompt and block) and any failure,
 * including a constructor throw, means "unavailable".
 */

/** The subset of `@napi-rs/keyring`'s AsyncEntry we use; injectable for tests. */
export interface KeyringEntry {
  setSecret(secret: Uint8Array, signal?: AbortSignal): Promise<void>;
  getSecret(signal?: AbortSignal): Promise<ArrayLike<number> | null>;
  deleteCredential(signal?: AbortSignal): Promise<boolean>;
}
export type KeyringFactory = (service: string, account: string) => KeyringEntry | Promise<KeyringEntry>;

export const KEYRING_SERVICE = "palyra";

/** The real OS keyring. Loaded lazily so a platform without the native binary only loses this mode. */
export const osKeyring: KeyringFactory = async (service, account) => {
  const { AsyncEntry } = await import("@napi-rs/keyring");
  return new AsyncEntry(service, account, { linux: { store: "secret-service" } });
};

export interface KeyringAccess {
  keyring?: KeyringFactory;
  /** Upper bound for one keyring exchange, e.g. a whole probe round trip (default limits.keyringProbeTimeoutMs). */
  keyringTimeoutMs?: number;
}

/** Runs keyring calls with one deadline; a late answer is ignored (the call cannot be cancelled for sure). */
async function bounded<T>(ms: number, op: (signal: AbortSignal) => Promise<T>): Promise<T> {
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

function timeoutOf(access: KeyringAccess): number {
  return access.keyringTimeoutMs ?? limits.keyringProbeTimeoutMs;
}

function reasonOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

async function entryFor(access: KeyringAccess, account: string): Promise<KeyringEntry> {
  return (access.keyring ?? osKeyring)(KEYRING_SERVICE, account);
}

export type KeyringResult<T> = { ok: true; value: T } | { ok: false; reason: string };

/**
 * Stores `kek` under `account` and reads it back: the write/read round trip is the availability probe,
 * bounded as a whole. On failure the entry is removed on a best-effort basis, in the background.
 */
export async function storeKekInKeyring(
  access: KeyringAccess,
  account: string,
  kek: Buffer,
): Promise<KeyringResult<true>> {
  let touched = false;
  try {
    await bounded(timeoutOf(access), async (signal) => {
      const entry = await entryFor(access, account);
      touched = true;
      await entry.setSecret(kek, signal);
      const back = await entry.getSecret(signal);
      const bytes = back === null ? Buffer.alloc(0) : Buffer.from(Array.from(back));
      const same = bytes.length === kek.length && timingSafeEqual(bytes, kek);
      bytes.fill(0);
      if (!same) throw new Error("the keyring returned different bytes than were stored");
    });
    return { ok: true, value: true };
  } catch (err) {
    if (touched) void removeFromKeyring(access, account);
    return { ok: false, reason: reasonOf(err) };
  }
}

/** Loads the KEK stored under `account`; `value` is undefined when the keyring has no such entry. */
export async function loadKekFromKeyring(
  access: KeyringAccess,
  account: string,
): Promise<KeyringResult<Buffer | undefined>> {
  try {
    const value = await bounded(timeoutOf(access), async (signal) => {
      const back = await (await entryFor(access, account)).getSecret(signal);
      if (back === null) return undefined;
      const bytes = Buffer.from(Array.from(back));
      if (Array.isArray(back)) back.fill(0);
      return bytes;
    });
    return { ok: true, value };
  } catch (err) {
    return { ok: false, reason: reasonOf(err) };
  }
}

/** Best effort, never throws: used when a store creation or a probe is abandoned. */
export async function removeFromKeyring(access: KeyringAccess, account: string): Promise<void> {
  try {
    await bounded(timeoutOf(access), async (signal) =>
      (await entryFor(access, account)).deleteCredential(signal),
    );
  } catch {
    // the entry is orphaned, but it holds a key that protects nothing
  }
}

export type KeyringProbe = { available: true } | { available: false; reason: string };

/** Whether a keyring works here: a write/read/delete round trip on a throwaway entry. For `palyra doctor`. */
export async function probeKeyring(access: KeyringAccess & { random?: Random } = {}): Promise<KeyringProbe> {
  const random = access.random ?? systemRandom;
  const account = `probe:${random.bytes(8).toString("hex")}`;
  const result = await storeKekInKeyring(access, account, random.bytes(32));
  if (!result.ok) return { available: false, reason: result.reason };
  await removeFromKeyring(access, account);
  return { available: true };
}

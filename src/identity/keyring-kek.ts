import { timingSafeEqual } from "node:crypto";
import { limits } from "../common/limits.js";
import {
  withKeyringDeadline as bounded,
  type KeyringEntry,
  type KeyringFactory,
  keyringBytes,
  osKeyring,
} from "../common/os-keyring.js";
import { type Random, systemRandom } from "../common/random.js";

/**
 * The OS keyring (common/os-keyring.ts) as a home for a store's key-encryption key. Any failure,
 * including a timeout, means "unavailable".
 */

export type { KeyringEntry, KeyringFactory };

export const KEYRING_SERVICE = "palyra";

export interface KeyringAccess {
  keyring?: KeyringFactory;
  /** Upper bound for one keyring exchange, e.g. a whole probe round trip (default limits.keyringProbeTimeoutMs). */
  keyringTimeoutMs?: number;
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
      return back === null ? undefined : keyringBytes(back);
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

import { VaultError } from "../errors.js";

/**
 * One interface for every place a sealed blob can live. Backends see only sealed blobs (sealed-blob.ts)
 * under opaque random ids: never a value, a scope or a key name.
 */

export const BACKEND_KINDS = ["secret-service", "macos-keychain", "windows-dpapi", "encrypted-file"] as const;
export type BackendKind = (typeof BACKEND_KINDS)[number];

/** How well a backend protects the vault key and blobs at rest, from the user's point of view. */
export type Protection = "os-keyring" | "os-user-key" | "passphrase" | "key-file";

export interface BlobBackend {
  readonly kind: BackendKind;
  put(id: string, blob: Uint8Array): Promise<void>;
  /** The blob, or undefined when the backend holds nothing under `id`. */
  get(id: string): Promise<Buffer | undefined>;
  /** Idempotent: deleting a missing id succeeds. */
  delete(id: string): Promise<void>;
  /** Removes what the backend keeps besides blobs (a Keychain wrapping key), once nothing uses it. */
  forget?(): Promise<void>;
}

/** `pv_` value blobs, `vk_` the vault key, `pr_` probes: a prefix and 32 lowercase hex digits. */
const OBJECT_ID = /^(pv|vk|pr)_[0-9a-f]{32}$/;

export function assertObjectId(id: string): string {
  if (!OBJECT_ID.test(id)) throw new VaultError("backend_failed", "a blob id has the wrong shape");
  return id;
}

/** The OS store each platform offers (the first choice of auto-selection), if any. */
export function nativeBackendKind(platform: NodeJS.Platform): BackendKind | undefined {
  if (platform === "darwin") return "macos-keychain";
  if (platform === "win32") return "windows-dpapi";
  if (platform === "linux" || platform === "freebsd" || platform === "openbsd") return "secret-service";
  return undefined;
}

export function parseBackendKind(raw: string): BackendKind {
  const kind = raw.trim().toLowerCase().replace(/_/g, "-");
  if ((BACKEND_KINDS as readonly string[]).includes(kind)) return kind as BackendKind;
  throw new VaultError(
    "backend_unavailable",
    `unknown vault backend '${raw}' (one of: ${BACKEND_KINDS.join(", ")})`,
  );
}

export function describeFailure(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.split("\n")[0]!.slice(0, 300);
}

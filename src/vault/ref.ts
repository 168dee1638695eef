import { VaultError } from "./errors.js";
import { assertScope, MAX_SCOPE_BYTES } from "./scope.js";

/**
 * Secret keys and refs. A key is 1-128 bytes of `[a-z0-9._-]`; a ref is `<scope>/<key>`, split at the
 * first `/` (scopes cannot contain one), e.g. `global/openai_api_key`, `channel:slack:acct-1/bot_token`.
 */

export const MAX_KEY_BYTES = 128;
const KEY = /^[a-z0-9._-]+$/;

export interface VaultRef {
  /** Canonical scope string, e.g. `principal:user:ops`. */
  scope: string;
  key: string;
}

export function assertKey(raw: unknown): string {
  if (typeof raw !== "string") throw new VaultError("invalid_key", "a secret key is a string");
  if (raw.length === 0) throw new VaultError("invalid_key", "a secret key cannot be empty");
  if (raw.length > MAX_KEY_BYTES)
    throw new VaultError("invalid_key", `a secret key is at most ${MAX_KEY_BYTES} bytes`);
  if (!KEY.test(raw))
    throw new VaultError(
      "invalid_key",
      "a secret key may only contain lowercase letters, digits, '.', '_' and '-'",
    );
  return raw;
}

export function parseRef(raw: unknown): VaultRef {
  if (typeof raw !== "string") throw new VaultError("invalid_ref", "a secret ref is a string");
  if (Buffer.byteLength(raw, "utf8") > MAX_SCOPE_BYTES + 1 + MAX_KEY_BYTES)
    throw new VaultError("invalid_ref", "a secret ref is too long");
  const slash = raw.indexOf("/");
  if (slash < 0)
    throw new VaultError("invalid_ref", "a secret ref is <scope>/<key>, for example global/openai_api_key");
  return { scope: assertScope(raw.slice(0, slash)), key: assertKey(raw.slice(slash + 1)) };
}

export function formatRef(ref: VaultRef): string {
  return `${ref.scope}/${ref.key}`;
}

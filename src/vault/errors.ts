import { defineErrorFamily, ExitCode } from "../common/errors.js";

/**
 * Errors of the vault. Messages name scopes, keys and backends, never values or key material.
 * - `invalid_scope`, `invalid_key`, `invalid_ref`, `value_too_large`: bad input (exit 2).
 * - `not_found`: no secret under that name.
 * - `backend_unavailable`: the chosen store cannot be used here (no Secret Service, wrong platform).
 * - `backend_mismatch`: PALYRA_VAULT_BACKEND names another backend than the vault uses (migrate instead).
 * - `backend_failed`: the store answered with an error (a keyring refused, a file could not be written).
 * - `vault_locked`: the vault key cannot be unlocked (passphrase missing or wrong, key file unreadable).
 * - `wrong_vault_key`: a sealed blob belongs to another vault key (a restored or swapped directory).
 * - `blob_corrupt`: a sealed blob failed authentication (tampered with, or moved to another name).
 * - `scope_denied`: the caller is not entitled to that scope (daemon API edge).
 * - `busy`: another writer held the vault longer than the wait allows.
 */
export class VaultError extends defineErrorFamily("vault", {
  invalid_scope: ExitCode.usage,
  invalid_key: ExitCode.usage,
  invalid_ref: ExitCode.usage,
  value_too_large: ExitCode.usage,
  not_found: ExitCode.notFound,
  backend_unavailable: ExitCode.unsupported,
  backend_mismatch: ExitCode.precondition,
  backend_failed: ExitCode.internal,
  vault_locked: ExitCode.authentication,
  wrong_vault_key: ExitCode.precondition,
  blob_corrupt: ExitCode.precondition,
  scope_denied: ExitCode.denied,
  busy: ExitCode.precondition,
}) {}

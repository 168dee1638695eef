import { defineErrorFamily, ExitCode } from "../common/errors.js";

/**
 * Pairing errors. Several deliberately share one message: an unknown, expired, used or dead code all
 * read "pairing code is not valid", so a caller learns nothing about which codes exist.
 */
export class PairingError extends defineErrorFamily("pairing", {
  invalid_input: ExitCode.usage,
  code_invalid: ExitCode.precondition,
  kind_mismatch: ExitCode.precondition,
  rate_limited: ExitCode.denied,
  session_invalid: ExitCode.precondition,
  confirmation_failed: ExitCode.authentication,
  signature_invalid: ExitCode.authentication,
  csr_invalid: ExitCode.usage,
  device_revoked: ExitCode.denied,
  identity_mismatch: ExitCode.denied,
  request_not_found: ExitCode.notFound,
  already_decided: ExitCode.precondition,
  request_expired: ExitCode.precondition,
  gateway_unverified: ExitCode.authentication,
  rejected: ExitCode.denied,
}) {}

export const CODE_NOT_VALID = "pairing code is not valid";

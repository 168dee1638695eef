import { defineErrorFamily, ExitCode } from "../common/errors.js";

/**
 * Errors of the crypto layer. Messages never carry key material, shares or confirmation values.
 * - `envelope_*`, `invalid_key`: authenticated envelopes (envelope.ts).
 * - `invalid_point`: a SPAKE2+ share or verifier point that is not a valid uncompressed P-256 point
 *   (wrong length or prefix, off the curve, the identity), or a computed point that is the identity.
 * - `invalid_scalar`: a stored scalar that is not 32 bytes or not below the group order.
 * - `confirmation_failed`: a SPAKE2+ key confirmation MAC did not match.
 * - `kdf_failed`: recorded scrypt parameters that scrypt refuses (corrupt or hostile metadata).
 */
export class CryptoError extends defineErrorFamily("crypto", {
  envelope_malformed: ExitCode.precondition,
  envelope_auth_failed: ExitCode.precondition,
  invalid_key: ExitCode.usage,
  invalid_point: ExitCode.authentication,
  invalid_scalar: ExitCode.precondition,
  confirmation_failed: ExitCode.authentication,
  kdf_failed: ExitCode.precondition,
}) {}

import { defineErrorFamily, ExitCode } from "../common/errors.js";

/** Errors of the identity domain: CA, certificates, CSRs, device identity, secret store, registry. */
export class IdentityError extends defineErrorFamily("identity", {
  invalid_csr: ExitCode.usage,
  unsupported_key: ExitCode.unsupported,
  invalid_certificate: ExitCode.usage,
  invalid_lifetime: ExitCode.usage,
  /** A DNS name, IP address or device id that cannot go into a certificate's subject or SANs. */
  invalid_san: ExitCode.usage,
  /** A private key that cannot be read (not PKCS#8 PEM, corrupt). */
  invalid_key: ExitCode.usage,
  ca_missing: ExitCode.precondition,
  ca_mismatch: ExitCode.precondition,
  secret_store_locked: ExitCode.authentication,
  secret_store_corrupt: ExitCode.precondition,
  secret_store_unavailable: ExitCode.unsupported,
  invalid_secret_key: ExitCode.usage,
  secret_too_large: ExitCode.usage,
  identity_missing: ExitCode.notFound,
  device_not_found: ExitCode.notFound,
  device_revoked: ExitCode.denied,
  /** A device row that kept changing under a compare-and-set (several gateways writing at once). */
  conflict: ExitCode.precondition,
  identity_mismatch: ExitCode.denied,
  /** A renewal not signed by the device's identity key. */
  signature_invalid: ExitCode.authentication,
  invalid_input: ExitCode.usage,
  /** A role that does not exist, or one the device's client kind may not hold. */
  invalid_role: ExitCode.usage,
  /** Recovery asked for by a device whose certificate is fine. */
  nothing_to_recover: ExitCode.precondition,
  /** Recovery past the window (or disabled): the device must pair again. */
  recovery_refused: ExitCode.denied,
}) {}

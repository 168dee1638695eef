import { defineErrorFamily, ExitCode } from "../../common/errors.js";

/** Errors of the QUIC transport; the codes are also the `QuicError.code` values on the wire. */
export class QuicTransportError extends defineErrorFamily("quic", {
  unsupported_version: ExitCode.unsupported,
  unknown_method: ExitCode.unsupported,
  bad_request: ExitCode.usage,
  frame_too_large: ExitCode.usage,
  permission_denied: ExitCode.denied,
  unauthenticated: ExitCode.authentication,
  unavailable: ExitCode.unreachable,
  timeout: ExitCode.unreachable,
  busy: ExitCode.unreachable,
  unsupported_platform: ExitCode.unsupported,
  internal: ExitCode.internal,
}) {}

export type QuicErrorCode = keyof typeof QuicTransportError.codes;

export function isQuicErrorCode(code: string): code is QuicErrorCode {
  return Object.hasOwn(QuicTransportError.codes, code);
}

import { defineErrorFamily, ExitCode } from "../../common/errors.js";

export class NodeRuntimeError extends defineErrorFamily("node", {
  invalid_input: ExitCode.usage,
  node_offline: ExitCode.precondition,
  capability_unknown: ExitCode.notFound,
  payload_too_large: ExitCode.usage,
  queue_full: ExitCode.precondition,
  not_found: ExitCode.notFound,
  /** A session message names another device than the connection's certificate. */
  permission_denied: ExitCode.denied,
  /** A session that does not start with Hello. */
  protocol_violation: ExitCode.usage,
  /** The node did not do what it was asked (renew) in time. */
  renewal_timeout: ExitCode.unreachable,
}) {}

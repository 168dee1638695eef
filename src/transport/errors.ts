import { defineErrorFamily, ExitCode } from "../common/errors.js";

/** Errors of the transport layer itself (listeners, connections), as opposed to RPC statuses. */
export class TransportError extends defineErrorFamily("transport", {
  /** A lifecycle call in the wrong state (listen twice, add a service after listen). */
  invalid_state: ExitCode.internal,
  /** Bad configuration handed to a transport (missing policy, unsupported method kind). */
  invalid_config: ExitCode.usage,
  /** The listener could not bind (address in use, permission). */
  listen_failed: ExitCode.unreachable,
}) {}

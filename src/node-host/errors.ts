import { defineErrorFamily, ExitCode } from "../common/errors.js";

/** Errors of the node host: renewal, the background process and its files. */
export class NodeHostError extends defineErrorFamily("node-host", {
  /** The gateway's answer to a renewal failed our checks; the old certificate stays in use. */
  renewal_rejected: ExitCode.denied,
  not_installed: ExitCode.precondition,
  not_paired: ExitCode.precondition,
  already_running: ExitCode.precondition,
  not_running: ExitCode.precondition,
  start_failed: ExitCode.internal,
  invalid_config: ExitCode.usage,
  /** The gateway says this device may not come back (revoked, removed, past recovery): re-pair. */
  device_revoked: ExitCode.denied,
  needs_pairing: ExitCode.denied,
}) {}

import { defineErrorFamily, ExitCode } from "../common/errors.js";

export class DaemonError extends defineErrorFamily("daemon", {
  invalid_config: ExitCode.usage,
  already_running: ExitCode.precondition,
  bind_failed: ExitCode.unreachable,
  unsafe_bind: ExitCode.denied,
  not_running: ExitCode.unreachable,
  state_root: ExitCode.precondition,
  rate_limited: ExitCode.denied,
  /** A backup file that is not one, or is damaged; a state root too large to back up. */
  backup_invalid: ExitCode.usage,
  /** A backup that does not open with the passphrase given. */
  backup_locked: ExitCode.authentication,
}) {}

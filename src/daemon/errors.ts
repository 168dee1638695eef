import { defineErrorFamily, ExitCode } from "../common/errors.js";

export class DaemonError extends defineErrorFamily("daemon", {
  invalid_config: ExitCode.usage,
  already_running: ExitCode.precondition,
  bind_failed: ExitCode.unreachable,
  unsafe_bind: ExitCode.denied,
  not_running: ExitCode.unreachable,
  state_root: ExitCode.precondition,
  rate_limited: ExitCode.denied,
}) {}

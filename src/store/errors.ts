import { defineErrorFamily, ExitCode } from "../common/errors.js";

export class StoreError extends defineErrorFamily("store", {
  open_failed: ExitCode.internal,
  schema_too_new: ExitCode.unsupported,
  migration_failed: ExitCode.internal,
  conflict: ExitCode.precondition,
  not_found: ExitCode.notFound,
}) {}

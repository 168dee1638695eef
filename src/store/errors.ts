import { defineErrorFamily, ExitCode } from "../common/errors.js";

export class StoreError extends defineErrorFamily("store", {
  open_failed: ExitCode.internal,
  /** The shared database cannot be reached (down, refused the login, timed out). */
  unavailable: ExitCode.unreachable,
  /** A statement the database refused for another reason. */
  query_failed: ExitCode.internal,
  schema_too_new: ExitCode.unsupported,
  migration_failed: ExitCode.internal,
  conflict: ExitCode.precondition,
  not_found: ExitCode.notFound,
}) {}

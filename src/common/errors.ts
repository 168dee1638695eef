/**
 * One error class with a stable `code`, a CLI exit code and a `cause`. Each domain derives its own
 * family (IdentityError, StoreError, ...) whose codes map to exit codes in one table, so the CLI never
 * guesses how to exit. Messages must never contain secrets: they reach logs and terminals.
 */

/** CLI exit codes (DESIGN section 10). */
export const ExitCode = {
  ok: 0,
  internal: 1,
  usage: 2,
  authentication: 3,
  unreachable: 4,
  unsupported: 5,
  denied: 6,
  precondition: 7,
  notFound: 8,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export class PalyraError extends Error {
  readonly domain: string;
  readonly code: string;
  readonly exitCode: ExitCode;

  constructor(
    domain: string,
    code: string,
    message: string,
    exitCode: ExitCode,
    options?: { cause?: unknown },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.domain = domain;
    this.code = code;
    this.exitCode = exitCode;
  }

  override get name(): string {
    return "PalyraError";
  }

  /** Machine-readable form for `--json` output and API bodies. */
  toJSON(): { domain: string; code: string; message: string } {
    return { domain: this.domain, code: this.code, message: this.message };
  }
}

/** Builds a domain error family from its code table. */
export function defineErrorFamily<const T extends Record<string, ExitCode>>(domain: string, codes: T) {
  return class DomainError extends PalyraError {
    declare readonly code: keyof T & string;
    constructor(code: keyof T & string, message: string, options?: { cause?: unknown }) {
      super(domain, code, message, codes[code] as ExitCode, options);
    }
    static readonly codes = codes;
  };
}

const COMMON_CODES = {
  invalid_input: ExitCode.usage,
  internal: ExitCode.internal,
  not_found: ExitCode.notFound,
  precondition: ExitCode.precondition,
  io: ExitCode.internal,
  denied: ExitCode.denied,
} as const;

/** Errors of the common layer: input validation, file I/O. */
export class CommonError extends defineErrorFamily("common", COMMON_CODES) {}

/** Wraps anything thrown into a PalyraError, keeping the original as `cause`. */
export function asPalyraError(err: unknown): PalyraError {
  if (err instanceof PalyraError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new CommonError("internal", `internal error: ${message}`, { cause: err });
}

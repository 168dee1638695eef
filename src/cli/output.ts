import { asPalyraError, CommonError, ExitCode } from "../common/errors.js";
import { noSpaceError } from "../common/storage-errors.js";

export interface OutputOptions {
  json?: boolean;
}

/** Writes command output: JSON when asked, else aligned `key  value` lines. */
export function printResult(
  data: Record<string, unknown>,
  options: OutputOptions,
  out = process.stdout,
): void {
  if (options.json) {
    out.write(`${JSON.stringify(data, null, 2)}\n`);
    return;
  }
  out.write(formatTable(data));
}

export function formatTable(data: Record<string, unknown>, indent = ""): string {
  const entries = Object.entries(data).filter(([, v]) => v !== undefined);
  const width = Math.max(0, ...entries.map(([k]) => k.length));
  let text = "";
  for (const [key, value] of entries) {
    const label = key.replace(/_/g, " ");
    if (value && typeof value === "object" && !Array.isArray(value)) {
      text += `${indent}${label}\n${formatTable(value as Record<string, unknown>, `${indent}  `)}`;
    } else {
      const shown = Array.isArray(value) ? value.join(", ") || "-" : String(value);
      text += `${indent}${label.padEnd(width)}  ${shown}\n`;
    }
  }
  return text;
}

/**
 * One line `error: <message>` (or a JSON envelope), and the error's exit code. A full disk is said as
 * such wherever it happened, never as an internal error.
 */
export function reportError(err: unknown, options: OutputOptions, errOut = process.stderr): number {
  const error = noSpaceError(err) ?? asPalyraError(err);
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ error: error.toJSON() })}\n`);
  } else {
    errOut.write(`error: ${error.message}\n`);
  }
  if (error.code === "internal" && process.env.PALYRA_DEBUG)
    errOut.write(`${(error.cause as Error)?.stack ?? ""}\n`);
  return error.exitCode;
}

export function usageError(message: string): CommonError {
  return new CommonError("invalid_input", message);
}

export { ExitCode };

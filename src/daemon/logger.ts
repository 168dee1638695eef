import pino, { type Logger } from "pino";
import { LOG_REDACT_PATHS } from "../common/redaction.js";

export type { Logger };

/** JSON logs on stderr (stdout stays for command output); known secret fields are censored. */
export function createLogger(level: string, destination: NodeJS.WritableStream = process.stderr): Logger {
  return pino(
    {
      level,
      base: { service: "palyrad" },
      redact: { paths: LOG_REDACT_PATHS, censor: "[redacted]" },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    pino.destination({ dest: destination === process.stderr ? 2 : 1, sync: true }),
  );
}

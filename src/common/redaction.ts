import { inspect } from "node:util";

export const REDACTED = "[redacted]";

/**
 * Holds a secret value so that printing, logging or JSON-encoding the holder never shows it. The value
 * is reachable only through `expose()`, which makes every use of a secret easy to find in review.
 */
export class Secret<T> {
  readonly #value: T;
  constructor(value: T) {
    this.#value = value;
  }
  expose(): T {
    return this.#value;
  }
  toString(): string {
    return REDACTED;
  }
  toJSON(): string {
    return REDACTED;
  }
  [inspect.custom](): string {
    return `Secret(${REDACTED})`;
  }
}

/** Paths pino must censor in every log record (defence in depth: secrets should never be logged). */
export const LOG_REDACT_PATHS = [
  "pin",
  "*.pin",
  "secret",
  "*.secret",
  "token",
  "*.token",
  "password",
  "*.password",
  "passphrase",
  "*.passphrase",
  "privateKey",
  "*.privateKey",
  "key",
  "*.key",
  "authorization",
  "*.authorization",
  "req.headers.authorization",
  "req.headers.cookie",
];

/** Replaces query parameters that may carry secrets, so URLs can be logged. */
export function redactUrl(
  url: string,
  secretParams: readonly string[] = ["s", "secret", "token", "pin"],
): string {
  try {
    const parsed = new URL(url);
    for (const name of secretParams)
      if (parsed.searchParams.has(name)) parsed.searchParams.set(name, REDACTED);
    return parsed.toString();
  } catch {
    return REDACTED;
  }
}

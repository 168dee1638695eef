import { writeFileAtomic } from "../common/atomic-file.js";
import { CommonError } from "../common/errors.js";
import type { Random } from "../common/random.js";
import { Secret } from "../common/redaction.js";
import { readSecretFile } from "../common/secret-file.js";
import { constantTimeEqual } from "../crypto/constant-time.js";

const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;
/** The token and its newline, with room for a CRLF an editor may have added. */
const MAX_TOKEN_FILE_BYTES = 64;

/**
 * The admin bearer token: created at first start, kept 0600 in the state root, compared in constant
 * time. An existing file is read under the one rule for secret files (common/secret-file.ts) and is
 * never replaced: a token file others can read, or one that is not a token, stops the daemon (and the
 * CLI) with the file named and the fix, instead of being silently kept or silently re-minted.
 */
export function loadOrCreateAdminToken(path: string, random: Random): Secret<string> {
  const existing = readAdminToken(path);
  if (existing) return existing;
  const token = random.bytes(32).toString("base64url");
  writeFileAtomic(path, `${token}\n`, 0o600);
  return new Secret(token);
}

/**
 * The token, or undefined when the file does not exist. Throws (exit 7) when the file breaks the
 * secret-file rule or is malformed; the message names the file, never its content.
 */
export function readAdminToken(path: string): Secret<string> | undefined {
  let raw: Buffer | undefined;
  try {
    raw = readSecretFile(path, MAX_TOKEN_FILE_BYTES);
  } catch (err) {
    if ((err as CommonError).code === "invalid_input") throw malformed(path);
    throw err;
  }
  if (raw === undefined) return undefined;
  const token = raw.toString("utf8").trim();
  if (!TOKEN_SHAPE.test(token)) throw malformed(path);
  return new Secret(token);
}

function malformed(path: string): CommonError {
  return new CommonError(
    "precondition",
    `the admin token file ${path} is malformed (want one line of 43 base64url characters); remove it and restart the daemon to have a new token made`,
  );
}

/** True when an Authorization header carries the token. */
export function bearerMatches(header: string | undefined, token: Secret<string>): boolean {
  if (!header?.startsWith("Bearer ")) return false;
  return constantTimeEqual(header.slice(7).trim(), token.expose());
}

import { readFileSync } from "node:fs";
import { writeFileAtomic } from "../common/atomic-file.js";
import type { Random } from "../common/random.js";
import { Secret } from "../common/redaction.js";
import { constantTimeEqual } from "../crypto/constant-time.js";

const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;

/** The admin bearer token: created at first start, kept 0600 in the state root, compared in constant time. */
export function loadOrCreateAdminToken(path: string, random: Random): Secret<string> {
  const existing = readAdminToken(path);
  if (existing) return existing;
  const token = random.bytes(32).toString("base64url");
  writeFileAtomic(path, `${token}\n`, 0o600);
  return new Secret(token);
}

export function readAdminToken(path: string): Secret<string> | undefined {
  try {
    const token = readFileSync(path, "utf8").trim();
    return TOKEN_SHAPE.test(token) ? new Secret(token) : undefined;
  } catch {
    return undefined;
  }
}

/** True when an Authorization header carries the token. */
export function bearerMatches(header: string | undefined, token: Secret<string>): boolean {
  if (!header?.startsWith("Bearer ")) return false;
  return constantTimeEqual(header.slice(7).trim(), token.expose());
}

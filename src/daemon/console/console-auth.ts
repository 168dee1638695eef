import type { IncomingMessage, ServerResponse } from "node:http";
import type { TLSSocket } from "node:tls";
import { z } from "zod";
import { limits } from "../../common/limits.js";
import type { FixedWindowLimiter } from "../../common/rate-limiter.js";
import type { Secret } from "../../common/redaction.js";
import { constantTimeEqual } from "../../crypto/constant-time.js";
import { readJson, sendJson } from "../admin-api.js";
import { bearerMatches } from "../admin-token.js";
import {
  type ActiveSession,
  type ConsoleSessions,
  CSRF_HEADER,
  clearSessionCookie,
  sessionCookie,
  sessionSetCookie,
} from "./sessions.js";

/**
 * Who is calling the admin API: the local CLI with the bearer token, or the console with its session
 * cookie. With the cookie, every request that changes something must carry the session's CSRF token
 * in a header, and a browser's Origin (when sent) must be this server.
 *
 *   POST /console/login    {token} -> cookie + {csrf, expires_at}   (rate limited per address)
 *   GET  /console/session  -> {csrf, expires_at} for a live cookie (after a page reload)
 *   POST /console/logout
 */

export interface ConsoleAuthDeps {
  token: Secret<string>;
  sessions: ConsoleSessions;
  logins: FixedWindowLimiter;
}

export type Caller = { actor: "admin"; session?: undefined } | { actor: "console"; session: ActiveSession };

const loginBody = z.object({ token: z.string().max(256) }).strict();
const SAFE_METHODS = new Set(["GET", "HEAD"]);

function isSecure(req: IncomingMessage): boolean {
  return Boolean((req.socket as TLSSocket).encrypted);
}

/** A browser's Origin, when present, must name this very server (defence in depth beside SameSite). */
function sameOrigin(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}

/** Authenticates an API request; on failure the answer (401 or 403) is already sent. */
export function authenticate(
  req: IncomingMessage,
  res: ServerResponse,
  deps: ConsoleAuthDeps,
): Caller | undefined {
  if (bearerMatches(req.headers.authorization, deps.token)) return { actor: "admin" };
  const session = deps.sessions.touch(sessionCookie(req.headers.cookie));
  if (!session) {
    sendJson(res, 401, { error: { code: "unauthenticated", message: "missing or wrong admin token" } });
    return undefined;
  }
  if (
    !SAFE_METHODS.has(req.method ?? "GET") &&
    (!deps.sessions.csrfMatches(session, req.headers[CSRF_HEADER]) || !sameOrigin(req))
  ) {
    sendJson(res, 403, {
      error: { code: "csrf", message: `a change needs the ${CSRF_HEADER} header of this session` },
    });
    return undefined;
  }
  return { actor: "console", session };
}

export async function handleConsoleAuth(
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  deps: ConsoleAuthDeps,
): Promise<boolean> {
  if (url.pathname === "/console/login" && req.method === "POST") {
    if (!sameOrigin(req)) {
      sendJson(res, 403, { error: { code: "csrf", message: "login from another origin" } });
      return true;
    }
    if (!deps.logins.take(req.socket.remoteAddress ?? "")) {
      sendJson(res, 429, {
        error: { code: "rate_limited", message: "too many login attempts; wait a minute" },
      });
      return true;
    }
    const parsed = loginBody.safeParse(await readJson(req, 1024).catch(() => undefined));
    if (!parsed.success || !constantTimeEqual(parsed.data.token.trim(), deps.token.expose())) {
      sendJson(res, 401, { error: { code: "unauthenticated", message: "wrong admin token" } });
      return true;
    }
    const issued = deps.sessions.create();
    res.setHeader("set-cookie", sessionSetCookie(issued.id, limits.consoleSessionMaxMs, isSecure(req)));
    sendJson(res, 200, { csrf: issued.csrf, expires_at: new Date(issued.expiresAt).toISOString() });
    return true;
  }
  if (url.pathname === "/console/session" && req.method === "GET") {
    const session = deps.sessions.touch(sessionCookie(req.headers.cookie));
    if (!session) sendJson(res, 401, { error: { code: "unauthenticated", message: "not signed in" } });
    else sendJson(res, 200, { csrf: session.csrf, expires_at: new Date(session.expiresAt).toISOString() });
    return true;
  }
  if (url.pathname === "/console/logout" && req.method === "POST") {
    const caller = authenticate(req, res, deps);
    if (!caller) return true;
    deps.sessions.end(sessionCookie(req.headers.cookie));
    res.setHeader("set-cookie", clearSessionCookie());
    sendJson(res, 200, { signed_out: true });
    return true;
  }
  return false;
}

import type { IncomingMessage, ServerResponse } from "node:http";
import type { TLSSocket } from "node:tls";
import { z } from "zod";
import { limits } from "../../common/limits.js";
import type { SlidingWindowLimiter } from "../../common/rate-limiter.js";
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
 * cookie and the session's CSRF token in a header, on every request, reads included. The cookie alone
 * is worth nothing: browsers send cookies to every port of a host, so a page served from another port
 * of this machine gets the cookie too; it cannot get the CSRF token, which the page keeps in its own
 * origin's sessionStorage and which no endpoint hands out again. A browser's Origin, when sent, must
 * be this server.
 *
 *   POST /console/login    {token} -> cookie + {csrf, expires_at}   (rate limited per address)
 *   GET  /console/session  (cookie + CSRF) -> {expires_at}: is this tab still signed in?
 *   POST /console/logout
 *
 * Requests the page makes by itself (refreshes, the event stream) say so in `x-palyra-background` and
 * do not count as activity, so an unattended tab still reaches the idle limit.
 */

export interface ConsoleAuthDeps {
  token: Secret<string>;
  sessions: ConsoleSessions;
  logins: SlidingWindowLimiter;
}

export type Caller = { actor: "admin"; session?: undefined } | { actor: "console"; session: ActiveSession };

const loginBody = z.object({ token: z.string().max(256) }).strict();
export const BACKGROUND_HEADER = "x-palyra-background";

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
  const activity = req.headers[BACKGROUND_HEADER] !== "1";
  const session = deps.sessions.touch(sessionCookie(req.headers.cookie), activity);
  if (!session) {
    sendJson(res, 401, { error: { code: "unauthenticated", message: "missing or wrong admin token" } });
    return undefined;
  }
  if (!deps.sessions.csrfMatches(session, req.headers[CSRF_HEADER]) || !sameOrigin(req)) {
    sendJson(res, 403, {
      error: { code: "csrf", message: `a console request needs the ${CSRF_HEADER} header of its session` },
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
    const caller = authenticate(req, res, deps);
    if (caller?.session) sendJson(res, 200, { expires_at: new Date(caller.session.expiresAt).toISOString() });
    else if (caller)
      sendJson(res, 400, { error: { code: "invalid_input", message: "not a console session" } });
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

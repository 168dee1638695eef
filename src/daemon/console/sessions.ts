import { createHash } from "node:crypto";
import type { Clock } from "../../common/clock.js";
import { limits } from "../../common/limits.js";
import type { Random } from "../../common/random.js";
import { constantTimeEqual } from "../../crypto/constant-time.js";

/**
 * Console sessions: the admin token is exchanged once for a random session id (an HttpOnly,
 * SameSite=Strict cookie) and a CSRF token the page sends as a header with every change. Kept in memory
 * (a daemon restart signs everyone out) and keyed by the SHA-256 of the id, so the table never holds a
 * usable cookie. Sessions end after 30 idle minutes or 12 hours, whichever comes first.
 */

export const SESSION_COOKIE = "palyra_console";
export const CSRF_HEADER = "x-palyra-csrf";

interface SessionRecord {
  csrf: string;
  createdAt: number;
  lastSeenAt: number;
}

export interface IssuedSession {
  id: string;
  csrf: string;
  expiresAt: number;
}

export interface ActiveSession {
  csrf: string;
  expiresAt: number;
}

const digest = (id: string) => createHash("sha256").update(id).digest("hex");

export class ConsoleSessions {
  readonly #clock: Clock;
  readonly #random: Random;
  readonly #sessions = new Map<string, SessionRecord>();

  constructor(clock: Clock, random: Random) {
    this.#clock = clock;
    this.#random = random;
  }

  create(): IssuedSession {
    const now = this.#clock.now();
    this.#sweep(now);
    while (this.#sessions.size >= limits.consoleMaxSessions) {
      const oldest = this.#sessions.keys().next().value as string;
      this.#sessions.delete(oldest);
    }
    const id = this.#random.bytes(32).toString("base64url");
    const csrf = this.#random.bytes(32).toString("base64url");
    this.#sessions.set(digest(id), { csrf, createdAt: now, lastSeenAt: now });
    return { id, csrf, expiresAt: this.#expiry({ csrf, createdAt: now, lastSeenAt: now }) };
  }

  /** The live session for a cookie value (counted as activity unless told otherwise); undefined if none. */
  touch(id: string | undefined, activity = true): ActiveSession | undefined {
    if (!id || !/^[A-Za-z0-9_-]{43}$/.test(id)) return undefined;
    const key = digest(id);
    const record = this.#sessions.get(key);
    if (!record) return undefined;
    const now = this.#clock.now();
    if (now >= this.#expiry(record)) {
      this.#sessions.delete(key);
      return undefined;
    }
    if (activity) record.lastSeenAt = now;
    return { csrf: record.csrf, expiresAt: this.#expiry(record) };
  }

  /** Whether a cookie's session is still live, without counting this as activity. */
  alive(id: string | undefined): boolean {
    if (!id) return false;
    const record = this.#sessions.get(digest(id));
    return record !== undefined && this.#clock.now() < this.#expiry(record);
  }

  csrfMatches(session: ActiveSession, header: string | string[] | undefined): boolean {
    return typeof header === "string" && constantTimeEqual(header, session.csrf);
  }

  end(id: string | undefined): void {
    if (id) this.#sessions.delete(digest(id));
  }

  #expiry(record: SessionRecord): number {
    return Math.min(
      record.lastSeenAt + limits.consoleSessionIdleMs,
      record.createdAt + limits.consoleSessionMaxMs,
    );
  }

  #sweep(now: number): void {
    for (const [key, record] of this.#sessions) if (now >= this.#expiry(record)) this.#sessions.delete(key);
  }
}

/** The session cookie's value from a Cookie header. */
export function sessionCookie(header: string | undefined): string | undefined {
  for (const part of (header ?? "").split(";")) {
    const [name, ...value] = part.trim().split("=");
    if (name === SESSION_COOKIE) return value.join("=");
  }
  return undefined;
}

export function sessionSetCookie(id: string, maxAgeMs: number, secure: boolean): string {
  return `${SESSION_COOKIE}=${id}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${Math.floor(maxAgeMs / 1000)}${secure ? "; Secure" : ""}`;
}

export function clearSessionCookie(): string {
  return `${SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`;
}

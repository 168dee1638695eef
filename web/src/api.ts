/**
 * The console's only door to the daemon: same-origin fetches with the session cookie (HttpOnly, set at
 * sign-in) and, on every change, the session's CSRF token in a header. The admin token is sent once,
 * in the sign-in request body, and is kept nowhere.
 */

let csrf: string | null = null;
let onSignedOut: () => void = () => {};

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export function whenSignedOut(callback: () => void): void {
  onSignedOut = callback;
}

async function parse<T>(res: Response): Promise<T> {
  const text = await res.text();
  const body = text ? (JSON.parse(text) as unknown) : {};
  if (!res.ok) {
    const error = (body as { error?: { code?: string; message?: string } }).error ?? {};
    if (res.status === 401) {
      csrf = null;
      onSignedOut();
    }
    throw new ApiError(res.status, error.code ?? "error", error.message ?? `HTTP ${res.status}`);
  }
  return body as T;
}

export async function api<T>(
  method: "GET" | "POST" | "PUT" | "DELETE",
  path: string,
  body?: unknown,
): Promise<T> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers["content-type"] = "application/json";
  if (method !== "GET" && csrf) headers["x-palyra-csrf"] = csrf;
  const res = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    cache: "no-store",
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return parse<T>(res);
}

export async function signIn(token: string): Promise<void> {
  const res = await fetch("/console/login", {
    method: "POST",
    headers: { "content-type": "application/json" },
    credentials: "same-origin",
    body: JSON.stringify({ token }),
  });
  const session = await parse<{ csrf: string }>(res).catch((err: ApiError) => {
    throw err.status === 401
      ? new ApiError(401, "unauthenticated", "That is not this gateway's admin token.")
      : err;
  });
  csrf = session.csrf;
}

/** After a reload: the cookie may still hold a live session; its CSRF token comes back from here. */
export async function resumeSession(): Promise<boolean> {
  const res = await fetch("/console/session", { credentials: "same-origin", cache: "no-store" });
  if (!res.ok) return false;
  csrf = ((await res.json()) as { csrf: string }).csrf;
  return true;
}

export async function signOut(): Promise<void> {
  await api("POST", "/console/logout").catch(() => {});
  csrf = null;
  onSignedOut();
}

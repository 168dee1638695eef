/**
 * The console's only door to the daemon: same-origin fetches with the session cookie (HttpOnly, set at
 * sign-in) and, on every request, the session's CSRF token in a header. The token lives in this tab's
 * sessionStorage, which browsers keep per origin, port included: a page from another port of this host
 * gets the cookie but never the token. The admin token is sent once, in the sign-in request body, and
 * is kept nowhere.
 */

const CSRF_KEY = "palyra.csrf";
let csrf: string | null = sessionStorage.getItem(CSRF_KEY);

function setCsrf(value: string | null): void {
  csrf = value;
  if (value === null) sessionStorage.removeItem(CSRF_KEY);
  else sessionStorage.setItem(CSRF_KEY, value);
}

/** Headers every request carries; `background` marks refreshes the page makes by itself. */
export function sessionHeaders(background = false): Record<string, string> {
  return {
    ...(csrf ? { "x-palyra-csrf": csrf } : {}),
    ...(background ? { "x-palyra-background": "1" } : {}),
  };
}
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
    if (res.status === 401 || (res.status === 403 && error.code === "csrf")) {
      setCsrf(null);
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
  options: { background?: boolean } = {},
): Promise<T> {
  const headers: Record<string, string> = sessionHeaders(options.background);
  if (body !== undefined) headers["content-type"] = "application/json";
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
  setCsrf(session.csrf);
}

/**
 * Tabs of this console (same origin, port included) share the token over a BroadcastChannel, so a new
 * tab joins the session without signing in again; another port's page cannot join the channel.
 */
const channel = typeof BroadcastChannel === "undefined" ? null : new BroadcastChannel("palyra-console");
channel?.addEventListener("message", (event: MessageEvent) => {
  const message = event.data as { ask?: true; csrf?: string; signedOut?: true };
  if (message.ask && csrf) channel.postMessage({ csrf });
  if (message.signedOut && csrf) {
    setCsrf(null);
    onSignedOut();
  }
});

function askOtherTabs(waitMs = 300): Promise<string | null> {
  if (!channel) return Promise.resolve(null);
  return new Promise((resolve) => {
    const onMessage = (event: MessageEvent) => {
      const token = (event.data as { csrf?: string }).csrf;
      if (typeof token !== "string") return;
      clearTimeout(timer);
      channel.removeEventListener("message", onMessage);
      resolve(token);
    };
    const timer = setTimeout(() => {
      channel.removeEventListener("message", onMessage);
      resolve(null);
    }, waitMs);
    channel.addEventListener("message", onMessage);
    channel.postMessage({ ask: true });
  });
}

/** After a reload, or in a new tab: is there a live session (cookie + the token this origin kept)? */
export async function resumeSession(): Promise<boolean> {
  if (!csrf) setCsrf(await askOtherTabs());
  if (!csrf) return false;
  const res = await fetch("/console/session", {
    headers: sessionHeaders(),
    credentials: "same-origin",
    cache: "no-store",
  });
  if (!res.ok) setCsrf(null);
  return res.ok;
}

export async function signOut(): Promise<void> {
  await api("POST", "/console/logout").catch(() => {});
  setCsrf(null);
  channel?.postMessage({ signedOut: true });
  onSignedOut();
}

import { existsSync, readFileSync, statSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { extname, join, normalize, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * Serves the built console (`dist/web`, made by `npm run build`) from the admin port: hashed assets
 * cached for a year, index.html never cached, and any other path that is not a file answered with
 * index.html so the page's own routes survive a reload. A strict Content-Security-Policy allows only
 * this origin: the bundle carries its fonts, scripts and styles and makes no outside request.
 */

export const CONSOLE_DIR = fileURLToPath(new URL("../../../dist/web/", import.meta.url));

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".woff2": "font/woff2",
  ".json": "application/json",
  ".txt": "text/plain; charset=utf-8",
};

export const SECURITY_HEADERS = {
  "content-security-policy":
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "cross-origin-opener-policy": "same-origin",
};

export function serveConsole(
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  dir = CONSOLE_DIR,
): boolean {
  if (req.method !== "GET" && req.method !== "HEAD") return false;
  const root = resolve(dir);
  const index = join(root, "index.html");
  if (!existsSync(index)) {
    res.writeHead(503, { "content-type": "text/plain; charset=utf-8", ...SECURITY_HEADERS });
    res.end("The console is not built: run `npm run build`.\n");
    return true;
  }
  let path = index;
  let decoded: string;
  try {
    decoded = decodeURIComponent(url.pathname);
  } catch {
    decoded = "/";
  }
  const candidate = normalize(join(root, decoded));
  if (candidate.startsWith(root + sep) && existsSync(candidate) && statSync(candidate).isFile())
    path = candidate;
  const body = readFileSync(path);
  const hashed = path.includes(`${sep}assets${sep}`);
  res.writeHead(200, {
    "content-type": TYPES[extname(path)] ?? "application/octet-stream",
    "content-length": body.length,
    "cache-control": hashed ? "public, max-age=31536000, immutable" : "no-store",
    ...SECURITY_HEADERS,
  });
  res.end(req.method === "HEAD" ? undefined : body);
  return true;
}

import {
  createServer,
  type IncomingMessage,
  type RequestListener,
  type Server,
  type ServerResponse,
} from "node:http";
import { createServer as createTlsServer } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import { asPalyraError } from "../common/errors.js";
import { limits } from "../common/limits.js";
import type { ServerIdentitySource } from "../transport/tls/tls-server.js";
import { type AdminApiDeps, handleAdminApi, httpAdminCall, sendJson as send } from "./admin-api.js";
import type { ChangeFeed } from "./change-feed.js";
import { authenticate, type ConsoleAuthDeps, handleConsoleAuth } from "./console/console-auth.js";
import { serveEventStream } from "./console/event-stream.js";
import { sessionCookie } from "./console/sessions.js";
import { serveConsole } from "./console/static-files.js";
import type { Logger } from "./logger.js";
import { type MetricsSnapshot, renderMetrics } from "./metrics.js";

export interface HealthReport {
  status: "ok";
  version: string;
  ca_fingerprint: string;
  uptime_s: number;
}

export interface AdminServerDeps {
  api: AdminApiDeps;
  auth: ConsoleAuthDeps;
  feed: ChangeFeed;
  metrics: () => Promise<MetricsSnapshot>;
  /** Whether a request's Host header names this gateway; absent: every host is served. */
  hostAllowed?: (host: string | undefined) => boolean;
  /** Where the built console is (default dist/web). */
  consoleDir?: string;
}

/**
 * The admin HTTP listener: `GET /healthz`, `GET /metrics` (Prometheus), the JSON API under `/v1/` (bearer token or console session),
 * the console's sign-in under `/console/`, server-sent events at `/v1/events`, and the console itself
 * for every other GET.
 */
export function createAdminServer(
  health: () => HealthReport,
  logger: Logger,
  deps?: AdminServerDeps,
  /** Serve HTTPS with the gateway's server certificate (required beyond loopback), following renewals. */
  tls?: ServerIdentitySource,
): Server {
  const handler: RequestListener = async (req: IncomingMessage, res: ServerResponse) => {
    let url: URL | undefined;
    try {
      url = requestPath(req.url);
      if (!url)
        return send(res, 400, { error: { code: "bad_request", message: "malformed request target" } });
      // Only names this gateway answers to: a page on another name (DNS rebinding) gets nothing.
      if (deps?.hostAllowed && !deps.hostAllowed(req.headers.host))
        return send(res, 421, {
          error: { code: "misdirected", message: "this gateway does not serve that host name" },
        });
      if (url.pathname === "/healthz") {
        if (req.method !== "GET" && req.method !== "HEAD")
          return send(res, 405, { error: { code: "method_not_allowed" } });
        return send(res, 200, health());
      }
      if (deps) {
        if (url.pathname.startsWith("/console/") && (await handleConsoleAuth(req, res, url, deps.auth)))
          return;
        if (url.pathname === "/metrics" && req.method === "GET") {
          if (!authenticate(req, res, deps.auth)) return;
          const body = renderMetrics(await deps.metrics());
          res.writeHead(200, {
            "content-type": "text/plain; version=0.0.4; charset=utf-8",
            "cache-control": "no-store",
          });
          return void res.end(body);
        }
        if (url.pathname.startsWith("/v1/")) {
          const caller = authenticate(req, res, deps.auth);
          if (!caller) return;
          if (url.pathname === "/v1/events" && req.method === "GET") {
            const cookie = sessionCookie(req.headers.cookie);
            return serveEventStream(req, res, deps.feed, () =>
              caller.session === undefined ? true : deps.auth.sessions.alive(cookie),
            );
          }
          if (
            await handleAdminApi(
              httpAdminCall(req, res, url),
              (status, body) => send(res, status, body),
              deps.api,
              caller.actor,
            )
          )
            return;
        }
        if (!url.pathname.startsWith("/v1/") && serveConsole(req, res, url, deps.consoleDir)) return;
      }
      send(res, 404, { error: { code: "not_found", message: `no route for ${req.method} ${url.pathname}` } });
    } catch (err) {
      // The client went away (or was answered 408/400 by clientError below) while its body was read.
      if ((err as { code?: string }).code === "ECONNRESET" || res.destroyed) {
        logger.debug({ path: url?.pathname }, "admin request aborted");
        return;
      }
      // A handler that failed after it started answering cannot send a status any more.
      logger.error({ err: asPalyraError(err).message, path: url?.pathname }, "admin request failed");
      if (!res.headersSent) send(res, 500, { error: { code: "internal", message: "internal error" } });
      else res.destroy();
    }
  };
  // A request (head and body) must arrive within adminRequestTimeoutMs; Node checks every interval.
  const httpOptions = {
    maxHeaderSize: limits.adminMaxHeaderBytes,
    headersTimeout: limits.adminRequestTimeoutMs,
    requestTimeout: limits.adminRequestTimeoutMs,
    connectionsCheckingInterval: limits.adminTimeoutCheckIntervalMs,
  };
  let server: Server;
  if (tls) {
    const options = (id: ReturnType<ServerIdentitySource["current"]>) => ({
      key: id.keyPem,
      cert: id.certChainPem,
    });
    const secure = createTlsServer(
      { ...options(tls.current()), minVersion: "TLSv1.2", ...httpOptions },
      handler,
    );
    const stop = tls.onRenew((id) => secure.setSecureContext(options(id)));
    secure.on("close", () => stop());
    server = secure;
  } else server = createServer(httpOptions, handler);
  server.on("clientError", (err: NodeJS.ErrnoException, socket: Socket) => {
    logger.debug({ err: err.message, code: err.code }, "admin client error");
    answerClientError(err, socket);
  });
  return server;
}

/**
 * What Node could not hand to the request handler still gets a status, never a silently dropped
 * socket: 431 for an oversized head, 408 for a request (head or body) that stopped coming, 400 for
 * anything unparsable, such as a body cut short by the client's half-close. Only when a response has
 * already begun, or the socket can no longer be written (the peer reset it), is it just closed.
 */
export function answerClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  const inFlight = (socket as Socket & { _httpMessage?: ServerResponse })._httpMessage;
  if (err.code === "ECONNRESET" || !socket.writable || inFlight?.headersSent) {
    socket.destroy();
    return;
  }
  const [status, reason, code, message] =
    err.code === "HPE_HEADER_OVERFLOW"
      ? [431, "Request Header Fields Too Large", "headers_too_large", "the request headers are too large"]
      : err.code === "ERR_HTTP_REQUEST_TIMEOUT"
        ? [408, "Request Timeout", "request_timeout", "the request did not arrive in time"]
        : [400, "Bad Request", "bad_request", "malformed or incomplete request"];
  const body = JSON.stringify({ error: { code, message } });
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json; charset=utf-8\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n${body}`,
    () => socket.destroy(),
  );
  // A peer that never reads would keep the socket: it goes after a short grace all the same.
  setTimeout(() => socket.destroy(), limits.adminErrorCloseGraceMs).unref();
}

/**
 * The path and query of a request target, read against a fixed origin: an absolute or `//authority`
 * target cannot change how the path is read. Undefined when it cannot be parsed at all.
 */
export function requestPath(target: string | undefined): URL | undefined {
  const raw = target ?? "/";
  if (raw.length > 8192) return undefined;
  try {
    return new URL(
      `http://gateway${raw.startsWith("/") && !raw.startsWith("//") ? raw : `/${raw.replace(/^\/+/, "")}`}`,
    );
  } catch {
    return undefined;
  }
}

export function listen(server: Server, host: string, port: number): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once("error", onError);
    server.listen({ host, port, exclusive: true }, () => {
      server.off("error", onError);
      resolve(server.address() as AddressInfo);
    });
  });
}

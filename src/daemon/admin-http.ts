import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { type AdminApiDeps, handleAdminApi, sendJson as send } from "./admin-api.js";
import type { Logger } from "./logger.js";

export interface HealthReport {
  status: "ok";
  version: string;
  ca_fingerprint: string;
  uptime_s: number;
}

/**
 * The admin HTTP listener. It serves `GET /healthz` and the JSON API under `/v1/`; metrics and the
 * console mount here later.
 */
export function createAdminServer(health: () => HealthReport, logger: Logger, api?: AdminApiDeps): Server {
  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (api && (await handleAdminApi(req, res, url, api))) return;
    if (url.pathname === "/healthz") {
      if (req.method !== "GET" && req.method !== "HEAD")
        return send(res, 405, { error: { code: "method_not_allowed" } });
      return send(res, 200, health());
    }
    send(res, 404, { error: { code: "not_found", message: `no route for ${req.method} ${url.pathname}` } });
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.on("clientError", (err, socket) => {
    logger.debug({ err: err.message }, "admin client error");
    socket.destroy();
  });
  return server;
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

import type { IncomingMessage, ServerResponse } from "node:http";
import { limits } from "../../common/limits.js";
import { sendJson } from "../admin-api.js";
import type { ChangeFeed } from "../change-feed.js";

/**
 * GET /v1/events: server-sent events for the console. Each event names the topics that changed
 * (`event: change`, `data: {"topics":["pairing"]}`); the page refetches those views. A comment line
 * every 15 s keeps idle streams open; the stream ends with the daemon or the client.
 */
export function serveEventStream(
  req: IncomingMessage,
  res: ServerResponse,
  feed: ChangeFeed,
  sessionAlive: () => boolean,
): void {
  if (feed.subscribers >= limits.consoleMaxEventStreams) {
    sendJson(res, 503, { error: { code: "busy", message: "too many open event streams" } });
    return;
  }
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    connection: "keep-alive",
  });
  res.write("retry: 3000\n\n");
  const unsubscribe = feed.subscribe((topics) => {
    res.write(`event: change\ndata: ${JSON.stringify({ topics })}\n\n`);
  });
  const keepAlive = setInterval(() => {
    // A session that expired meanwhile loses its stream; the page then signs in again.
    if (!sessionAlive()) res.end();
    else res.write(": keep-alive\n\n");
  }, limits.consoleEventKeepAliveMs);
  const stop = () => {
    clearInterval(keepAlive);
    unsubscribe();
  };
  req.on("close", stop);
  res.on("close", stop);
}

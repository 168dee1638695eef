import type { IncomingMessage, ServerResponse } from "node:http";
import { limits } from "../../common/limits.js";
import { sendJson } from "../admin-api.js";
import type { ChangeFeed } from "../change-feed.js";

/** A stream whose client stops reading is dropped once this much is waiting to be sent. */
const MAX_BUFFERED_BYTES = 64 * 1024;

/**
 * GET /v1/events: server-sent events for the console. Each event names the topics that changed
 * (`event: change`, `data: {"topics":["pairing"]}`); the page refetches those views. A comment line
 * every 15 s keeps idle streams open. The stream ends with the daemon, the client, the session, or a
 * client that stops reading (nothing is buffered for it without bound).
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
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    clearInterval(keepAlive);
    unsubscribe();
    if (!res.writableEnded) res.end();
  };
  const send = (text: string) => {
    if (stopped || res.writableEnded || res.destroyed) return stop();
    res.write(text);
    if (res.writableLength > MAX_BUFFERED_BYTES) {
      stop();
      res.destroy();
    }
  };
  const unsubscribe = feed.subscribe((topics) =>
    send(`event: change\ndata: ${JSON.stringify({ topics })}\n\n`),
  );
  const keepAlive = setInterval(() => {
    // A session that ended meanwhile loses its stream; the page then signs in again.
    if (!sessionAlive()) stop();
    else send(": keep-alive\n\n");
  }, limits.consoleEventKeepAliveMs);
  req.on("close", stop);
  res.on("close", stop);
  res.on("error", stop);
  send("retry: 3000\n\n");
}

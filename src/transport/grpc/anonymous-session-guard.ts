import type { Http2Server, ServerHttp2Session } from "node:http2";
import { constants as http2Constants } from "node:http2";
import type { Server } from "@grpc/grpc-js";
import { type Scheduler, systemScheduler } from "../../common/scheduler.js";
import { underlyingSocket } from "../tls/peer-identity.js";

/**
 * The rules an anonymous HTTP/2 connection on the node port lives by (it has proved nothing, so it
 * may hold nothing): closed after `idleMs` with no open stream, after `maxAgeMs` in all (GOAWAY, then
 * the socket), and at once when its session is dead. A session is dead after nghttp2 sent GOAWAY for a
 * protocol error: it never reads or writes again, yet Node reports nothing and keeps the socket open.
 * So a connection that received bytes gets a PING submitted, and if not one byte has left the socket
 * by the next check, the session is gone and so is the socket. (Whether bytes *leave* is local, so a
 * slow network cannot make a live session look dead.)
 */
export interface AnonymousSessionLimits {
  idleMs: number;
  maxAgeMs: number;
  goawayGraceMs: number;
  deadSessionCheckMs: number;
}

export type GuardEnd = "idle" | "max_age" | "dead_session";

/** Watches one anonymous session; calls `onEnd` once when it cuts it. */
export function guardAnonymousSession(
  session: ServerHttp2Session,
  limits: AnonymousSessionLimits,
  onEnd: (why: GuardEnd) => void = () => {},
  scheduler: Scheduler = systemScheduler,
): void {
  const socket = session.socket;
  // session.socket is a Proxy whose destroy() throws; cut the real socket (or the session, if untagged).
  const cut = () => {
    const raw = underlyingSocket(socket);
    if (raw) raw.destroy();
    else session.destroy();
  };
  let streams = 0;
  let ended = false;
  let idle: unknown;
  let age: unknown;
  let checkTimer: unknown;
  let probe: { written: number } | undefined;
  let lastRead = socket.bytesRead;
  const end = (why: GuardEnd, graceful: boolean) => {
    if (ended) return;
    ended = true;
    onEnd(why);
    if (graceful && !session.destroyed) {
      try {
        session.goaway(http2Constants.NGHTTP2_NO_ERROR);
      } catch {
        // already closing
      }
      // Not cleared on session close: the socket must go even if the session closed without it.
      scheduler.setTimeout(cut, limits.goawayGraceMs);
    } else cut();
  };
  const armIdle = () => {
    idle = scheduler.setTimeout(() => end("idle", true), limits.idleMs);
  };
  session.on("stream", (stream) => {
    streams++;
    scheduler.clearTimeout(idle);
    stream.once("close", () => {
      streams--;
      if (streams === 0 && !ended) armIdle();
    });
  });
  const check = () => {
    if (ended || session.destroyed) return;
    if (probe && socket.bytesWritten === probe.written) {
      end("dead_session", false);
      return;
    }
    probe = undefined;
    if (socket.bytesRead !== lastRead) {
      lastRead = socket.bytesRead;
      try {
        session.ping(() => {});
        probe = { written: socket.bytesWritten };
      } catch {
        // closing, or too many pings outstanding (then bytes are not leaving either: check next time)
      }
    }
    checkTimer = scheduler.setTimeout(check, limits.deadSessionCheckMs);
  };
  armIdle();
  age = scheduler.setTimeout(() => end("max_age", true), limits.maxAgeMs);
  checkTimer = scheduler.setTimeout(check, limits.deadSessionCheckMs);
  session.once("close", () => {
    ended = true;
    for (const timer of [idle, age, checkTimer]) scheduler.clearTimeout(timer);
  });
}

/**
 * The HTTP/2 server behind a grpc-js connection injector, so that its sessions can be watched. grpc-js
 * has no public hook for the sessions of injected connections; it keeps the server it creates for each
 * injector in a private map, which this reads (grpc-js is pinned; a test fails if this stops working).
 */
export function injectorHttp2Server(grpc: Server, create: () => void): Http2Server | undefined {
  const servers = (grpc as unknown as { http2Servers?: Map<Http2Server, unknown> }).http2Servers;
  if (!(servers instanceof Map)) {
    create();
    return undefined;
  }
  const before = new Set(servers.keys());
  create();
  return [...servers.keys()].find((server) => !before.has(server));
}

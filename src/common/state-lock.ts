import { createHash } from "node:crypto";
import { realpathSync, rmSync } from "node:fs";
import { createConnection, createServer, type Server } from "node:net";

/**
 * An exclusive lock on a state directory, held for the life of the process: one daemon (or one node
 * host) per state root. On Linux it is a listening socket in the abstract namespace named after the
 * directory's real path: binding it is atomic, so of two processes started in the same instant exactly
 * one wins, and the kernel frees it when the process dies however it dies, so no stale lock is ever
 * left (a pid file can do neither; SQLite's file locks, tried first, let two fresh openers both win).
 * Elsewhere it is a socket file `<name>.sock` in the directory; a stale one (nobody accepts on it) is
 * replaced, which leaves a small race between two processes starting on a stale file at once.
 */
export interface StateLock {
  release(): void;
}

/** Takes the lock named `name` on directory `dir`, or resolves undefined when another process holds it. */
export async function acquireStateLock(dir: string, name: string): Promise<StateLock | undefined> {
  const real = realpathSync(dir);
  if (process.platform === "linux") {
    const id = createHash("sha256").update(real).digest("hex");
    return listenOrBusy(`\0palyra-${name}-${id}`);
  }
  const path = `${real}/${name}.sock`;
  const held = await listenOrBusy(path);
  if (held || (await somebodyAccepts(path))) return held;
  rmSync(path, { force: true });
  return listenOrBusy(path);
}

function listenOrBusy(address: string): Promise<StateLock | undefined> {
  return new Promise((resolve, reject) => {
    const server: Server = createServer((socket) => socket.destroy());
    server.once("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "EADDRINUSE") resolve(undefined);
      else reject(err);
    });
    server.listen({ path: address, exclusive: true }, () => {
      // Never keeps the process alive by itself.
      server.unref();
      resolve({ release: () => server.close() });
    });
  });
}

function somebodyAccepts(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ path }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

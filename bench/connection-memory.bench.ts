import { type ChildProcess, fork } from "node:child_process";
import { once } from "node:events";
import * as http2 from "node:http2";
import * as tls from "node:tls";
import { fileURLToPath } from "node:url";
import { withTimeout } from "../src/common/timeout.js";
import { type FleetIdentity, FleetNode } from "./fleet/fleet-node.js";
import { frame } from "./fleet/grpc-h2.js";
import type { BenchResult } from "./harness.js";

const SUITE = "connection-memory";
const SERVER = fileURLToPath(new URL("./connection-memory/memory-server.ts", import.meta.url));
type Mode = "tls" | "h2" | "grpc" | "gateway";
const LABEL: Record<Mode, string> = {
  tls: "bare node:tls mutual TLS, idle (baseline)",
  h2: "node:http2 over it, one open stream",
  grpc: "stock grpc-js over it, one open bidi call",
  gateway: "gateway node session (RegisterNode, Connect, Hello)",
};

/** Opt-in (about a minute): `npm run bench -- connection-memory [--connections N]`. */
export const optIn = true;

/**
 * What one held node connection costs the gateway in resident memory, layer by layer, each in its own
 * server process and measured after a full GC: the floor Node itself sets (a bare mutual-TLS socket),
 * then HTTP/2, then grpc-js, then the gateway's real node session. The fleet bench's "gateway RSS per
 * node" reads against these.
 */
export async function run(argv: readonly string[] = []): Promise<BenchResult[]> {
  const at = argv.indexOf("--connections");
  const count = at === -1 ? 1000 : Number(argv[at + 1]);
  if (!Number.isInteger(count) || count <= 0) throw new Error("--connections needs a positive integer");
  const perConnection = new Map<Mode, number>();
  const results: BenchResult[] = [];
  for (const mode of ["tls", "h2", "grpc", "gateway"] as const) {
    const kb = await measureMode(mode, count);
    perConnection.set(mode, kb);
    results.push({ suite: SUITE, name: `${LABEL[mode]}: RSS per connection`, value: kb, unit: "KB" });
  }
  const floor = perConnection.get("tls")!;
  for (const mode of ["h2", "grpc", "gateway"] as const)
    results.push({
      suite: SUITE,
      name: `${mode} per bare mutual TLS`,
      value: perConnection.get(mode)! / floor,
      unit: "x",
    });
  return results;
}

interface Memory {
  rss: number;
  held: number;
}

async function measureMode(mode: Mode, count: number): Promise<number> {
  const child = fork(SERVER, [mode, String(count)], {
    execArgv: ["--expose-gc", "--import", "tsx"],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const closers: (() => void)[] = [];
  try {
    const ready = (await next(child, "ready")) as {
      port: number;
      caPem: string;
      identities: FleetIdentity[];
    };
    const base = (await measure(child)) as Memory;
    const target = { host: "127.0.0.1", port: ready.port, caPem: ready.caPem };
    for (let i = 0; i < count; i += 50) {
      const batch = ready.identities.slice(i, i + 50);
      await Promise.all(
        batch.map(async (identity) =>
          closers.push(
            // A connection that does not come up fails the run instead of hanging it.
            await withTimeout(
              open(mode, identity, target),
              30_000,
              () => new Error(`${mode}: a connection was not up within 30 s`),
            ),
          ),
        ),
      );
      process.stderr.write(`connection-memory: ${mode} ${Math.min(i + 50, count)}/${count}\r`);
    }
    const full = (await measure(child)) as Memory;
    if (mode !== "gateway" && full.held < count) throw new Error(`${mode}: server holds ${full.held}`);
    return (full.rss - base.rss) / count / 1024;
  } finally {
    for (const close of closers) close();
    child.kill();
  }
}

type Target = { host: string; port: number; caPem: string };

/** Opens one connection of the mode's kind and resolves once the server holds it; returns its closer. */
async function open(mode: Mode, identity: FleetIdentity, target: Target): Promise<() => void> {
  if (mode === "gateway") {
    let online!: () => void;
    const ready = new Promise<void>((resolve) => {
      online = resolve;
    });
    const node = new FleetNode(identity, target, { online: () => online(), lost: () => {} });
    node.start();
    await ready;
    return () => node.stop();
  }
  const socket = tls.connect({
    host: target.host,
    port: target.port,
    ca: target.caPem,
    key: identity.keyPem,
    cert: identity.certPem,
    ALPNProtocols: ["h2"],
    minVersion: "TLSv1.3",
  });
  if (mode === "tls") {
    await once(socket, "secureConnect");
    return () => socket.destroy();
  }
  const session = http2.connect(`https://${target.host}:${target.port}`, { createConnection: () => socket });
  const stream = session.request({
    ":method": "POST",
    ":path": "/palyra.v1.NodeService/Connect",
    "content-type": "application/grpc",
    te: "trailers",
  });
  stream.write(frame(new Uint8Array(8)));
  await once(stream, "response");
  return () => session.destroy();
}

function next(child: ChildProcess, type: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: { type?: string }) => {
      if (message?.type !== type) return;
      child.off("exit", onExit);
      child.off("message", onMessage);
      resolve(message);
    };
    const onExit = (code: number | null) => reject(new Error(`memory server exited (${code})`));
    child.on("message", onMessage);
    child.once("exit", onExit);
  });
}

async function measure(child: ChildProcess): Promise<unknown> {
  // Let the last connections' handshakes settle before reading.
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const reply = next(child, "memory");
  child.send("measure");
  return reply;
}

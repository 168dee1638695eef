import assert from "node:assert/strict";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import * as tls from "node:tls";
import { limits } from "../src/common/limits.js";
import { type DaemonProcess, startDaemon } from "./helpers/cli.js";
import { within } from "./helpers/pki.js";

// Issue 12 findings 3 and 4 against a real daemon with its default limits: a TCP socket that sends
// nothing, and an anonymous TLS connection that opens no stream, are both closed by the gateway.
const root = mkdtempSync(join(tmpdir(), "palyra-discipline-"));
let daemon: DaemonProcess;
let host: string;
let port: number;
before(async () => {
  daemon = await startDaemon(join(root, "gw"));
  const at = daemon.summary.node_address.lastIndexOf(":");
  host = daemon.summary.node_address.slice(0, at);
  port = Number(daemon.summary.node_address.slice(at + 1));
});
after(async () => {
  await daemon?.stop();
  rmSync(root, { recursive: true, force: true });
});

test("the default limits close a silent TCP socket (within 15 s) and an idle anonymous TLS connection (within 40 s)", async (t) => {
  const started = Date.now();
  const raw = net.connect(port, host);
  raw.on("error", () => {});
  raw.resume();
  const secure = tls.connect({
    host,
    port,
    ca: readFileSync(join(root, "gw", "ca.pem"), "utf8"),
    servername: "localhost",
    ALPNProtocols: ["h2"],
  });
  secure.on("error", () => {});
  secure.resume();
  await once(secure, "secureConnect");
  // Only the HTTP/2 preface and an empty SETTINGS: a connection, but never a stream.
  secure.write(
    Buffer.concat([
      Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
      Buffer.from("000000040000000000", "hex"),
    ]),
  );
  const rawClosed = once(raw, "close").then(() => Date.now() - started);
  const secureClosed = once(secure, "close").then(() => Date.now() - started);
  const rawMs = await within(rawClosed, "silent TCP socket closed", 15_000);
  const secureMs = await within(secureClosed, "idle anonymous TLS connection closed", 40_000);
  t.diagnostic(`silent TCP closed after ${rawMs} ms; idle anonymous TLS after ${secureMs} ms`);
  assert.ok(rawMs >= limits.tlsHandshakeTimeoutMs - 1_000, `not before the handshake limit (${rawMs} ms)`);
  assert.ok(secureMs >= limits.anonymousIdleMs - 1_000, `not before the idle limit (${secureMs} ms)`);
});

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { deferred, issueLeaf, within } from "../../../test/helpers/pki.js";
import { systemClock } from "../../common/clock.js";
import { systemRandom } from "../../common/random.js";
import { CertificateAuthority } from "../../identity/ca.js";
import { loadQuicLibrary, serverCryptoOps } from "./quic-library.js";

/**
 * Regression test for the library crash our patch fixes (patches/@matrixai+quic+2.0.9.patch): a peer
 * whose streams arrive in the same datagram as its handshake Finished. Unpatched, a unidirectional one
 * threw inside the UDP handler and killed the whole process, and bidirectional ones were reset unseen.
 * Debian's ngtcp2 client (`gtlsclient`) coalesces exactly like that: it speaks h3 and opens its control
 * streams at once, so this server offers h3 besides our ALPN (the gateway itself offers only ours).
 */

const dir = mkdtempSync(join(tmpdir(), "palyra-coalesce-"));
after(() => rmSync(dir, { recursive: true, force: true }));

test("streams that arrive with the handshake (ngtcp2 gtlsclient) reach the application and crash nothing", async () => {
  const ca = await CertificateAuthority.create({ clock: systemClock, random: systemRandom });
  const server = await issueLeaf(ca, "server");
  const client = await issueLeaf(ca, "client");
  writeFileSync(join(dir, "client.key"), client.keyPem, { mode: 0o600 });
  writeFileSync(join(dir, "client.pem"), client.certPem);

  const { quic, logger } = await loadQuicLibrary();
  const quicServer = new quic.QUICServer({
    logger,
    crypto: { key: new Uint8Array(32).fill(7).buffer as ArrayBuffer, ops: serverCryptoOps },
    config: {
      key: server.keyPem,
      cert: server.certPem,
      ca: ca.certPem,
      verifyPeer: true,
      applicationProtos: ["h3", "palyra-quic-v1"],
      enableEarlyData: false,
      maxIdleTimeout: 5_000,
      initialMaxStreamsBidi: 32,
      initialMaxStreamsUni: 32,
    },
  });
  const streams: { id: number; type: string }[] = [];
  const sawPeerStreams = deferred();
  let peerLeaf: Uint8Array | undefined;
  quicServer.addEventListener(quic.events.EventQUICServerError.name, () => undefined);
  quicServer.addEventListener(quic.events.EventQUICServerConnection.name, (evt: Event) => {
    const conn = (evt as InstanceType<typeof quic.events.EventQUICServerConnection>).detail;
    peerLeaf = conn.getRemoteCertsChain()[0];
    conn.addEventListener(quic.events.EventQUICConnectionError.name, () => undefined);
    conn.addEventListener(quic.events.EventQUICConnectionStream.name, (se: Event) => {
      const stream = (se as InstanceType<typeof quic.events.EventQUICConnectionStream>).detail;
      streams.push({ id: stream.streamId, type: stream.type });
      if (streams.length >= 2) sawPeerStreams.resolve();
      void stream.readable.cancel().catch(() => undefined);
    });
  });
  await quicServer.start({ host: "127.0.0.1", port: 0 });
  try {
    const gtls = spawn(
      "gtlsclient",
      [
        "--quiet",
        "--no-quic-dump",
        "--no-http-dump",
        "--exit-on-all-streams-close",
        "--timeout=3s",
        `--key=${join(dir, "client.key")}`,
        `--cert=${join(dir, "client.pem")}`,
        "127.0.0.1",
        String(quicServer.port),
        `https://localhost:${quicServer.port}/`,
      ],
      { stdio: "ignore" },
    );
    const exited = once(gtls, "close");
    await within(sawPeerStreams.promise, "peer streams delivered", 10_000);
    await within(exited, "gtlsclient exit", 15_000);
    // The client's unidirectional h3 control streams (2, 6, 10) and its request stream (0) all arrived.
    assert.ok(
      streams.some((s) => s.type === "uni"),
      JSON.stringify(streams),
    );
    assert.ok(
      streams.some((s) => s.id === 0 && s.type === "bidi"),
      JSON.stringify(streams),
    );
    assert.ok(peerLeaf && Buffer.from(peerLeaf).equals(client.der), "the server saw the client certificate");
  } finally {
    await quicServer.stop({ force: true });
  }
});

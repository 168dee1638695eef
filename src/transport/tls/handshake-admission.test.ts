import assert from "node:assert/strict";
import { once } from "node:events";
import * as net from "node:net";
import { after, before, test } from "node:test";
import * as tls from "node:tls";
import { issueLeaf, within } from "../../../test/helpers/pki.js";
import { systemClock } from "../../common/clock.js";
import { systemRandom } from "../../common/random.js";
import { CertificateAuthority } from "../../identity/ca.js";
import { ConnectionRegistry } from "./connection-registry.js";
import { HandshakeAdmission } from "./handshake-admission.js";
import { NodePortTlsServer, type TlsServerEvent } from "./tls-server.js";

/** Real TCP sockets on 127.0.0.1:0, handed to the admission as a TLS server would. */
async function socketPairs(count: number) {
  const accepted: net.Socket[] = [];
  const clients: net.Socket[] = [];
  const server = net.createServer((s) => accepted.push(s));
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as net.AddressInfo;
  for (let i = 0; i < count; i++) {
    const client = net.connect(port, "127.0.0.1");
    client.on("error", () => {});
    clients.push(client);
    await once(client, "connect");
  }
  while (accepted.length < count) await once(server, "connection");
  return {
    accepted,
    clients,
    close: () => {
      for (const s of [...accepted, ...clients]) s.destroy();
      server.close();
    },
  };
}

test("admission: a bounded number in flight, a bounded queue in order, the rest shed", async () => {
  const pairs = await socketPairs(5);
  const admitted: net.Socket[] = [];
  const shed: net.Socket[] = [];
  const admission = new HandshakeAdmission({
    maxInFlight: 2,
    maxQueued: 2,
    admit: (s) => admitted.push(s),
    onShed: (s) => shed.push(s),
  });
  const [a, b, c, d, e] = pairs.accepted as [net.Socket, net.Socket, net.Socket, net.Socket, net.Socket];
  for (const s of [a, b, c, d, e]) admission.offer(s);
  assert.deepEqual(admitted, [a, b]);
  assert.deepEqual(shed, [e]);
  assert.equal(e.destroyed, true, "a shed socket is closed at once");
  assert.deepEqual({ inFlight: admission.inFlight, queued: admission.queued }, { inFlight: 2, queued: 2 });
  assert.equal(admission.state(), "shedding");

  // A waiting socket that closes leaves the line; a finished handshake lets the oldest waiting in.
  c.destroy();
  await once(c, "close");
  assert.equal(admission.queued, 1);
  admission.release(a);
  assert.deepEqual(admitted, [a, b, d]);
  admission.release(a); // twice is harmless
  assert.equal(admission.inFlight, 2);
  assert.equal(admission.state(), "open");
  // A socket that closes mid-handshake frees its slot too.
  b.destroy();
  await once(b, "close");
  assert.equal(admission.inFlight, 1);
  pairs.close();
});

test("admission: bad bounds are refused", () => {
  assert.throws(() => new HandshakeAdmission({ maxInFlight: 0, maxQueued: 1, admit: () => {} }), RangeError);
  assert.throws(() => new HandshakeAdmission({ maxInFlight: 1, maxQueued: -1, admit: () => {} }), RangeError);
});

let ca: CertificateAuthority;
before(async () => {
  ca = await CertificateAuthority.create({ clock: systemClock, random: systemRandom });
});

const servers: NodePortTlsServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close(100)));
});

test("node port: a peer that sends nothing takes no slot; one that stalls after its ClientHello holds one briefly; beyond the queue, closed", async () => {
  const leaf = await issueLeaf(ca, "server");
  const events: TlsServerEvent[] = [];
  const server = new NodePortTlsServer({
    identity: { certChainPem: leaf.certPem + ca.certPem, keyPem: leaf.keyPem },
    caPem: ca.certPem,
    authorizePeer: async () => ({ ok: false, reason: "unknown_device" }) as never,
    registry: new ConnectionRegistry(),
    onEvent: (e) => events.push(e),
    onSecureConnection: (socket) => socket.end(),
    handshakesInFlight: 1,
    handshakesQueued: 1,
    admittedHandshakeMs: 1_500,
  });
  servers.push(server);
  const { port } = await server.listen("127.0.0.1", 0);
  const tlsClient = () =>
    tls.connect({
      host: "127.0.0.1",
      port,
      servername: "localhost",
      ca: [ca.certPem],
      ALPNProtocols: ["h2"],
    });

  // Silent TCP peers (the cheapest way to hold handshakes open) take neither a slot nor a place in line.
  const silent = await Promise.all(
    Array.from({ length: 5 }, async () => {
      const s = net.connect(port, "127.0.0.1");
      s.on("error", () => {});
      await once(s, "connect");
      return s;
    }),
  );
  const first = tlsClient();
  first.on("error", () => {});
  await within(once(first, "secureConnect"), "a handshake beside five silent peers");
  first.destroy();
  // Once the server has finished that one, nothing is admitted or waiting: the silent peers never were.
  await within(
    (async () => {
      while (server.handshakes.inFlight > 0) await new Promise((r) => setImmediate(r));
    })(),
    "the first handshake's slot freed",
  );
  assert.deepEqual(server.handshakes, { inFlight: 0, queued: 0 });

  // A peer that sends the start of a ClientHello and stalls holds the one slot...
  const stalled = net.connect(port, "127.0.0.1");
  stalled.on("error", () => {});
  await once(stalled, "connect");
  stalled.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]));
  const stalledAt = Date.now();
  await within(
    (async () => {
      while (server.handshakes.inFlight < 1) await new Promise((r) => setImmediate(r));
    })(),
    "the stalled peer admitted",
  );
  const waiting = tlsClient();
  waiting.on("error", () => {});
  let waitingDone = false;
  const waitingSecure = new Promise<void>((resolve) =>
    waiting.once("secureConnect", () => {
      waitingDone = true;
      resolve();
    }),
  );
  await within(
    (async () => {
      while (server.handshakes.queued < 1) await new Promise((r) => setImmediate(r));
    })(),
    "the second handshake queued",
  );
  // ...a third is shed before any TLS byte...
  const shed = tlsClient();
  let shedError: Error | undefined;
  shed.on("error", (e) => {
    shedError = e;
  });
  await within(new Promise((r) => shed.once("close", r)), "the third connection closed");
  assert.ok(events.some((e) => e.kind === "handshake_shed"));
  assert.ok(shedError, "the shed client saw its connection end before TLS");
  assert.equal(waitingDone, false, "the queued handshake has not started while the slot is held");
  // ...until its budget ends: then it is cut and the waiting one completes.
  await within(new Promise((r) => stalled.once("close", r)), "the stalled peer cut at its budget");
  assert.ok(Date.now() - stalledAt >= 1_400, "not before its budget");
  await within(waitingSecure, "the queued handshake completed");
  waiting.destroy();
  for (const s of silent) s.destroy();
});

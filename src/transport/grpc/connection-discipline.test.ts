import assert from "node:assert/strict";
import { once } from "node:events";
import * as net from "node:net";
import { after, before, test } from "node:test";
import * as tls from "node:tls";
import { type Credential, issueLeaf, recordPairedDevice, within } from "../../../test/helpers/pki.js";
import { systemClock } from "../../common/clock.js";
import { limits } from "../../common/limits.js";
import { systemRandom } from "../../common/random.js";
import { PairingService } from "../../gen/palyra/v1/pairing_pb.js";
import { CertificateAuthority } from "../../identity/ca.js";
import { DeviceRegistry } from "../../identity/device-registry.js";
import { openGatewayStore, type SqliteGatewayStore } from "../../store/gateway-store.js";
import type { TlsServerEvent } from "../tls/tls-server.js";
import type { GuardEnd } from "./anonymous-session-guard.js";
import { NodePortServer } from "./server.js";

/**
 * Node-port connection discipline (issue 12 findings 3 and 4), against a real NodePortServer on
 * 127.0.0.1 with short limits: sockets that never finish TLS, anonymous HTTP/2 connections that idle,
 * outlive their age or break the protocol, stream limits in the first SETTINGS, and per-address caps.
 */

let ca: CertificateAuthority;
let store: SqliteGatewayStore;
let devices: DeviceRegistry;
let server: NodePortServer;
let port: number;
let device: Credential;
const tlsEvents: TlsServerEvent[] = [];
const ends: GuardEnd[] = [];
const SHORT = { handshake: 400, idle: 1_500, maxAge: 4_000, grace: 100 };

before(async () => {
  ca = await CertificateAuthority.create({ clock: systemClock, random: systemRandom });
  store = openGatewayStore(":memory:", systemClock, systemRandom);
  devices = new DeviceRegistry(store.devices, systemClock);
  device = await recordPairedDevice(devices, ca);
  const serverCert = await issueLeaf(ca, "server");
  server = new NodePortServer({
    identity: { certChainPem: serverCert.certPem + ca.certPem, keyPem: serverCert.keyPem },
    caPem: ca.certPem,
    authorizePeer: (der) => devices.authorizePeer(der),
    handshakeTimeoutMs: SHORT.handshake,
    anonymous: {
      idleMs: SHORT.idle,
      maxAgeMs: SHORT.maxAge,
      goawayGraceMs: SHORT.grace,
      perAddress: 3,
      total: 5,
    },
    onTlsEvent: (event) => tlsEvents.push(event),
    onAnonymousEnd: (why) => ends.push(why),
  });
  const never = () => new Promise<never>(() => {});
  server.addService(
    PairingService,
    {
      beginPairing: () => ({ sessionId: "s" }),
      // Holds its stream open until the client goes.
      exchangePairing: never,
      completePairing: () => ({}),
      getPairingStatus: () => ({}),
    },
    {
      beginPairing: "anonymous",
      exchangePairing: "anonymous",
      completePairing: "anonymous",
      getPairingStatus: "anonymous",
    },
  );
  ({ port } = await server.listen("127.0.0.1", 0));
});
after(async () => {
  await server.close(100);
  store.close();
});

const closed = (socket: net.Socket) =>
  socket.destroyed ? Promise.resolve() : once(socket, "close").then(() => undefined);

function anonymousTls(): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect(
      { host: "127.0.0.1", port, ca: ca.certPem, servername: "localhost", ALPNProtocols: ["h2"] },
      () => resolve(socket),
    );
    socket.on("error", reject);
    socket.resume(); // read (and drop) what the server sends, so its close is seen
  });
}

const PREFACE = Buffer.concat([
  Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
  Buffer.from("000000040000000000", "hex"), // empty SETTINGS
]);

/** The first SETTINGS frame the server sends, as id -> value. */
function firstSettings(socket: tls.TLSSocket): Promise<Map<number, number>> {
  return new Promise((resolve) => {
    let buffered = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (buffered.length < 9) return;
      const length = buffered.readUIntBE(0, 3);
      if (buffered.length < 9 + length) return;
      socket.off("data", onData);
      assert.equal(buffered[3], 0x4, "the first frame is SETTINGS");
      const settings = new Map<number, number>();
      for (let i = 9; i < 9 + length; i += 6)
        settings.set(buffered.readUInt16BE(i), buffered.readUInt32BE(i + 2));
      resolve(settings);
    };
    socket.on("data", onData);
  });
}
const MAX_CONCURRENT_STREAMS = 0x3;

test("finding 3: a TCP socket that sends nothing, and one that stalls mid-ClientHello, are destroyed at the handshake limit", async () => {
  const idle = net.connect(port, "127.0.0.1");
  const partial = net.connect(port, "127.0.0.1", () => {
    // The first bytes of a TLS record carrying a ClientHello, then nothing more.
    partial.write(Buffer.from("16030100c8010000c40303", "hex"));
  });
  idle.on("error", () => {});
  partial.on("error", () => {});
  await within(Promise.all([closed(idle), closed(partial)]), "both sockets closed by the gateway", 5_000);
  // Our deadline or Node's own handshake timer (reported, then destroyed by us), whichever fires first.
  const timedOut = tlsEvents.filter(
    (e) =>
      e.kind === "handshake_timeout" ||
      (e.kind === "handshake_failed" && e.detail === "ERR_TLS_HANDSHAKE_TIMEOUT"),
  );
  assert.ok(timedOut.length >= 2, JSON.stringify(tlsEvents));
});

test("finding 4: an anonymous connection with no stream is closed after the idle limit", async () => {
  const socket = await anonymousTls();
  socket.write(PREFACE);
  await within(closed(socket), "idle anonymous connection closed", 5_000);
  assert.ok(ends.includes("idle"));
});

test("finding 4: a stream keeps an anonymous connection past the idle limit, but not past its age", async () => {
  const socket = await anonymousTls();
  socket.write(PREFACE);
  const started = Date.now();
  // HEADERS (END_HEADERS) for stream 1: POST /palyra.v1.PairingService/ExchangePairing, held open.
  const path = "/palyra.v1.PairingService/ExchangePairing";
  const block = Buffer.concat([
    Buffer.from([0x83, 0x86]), // :method POST, :scheme http
    Buffer.from([0x44, path.length]), // :path, literal without indexing (name index 4)
    Buffer.from(path),
    Buffer.from([0x41, 9]), // :authority
    Buffer.from("localhost"),
    Buffer.from([0x5f, 16]), // content-type (index 31)
    Buffer.from("application/grpc"),
    Buffer.from([0x00, 2]), // te: trailers, literal new name
    Buffer.from("te"),
    Buffer.from([8]),
    Buffer.from("trailers"),
  ]);
  const header = Buffer.alloc(9);
  header.writeUIntBE(block.length, 0, 3);
  header[3] = 0x1;
  header[4] = 0x4;
  header.writeUInt32BE(1, 5);
  socket.write(Buffer.concat([header, block]));
  await within(closed(socket), "anonymous connection closed at its age", 8_000);
  assert.ok(Date.now() - started >= SHORT.idle * 2, "it outlived the idle limit while its stream was open");
  assert.ok(ends.includes("max_age"));
});

test("finding 4: after a GOAWAY for a protocol error the socket is closed within a second", async () => {
  const frames = {
    "broken HPACK (COMPRESSION_ERROR)": "000001010500000001ff",
    "DATA on stream 0": "00000100010000000000",
    "orphan CONTINUATION": "00000109040000000182",
    "PRIORITY on itself": "0000050200000000010000000110",
  };
  for (const [what, hex] of Object.entries(frames)) {
    const socket = await anonymousTls();
    socket.on("data", () => {});
    socket.write(Buffer.concat([PREFACE, Buffer.from(hex, "hex")]));
    const before = ends.filter((e) => e === "dead_session").length;
    const sent = Date.now();
    await within(closed(socket), `${what}: socket closed`, 3_000);
    // The nghttp2 of Node 22.23 and 24 ignores a PRIORITY frame (RFC 9113 deprecates them): no error
    // there, and the idle limit closes that connection instead, still within the wait above.
    if (!(what.startsWith("PRIORITY") && Number(process.versions.node.split(".")[0]) >= 22))
      assert.ok(Date.now() - sent < SHORT.idle, `${what}: closed before the idle limit could have cut it`);
    // Node 20 leaves the socket open after nghttp2's GOAWAY and the dead-session check cuts it; newer
    // Nodes (22.23, 24) close it themselves. Either way it is gone long before the idle limit.
    if (Number(process.versions.node.split(".")[0]) === 20)
      assert.equal(ends.filter((e) => e === "dead_session").length, before + 1, what);
  }
});

test("finding 4: MAX_CONCURRENT_STREAMS is in the first SETTINGS: 8 anonymous, 100 for a device", async () => {
  const anonymous = await anonymousTls();
  const anonymousSettings = firstSettings(anonymous);
  anonymous.write(PREFACE);
  assert.equal(
    (await within(anonymousSettings, "anonymous SETTINGS")).get(MAX_CONCURRENT_STREAMS),
    limits.anonymousMaxStreams,
  );
  anonymous.destroy();
  const paired = await new Promise<tls.TLSSocket>((resolve, reject) => {
    const socket = tls.connect(
      {
        host: "127.0.0.1",
        port,
        ca: ca.certPem,
        servername: "localhost",
        ALPNProtocols: ["h2"],
        cert: device.certPem,
        key: device.keyPem,
      },
      () => resolve(socket),
    );
    socket.on("error", reject);
  });
  const deviceSettings = firstSettings(paired);
  paired.write(PREFACE);
  assert.equal(
    (await within(deviceSettings, "device SETTINGS")).get(MAX_CONCURRENT_STREAMS),
    limits.deviceMaxStreams,
  );
  paired.destroy();
});

test("anonymous connections are capped per address", async () => {
  // The earlier tests' connections are closed from the client side; wait until the gateway saw it.
  await within(
    (async () => {
      while (server.connections.connectionCount() > 0) await new Promise((r) => setTimeout(r, 20));
    })(),
    "earlier connections gone",
  );
  const held = await Promise.all([anonymousTls(), anonymousTls(), anonymousTls()]);
  for (const socket of held) socket.write(PREFACE);
  const fourth = await anonymousTls();
  await within(closed(fourth), "the fourth anonymous connection from one address is cut", 3_000);
  assert.ok(tlsEvents.some((e) => e.kind === "refused" && e.reason === "anonymous_limit"));
  for (const socket of held) socket.destroy();
});

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { createSocket, type Socket } from "node:dgram";
import { once } from "node:events";
import { after, before, test } from "node:test";
import { systemClock } from "../src/common/clock.js";
import { systemRandom } from "../src/common/random.js";
import { CertificateAuthority } from "../src/identity/ca.js";
import { DeviceRegistry } from "../src/identity/device-registry.js";
import { type GatewayStore, openGatewayStore } from "../src/store/gateway-store.js";
import { QuicNodeClient } from "../src/transport/quic/client.js";
import { QuicTransportError } from "../src/transport/quic/errors.js";
import { QuicGatewayServer } from "../src/transport/quic/server.js";
import { ConnectionRegistry } from "../src/transport/tls/connection-registry.js";
import { issueLeaf, recordPairedDevice, within } from "./helpers/pki.js";

/**
 * The gateway's QUIC port must not answer a datagram that could open a connection unless it carries at
 * least 1200 bytes (RFC 9000 section 14.1 for Initials, 5.2.2 for unknown versions): a Retry or a
 * Version Negotiation sent to a forged 27-byte datagram multiplies the sender's traffic several times,
 * far past the 3x anti-amplification limit (section 8.1). The fix is in our patch of @matrixai/quic.
 *
 * Silence is proven without waiting on a clock: the undersized datagrams go first, then a padded one
 * from the same socket. Every answer (Retry or Version Negotiation) is addressed to the client's source
 * connection id, and loopback keeps order, so when the padded datagram's answer arrives, an answer to
 * any of the earlier ones would already be in.
 */

const MIN_INITIAL_DATAGRAM = 1200;
const QUIC_V1 = 0x00000001;
/** A reserved version (RFC 9000 section 15: 0x?a?a?a?a), which no server supports. */
const UNKNOWN_VERSION = 0x1a2a3a4a;

let store: GatewayStore;
let ca: CertificateAuthority;
let server: QuicGatewayServer;
let port: number;
let paired: Awaited<ReturnType<typeof recordPairedDevice>>;
const acceptedDevices: string[] = [];

before(async () => {
  ca = await CertificateAuthority.create({ clock: systemClock, random: systemRandom });
  store = openGatewayStore(":memory:", systemClock, systemRandom);
  const devices = new DeviceRegistry(store.devices, systemClock);
  const serverCert = await issueLeaf(ca, "server");
  server = new QuicGatewayServer({
    identity: { certChainPem: serverCert.certPem + ca.certPem, keyPem: serverCert.keyPem },
    caPem: ca.certPem,
    authorizePeer: (der) => devices.authorizePeer(der),
    registry: new ConnectionRegistry(),
    onEvent: (event) => {
      if (event.kind === "accepted" && event.peer.identity.kind === "device")
        acceptedDevices.push(event.peer.identity.deviceId);
    },
  });
  ({ port } = await server.listen("127.0.0.1", 0));
  paired = await recordPairedDevice(devices, ca);
});

after(async () => {
  await server?.close();
  store?.close();
});

/** Long-header packet types of QUIC v1 (RFC 9000 section 17.2, bits 0x30 of the first byte). */
const PacketType = { initial: 0x00, zeroRtt: 0x10 } as const;

/**
 * A QUIC long-header packet of exactly `size` bytes (RFC 9000 section 17.2): form and fixed bits set,
 * a 1-byte packet number, an empty token (Initial only); the rest is zero padding. The server answers
 * before decrypting anything, so the payload needs no protection to draw a Retry.
 */
function longHeader(opts: {
  version: number;
  dcid: Buffer;
  scid: Buffer;
  size: number;
  type?: number;
}): Buffer {
  const type = opts.type ?? PacketType.initial;
  const version = Buffer.alloc(4);
  version.writeUInt32BE(opts.version);
  const header = Buffer.concat([
    Buffer.of(0xc0 | type),
    version,
    Buffer.of(opts.dcid.length),
    opts.dcid,
    Buffer.of(opts.scid.length),
    opts.scid,
    type === PacketType.initial ? Buffer.of(0x00) : Buffer.alloc(0), // token length 0
  ]);
  const remaining = opts.size - header.length - 2; // 2-byte varint Length field follows
  assert.ok(remaining >= 1 && remaining < 0x4000, `cannot build a ${opts.size}-byte packet`);
  const length = Buffer.of(0x40 | (remaining >> 8), remaining & 0xff);
  const packet = Buffer.concat([header, length, Buffer.alloc(remaining)]);
  assert.equal(packet.length, opts.size);
  return packet;
}

/** The destination connection id of a long-header answer (Retry or Version Negotiation). */
function answerDcid(answer: Buffer): string {
  assert.ok(answer.length >= 6 && (answer[0]! & 0x80) !== 0, "the answer has a long header");
  const len = answer[5]!;
  return answer.subarray(6, 6 + len).toString("hex");
}

/** A UDP client that records every datagram the server sends it, in order. */
async function rawClient(): Promise<{
  socket: Socket;
  answers: Buffer[];
  send: (packet: Buffer) => Promise<void>;
}> {
  const socket = createSocket("udp4");
  const answers: Buffer[] = [];
  socket.on("message", (msg) => answers.push(msg));
  socket.bind(0, "127.0.0.1");
  await once(socket, "listening");
  const send = (packet: Buffer) =>
    new Promise<void>((resolve, reject) =>
      socket.send(packet, port, "127.0.0.1", (err) => (err ? reject(err) : resolve())),
    );
  return { socket, answers, send };
}

/**
 * Sends the `unanswerable` datagrams (each of its size and type), then a padded Initial of `version`,
 * from one socket, and returns every answer received up to and including the first one: the padded
 * Initial must be the first (and so far only) one answered.
 */
async function sendInOrder(version: number, unanswerable: { size: number; type?: number }[]) {
  const client = await rawClient();
  try {
    const small = unanswerable.map((packet) => ({ ...packet, scid: randomBytes(8) }));
    const padded = { size: MIN_INITIAL_DATAGRAM, scid: randomBytes(8), type: PacketType.initial };
    const firstAnswer = once(client.socket, "message");
    for (const { size, scid, type } of [...small, padded])
      await client.send(longHeader({ version, dcid: randomBytes(8), scid, size, type }));
    const [first] = (await within(firstAnswer, "the answer to the padded datagram")) as [Buffer];
    return {
      first,
      smallScids: small.map((s) => s.scid.toString("hex")),
      paddedScid: padded.scid.toString("hex"),
      answers: [...client.answers],
    };
  } finally {
    client.socket.close();
  }
}

/** The first answer went to the padded Initial, and none of the earlier datagrams had an answer by then. */
function assertOnlyPaddedAnswered(result: Awaited<ReturnType<typeof sendInOrder>>, what: string): void {
  const seen = result.answers.map((a) => `${a.length} bytes to ${answerDcid(a)}`).join(", ");
  assert.equal(answerDcid(result.first), result.paddedScid, `the first answer went to ${what}: ${seen}`);
  for (const scid of result.smallScids)
    assert.ok(!result.answers.some((a) => answerDcid(a) === scid), `${what} was answered: ${seen}`);
}

test("an Initial in a datagram under 1200 bytes gets no Retry; a padded one does", async () => {
  const result = await sendInOrder(QUIC_V1, [{ size: 27 }, { size: MIN_INITIAL_DATAGRAM - 1 }]);
  assertOnlyPaddedAnswered(result, "an undersized Initial");
  // The padded Initial's answer is a Retry (type 11 in a v1 long header).
  assert.equal(result.first[0]! & 0xf0, 0xf0, "a Retry packet");
  assert.equal(result.first.readUInt32BE(1), QUIC_V1);
});

test("an undersized long header of an unknown version gets no Version Negotiation", async () => {
  const result = await sendInOrder(UNKNOWN_VERSION, [{ size: 27 }, { size: MIN_INITIAL_DATAGRAM - 1 }]);
  assertOnlyPaddedAnswered(result, "an undersized datagram of an unknown version");
  const first = result.first;
  // A padded one is answered with Version Negotiation (version 0) listing QUIC v1.
  assert.equal(first.readUInt32BE(1), 0, "a Version Negotiation packet");
  const versionsAt = 6 + first[5]! + 1 + first[6 + first[5]!]!;
  const versions = [];
  for (let at = versionsAt; at + 4 <= first.length; at += 4) versions.push(first.readUInt32BE(at));
  assert.ok(
    versions.includes(QUIC_V1),
    `offered versions: ${versions.map((v) => v.toString(16)).join(", ")}`,
  );
});

test("a 0-RTT packet for an unknown connection is dropped, whatever its size, and crashes nothing", async () => {
  // Unpatched, reading the (absent) token of a 0-RTT packet threw out of the UDP handler: an unhandled
  // rejection, which ends the daemon (the test runner only reports it). The gateway uses no early data,
  // and a connection can only start with an Initial.
  const escaped: unknown[] = [];
  const record = (err: unknown) => escaped.push(err);
  process.on("unhandledRejection", record);
  process.on("uncaughtException", record);
  const result = await sendInOrder(QUIC_V1, [
    { size: 27, type: PacketType.zeroRtt },
    { size: MIN_INITIAL_DATAGRAM, type: PacketType.zeroRtt },
  ]).finally(() => {
    process.off("unhandledRejection", record);
    process.off("uncaughtException", record);
  });
  // The 0-RTT datagrams were handled (and any rejection reported) before the later Initial was answered.
  assert.deepEqual(escaped.map(String), [], "nothing escaped the UDP handler");
  assertOnlyPaddedAnswered(result, "a 0-RTT packet");
  assert.equal(server.state(), "listening");
});

test("a paired device still completes the handshake and a request after undersized datagrams", async () => {
  await sendInOrder(QUIC_V1, [{ size: 27 }]);
  // Only the client's Initial datagrams are padded; its later handshake and short-header packets are
  // small, and reach their connection untouched.
  const client = await QuicNodeClient.connect({
    host: "127.0.0.1",
    port,
    pinnedCa: ca.certPem,
    clientIdentity: { certChainPem: paired.certPem, keyPem: paired.keyPem },
  });
  try {
    // This server has no methods: the request's structured answer proves the round trip.
    await assert.rejects(
      within(client.health(), "the answer to node.health"),
      (err: unknown) => err instanceof QuicTransportError && err.code === "unknown_method",
    );
  } finally {
    client.close();
  }
  assert.deepEqual(acceptedDevices, [paired.deviceId], "the server accepted the paired device");
  assert.equal(server.state(), "listening");
});

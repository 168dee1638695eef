import { performance } from "node:perf_hooks";
import tls from "node:tls";
import { create, toBinary } from "@bufbuild/protobuf";
import type { QUICClient } from "@matrixai/quic";
import { QuicRequestSchema } from "../src/gen/palyra/v1/quic_pb.js";
import { openQuicConnection, QuicNodeClient } from "../src/transport/quic/client.js";
import { encodeFrame, FrameDecoder, readFrames } from "../src/transport/quic/framing.js";
import { encodeMessage } from "../src/transport/quic/messages.js";
import { PROTOCOL_VERSION } from "../src/transport/quic/quic-library.js";
import { QuicGatewayServer } from "../src/transport/quic/server.js";
import { ConnectionRegistry } from "../src/transport/tls/connection-registry.js";
import { latencyOf, latencyRows, ratioRow } from "./figures.js";
import type { BenchResult } from "./harness.js";
import { type Device, startGateway } from "./node-port-fixture.js";

const SUITE = "quic";
const ROUND_TRIPS = 1_000;
const HANDSHAKES = 60;
const WARMUP = 5;

/**
 * The QUIC transport beside `node:tls` in the same run, same certificates, same 4-byte framing:
 * sequential 64-byte round trips on one stream, and new mutually authenticated connections per second
 * (connect, one request answered, close). The QUIC library moves every packet through JavaScript and
 * is known to be far slower; these figures say how much.
 */
export async function run(): Promise<BenchResult[]> {
  const gw = await startGateway();
  const device = await gw.pair();
  const identity = { certChainPem: gw.serverCert.certPem + gw.ca.certPem, keyPem: gw.serverCert.keyPem };
  const quic = new QuicGatewayServer({
    identity,
    caPem: gw.ca.certPem,
    authorizePeer: (der) => gw.devices.authorizePeer(der),
    registry: new ConnectionRegistry(),
  });
  // Echoes each frame after the request: the transport's cost, not a handler's.
  quic.handle(
    "bench.echo",
    async (call) => {
      await call.respond({});
      for await (const message of call.messages(QuicRequestSchema))
        await call.send(QuicRequestSchema, message);
    },
    "device",
  );
  quic.handle(
    "node.health",
    (call) => call.respond({ body: { case: "health", value: { status: "ok" } } }),
    "device",
  );
  const tlsServer = startTlsEcho(identity, gw.ca.certPem);
  try {
    const { port: quicPort } = await quic.listen("127.0.0.1", 0);
    const tlsPort = await new Promise<number>((resolve) =>
      tlsServer.listen(0, "127.0.0.1", () => resolve((tlsServer.address() as { port: number }).port)),
    );

    const tlsRtt = latencyOf(await tlsRoundTrips(tlsPort, device, gw.ca.certPem));
    const quicRtt = latencyOf(await quicRoundTrips(quicPort, device, gw.ca.certPem));
    const tlsHandshake = await timeHandshakes(() => tlsConnectOnce(tlsPort, device, gw.ca.certPem));
    const quicHandshake = await timeHandshakes(() => quicConnectOnce(quicPort, device, gw.ca.certPem));
    return [
      ...latencyRows(SUITE, "64-byte round trip, node:tls mTLS (baseline)", tlsRtt),
      ...latencyRows(SUITE, "64-byte round trip, QUIC stream", quicRtt),
      ratioRow(SUITE, "QUIC round trip p50 per node:tls p50", quicRtt.p50 / tlsRtt.p50),
      {
        suite: SUITE,
        name: "new mTLS connections + 1 request, node:tls (baseline)",
        value: Math.round(tlsHandshake.perSec),
        unit: "conn/s",
        iterations: HANDSHAKES,
        durationMs: tlsHandshake.ms,
      },
      {
        suite: SUITE,
        name: "new QUIC connections + node.health",
        value: Math.round(quicHandshake.perSec),
        unit: "conn/s",
        iterations: HANDSHAKES,
        durationMs: quicHandshake.ms,
      },
      ratioRow(SUITE, "node:tls connections per QUIC connection", tlsHandshake.perSec / quicHandshake.perSec),
    ];
  } finally {
    await quic.close();
    tlsServer.close();
    await gw.close();
  }
}

const PAYLOAD = toBinary(
  QuicRequestSchema,
  create(QuicRequestSchema, { protocolVersion: PROTOCOL_VERSION, method: "x".repeat(58) }),
);

async function timeHandshakes(once: () => Promise<void>): Promise<{ perSec: number; ms: number }> {
  for (let i = 0; i < WARMUP; i++) await once();
  const start = performance.now();
  for (let i = 0; i < HANDSHAKES; i++) await once();
  const ms = performance.now() - start;
  return { perSec: (HANDSHAKES * 1000) / ms, ms };
}

// --- QUIC ---

function quicClient(port: number, device: Device, caPem: string): Promise<QUICClient> {
  return openQuicConnection({
    host: "127.0.0.1",
    port,
    pinnedCa: caPem,
    clientIdentity: { certChainPem: device.certPem, keyPem: device.keyPem },
  });
}

async function quicRoundTrips(port: number, device: Device, caPem: string): Promise<number[]> {
  const client = await quicClient(port, device, caPem);
  try {
    const stream = client.connection.newStream("bidi");
    const writer = stream.writable.getWriter();
    const frames = readFrames(stream.readable);
    const nextFrame = async () => {
      const next = await frames.next();
      if (next.done) throw new Error("the echo stream ended");
      return next.value;
    };
    await writer.write(
      encodeMessage(QuicRequestSchema, { protocolVersion: PROTOCOL_VERSION, method: "bench.echo" }),
    );
    await nextFrame(); // the QuicResponse
    const frame = encodeFrame(PAYLOAD);
    const samples: number[] = [];
    for (let i = 0; i < WARMUP * 10 + ROUND_TRIPS; i++) {
      const start = performance.now();
      await writer.write(frame);
      await nextFrame();
      if (i >= WARMUP * 10) samples.push(performance.now() - start);
    }
    await writer.close();
    return samples;
  } finally {
    await client.destroy({ force: true });
  }
}

async function quicConnectOnce(port: number, device: Device, caPem: string): Promise<void> {
  const client = await QuicNodeClient.connect({
    host: "127.0.0.1",
    port,
    pinnedCa: caPem,
    clientIdentity: { certChainPem: device.certPem, keyPem: device.keyPem },
  });
  try {
    await client.health();
  } finally {
    client.close();
  }
}

// --- node:tls baseline ---

function startTlsEcho(identity: { certChainPem: string; keyPem: string }, caPem: string): tls.Server {
  return tls.createServer(
    {
      key: identity.keyPem,
      cert: identity.certChainPem,
      ca: caPem,
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: "TLSv1.3",
    },
    (socket) => {
      socket.setNoDelay(true);
      const decoder = new FrameDecoder();
      socket.on("data", (chunk) => {
        for (const frame of decoder.push(chunk)) socket.write(encodeFrame(frame));
      });
      socket.on("error", () => undefined);
    },
  );
}

function tlsConnect(port: number, device: Device, caPem: string): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: "127.0.0.1",
      port,
      servername: "localhost",
      ca: caPem,
      cert: device.certPem,
      key: device.keyPem,
      minVersion: "TLSv1.3",
    });
    socket.once("secureConnect", () => {
      socket.setNoDelay(true);
      resolve(socket);
    });
    socket.once("error", reject);
  });
}

function tlsEcho(socket: tls.TLSSocket, decoder: FrameDecoder, frame: Uint8Array): Promise<void> {
  return new Promise((resolve) => {
    const onData = (chunk: Buffer) => {
      if (decoder.push(chunk).length > 0) {
        socket.off("data", onData);
        resolve();
      }
    };
    socket.on("data", onData);
    socket.write(frame);
  });
}

async function tlsRoundTrips(port: number, device: Device, caPem: string): Promise<number[]> {
  const socket = await tlsConnect(port, device, caPem);
  try {
    const decoder = new FrameDecoder();
    const frame = encodeFrame(PAYLOAD);
    const samples: number[] = [];
    for (let i = 0; i < WARMUP * 10 + ROUND_TRIPS; i++) {
      const start = performance.now();
      await tlsEcho(socket, decoder, frame);
      if (i >= WARMUP * 10) samples.push(performance.now() - start);
    }
    return samples;
  } finally {
    socket.destroy();
  }
}

async function tlsConnectOnce(port: number, device: Device, caPem: string): Promise<void> {
  const socket = await tlsConnect(port, device, caPem);
  await tlsEcho(socket, new FrameDecoder(), encodeFrame(PAYLOAD));
  socket.destroy();
}

import * as http2 from "node:http2";
import * as tls from "node:tls";
import * as grpc from "@grpc/grpc-js";
import { startGateway } from "../node-port-fixture.js";

/**
 * The server side of `connection-memory.bench.ts`, in its own process so that its RSS is only what the
 * connections cost. Modes, each a layer of the gateway's node port:
 *   tls      node:tls with the gateway's TLS settings (1.3, client certificate requested), idle sockets
 *   h2       node:http2 on those sockets, one open request stream each
 *   grpc     stock grpc-js (connection injector, as the gateway uses it), one open bidi call each
 *   gateway  the gateway's NodePortServer, NodeService and NodeRuntime: RegisterNode, Connect, Hello
 * Every mode first records `count` paired devices with their own certificates (so the registry is in
 * the baseline), sends them to the parent, and answers "measure" with its memory after a full GC.
 */

const [mode, countArg] = process.argv.slice(2);
const count = Number(countArg);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with --expose-gc");
if (!["tls", "h2", "grpc", "gateway"].includes(mode ?? "") || !(count > 0)) throw new Error("bad arguments");

const gateway = await startGateway();
const identities = [];
for (let i = 0; i < count; i++) {
  const d = await gateway.pair();
  identities.push({ deviceId: d.deviceId, keyPem: d.keyPem, certPem: d.certPem });
}
const held: unknown[] = [];
const tlsOptions: tls.TlsOptions = {
  cert: gateway.serverCert.certPem + gateway.ca.certPem,
  key: gateway.serverCert.keyPem,
  ca: gateway.ca.certPem,
  minVersion: "TLSv1.3",
  requestCert: true,
  rejectUnauthorized: false,
  ALPNProtocols: ["h2"],
};

let port = gateway.port;
if (mode !== "gateway") {
  const server = tls.createServer(tlsOptions);
  if (mode === "tls") server.on("secureConnection", (socket) => held.push(socket));
  if (mode === "h2") {
    const h2 = http2.createServer();
    h2.on("stream", (stream) => {
      held.push(stream);
      stream.respond({ ":status": 200, "content-type": "application/grpc" });
      stream.on("data", () => {});
    });
    server.on("secureConnection", (socket) => h2.emit("connection", socket));
  }
  if (mode === "grpc") {
    const service = new grpc.Server();
    const bytes = (b: Buffer) => b;
    service.addService(
      {
        connect: {
          path: "/palyra.v1.NodeService/Connect",
          requestStream: true,
          responseStream: true,
          requestSerialize: bytes,
          requestDeserialize: bytes,
          responseSerialize: bytes,
          responseDeserialize: bytes,
        },
      },
      {
        connect: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
          held.push(call);
          call.on("data", () => {});
          call.write(Buffer.alloc(8));
        },
      },
    );
    const injector = service.createConnectionInjector(grpc.ServerCredentials.createInsecure());
    server.on("secureConnection", (socket) => injector.injectConnection(socket));
  }
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as { port: number }).port;
}

process.send!({ type: "ready", port, caPem: gateway.ca.certPem, identities });
process.on("message", (message) => {
  if (message !== "measure") return;
  gc();
  gc();
  const usage = process.memoryUsage();
  process.send!({ type: "memory", rss: usage.rss, heapUsed: usage.heapUsed, held: held.length });
});

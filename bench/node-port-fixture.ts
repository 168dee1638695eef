import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { systemClock } from "../src/common/clock.js";
import { limits } from "../src/common/limits.js";
import { systemRandom } from "../src/common/random.js";
import { systemScheduler } from "../src/common/scheduler.js";
import { DeviceRotations } from "../src/daemon/device-rotations.js";
import { NodeRuntime } from "../src/daemon/node-runtime/node-runtime.js";
import { registerNodeService } from "../src/daemon/node-runtime/node-service.js";
import { NodeService } from "../src/gen/palyra/v1/node_pb.js";
import { CertificateAuthority } from "../src/identity/ca.js";
import { DeviceRegistry } from "../src/identity/device-registry.js";
import { CertificateRotation } from "../src/identity/rotation.js";
import { type GatewayStore, openGatewayStore } from "../src/store/gateway-store.js";
import { NodePortClient } from "../src/transport/grpc/client.js";
import type { RpcError } from "../src/transport/grpc/rpc-error.js";
import { NodePortServer, type ServiceHandlers } from "../src/transport/grpc/server.js";
import type { BidiCall } from "../src/transport/grpc/service-definition.js";
import { type Credential, issueLeaf, recordPairedDevice } from "../test/helpers/pki.js";

/**
 * An in-process gateway for the node-port benchmarks, wired as `src/daemon/gateway.ts` wires it (CA,
 * DeviceRegistry on an on-disk SQLite store, NodePortServer, NodeRuntime, registerNodeService), plus
 * light simulated nodes: a NodePortClient with the device's certificate and one Connect session.
 */

export type Device = Credential & { deviceId: string };

export interface BenchGateway {
  ca: CertificateAuthority;
  devices: DeviceRegistry;
  runtime: NodeRuntime;
  server: NodePortServer;
  port: number;
  serverCert: Credential;
  pair(): Promise<Device>;
  client(device?: Device, port?: number): NodePortClient;
  /** A second node port with the same TLS, allowlist and policy but trivial handlers (a baseline). */
  startBarePort(): Promise<{ port: number; close(): Promise<void> }>;
  close(): Promise<void>;
}

export const registerRequest = (deviceId: string) => ({
  deviceId,
  platform: "linux",
  version: "bench",
  capabilities: [{ name: "echo", requiresMediation: false, description: "returns its input" }],
});

const POLICY = {
  registerNode: "device",
  connect: "device",
  renewCertificate: "device",
  deregister: "device",
} as const;

/** Constant RegisterNode; Connect answers Hello with Config and each Heartbeat with a Cancel. */
const BARE_HANDLERS: ServiceHandlers<(typeof NodeService)["method"]> = {
  registerNode: () => ({ heartbeatIntervalMs: 10_000, renewAfterMs: 60_000n }),
  renewCertificate: () => ({}),
  deregister: () => ({}),
  connect: async (stream) => {
    for await (const message of stream) {
      if (message.body.case === "hello")
        await stream.send({ body: { case: "config", value: { heartbeatIntervalMs: 10_000 } } });
      else if (message.body.case === "heartbeat")
        await stream.send({ body: { case: "cancel", value: { requestId: "ping", reason: "pong" } } });
    }
  },
};

export async function startGateway(): Promise<BenchGateway> {
  // On disk, as in the daemon: WAL with synchronous=FULL, so every write pays its fsync.
  const dir = mkdtempSync(join(tmpdir(), "palyra-bench-"));
  let store: GatewayStore | undefined;
  const servers: NodePortServer[] = [];
  try {
    const ca = await CertificateAuthority.create({ clock: systemClock, random: systemRandom });
    store = openGatewayStore(join(dir, "gateway.db"), systemClock, systemRandom);
    const devices = new DeviceRegistry(store.devices, systemClock);
    const runtime = new NodeRuntime({
      repo: store.nodes,
      clock: systemClock,
      scheduler: systemScheduler,
      random: systemRandom,
    });
    const serverCert = await issueLeaf(ca, "server");
    const newServer = () => {
      const server = new NodePortServer({
        identity: { certChainPem: serverCert.certPem + ca.certPem, keyPem: serverCert.keyPem },
        caPem: ca.certPem,
        authorizePeer: (der) => devices.authorizePeer(der),
      });
      servers.push(server);
      return server;
    };
    const server = newServer();
    const clientCertificateLifetimeMs = limits.clientCertificateDefaultLifetimeMs;
    registerNodeService(server, {
      runtime,
      registry: devices,
      rotations: new DeviceRotations({
        rotation: new CertificateRotation({
          ca,
          registry: devices,
          clock: systemClock,
          clientCertificateLifetimeMs,
        }),
        registry: devices,
        runtime,
        scheduler: systemScheduler,
      }),
      clock: systemClock,
      clientCertificateLifetimeMs,
      caCertPem: ca.certPem,
    });
    const { port } = await server.listen("127.0.0.1", 0);
    const opened = store;
    return {
      ca,
      devices,
      runtime,
      server,
      port,
      serverCert,
      pair: () => recordPairedDevice(devices, ca),
      client: (device, toPort = port) =>
        new NodePortClient({
          host: "127.0.0.1",
          port: toPort,
          serverName: "localhost",
          pinnedCa: ca.certPem,
          ...(device ? { clientIdentity: { certChainPem: device.certPem, keyPem: device.keyPem } } : {}),
        }),
      startBarePort: async () => {
        const bare = newServer();
        bare.addService(NodeService, BARE_HANDLERS, POLICY);
        const address = await bare.listen("127.0.0.1", 0);
        return { port: address.port, close: () => bare.close(100) };
      },
      close: async () => {
        await Promise.all(servers.map((s) => s.close(100)));
        opened.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await Promise.all(servers.map((s) => s.close(0)));
    store?.close();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

type ConnectMethod = (typeof NodeService)["method"]["connect"];

export interface Session {
  stream: BidiCall<ConnectMethod["input"], ConnectMethod["output"]>;
  /** When the client saw the stream end, and with which status (0 = OK). */
  ended: Promise<{ at: number; status: number }>;
}

export interface SimNode {
  deviceId: string;
  client: NodePortClient;
  session: Session;
  close(): void;
}

/** Connect + Hello, waits for Config, then answers every Dispatch with a CapabilityResult echoing it. */
export async function openSession(client: NodePortClient, deviceId: string): Promise<Session> {
  const stream = client.service(NodeService).connect();
  const ended = stream.done.then(
    () => ({ at: performance.now(), status: 0 }),
    (err: RpcError) => ({ at: performance.now(), status: err.status }),
  );
  const incoming = stream[Symbol.asyncIterator]();
  await stream.send({ body: { case: "hello", value: { deviceId } } });
  const first = await incoming.next();
  if (first.value?.body.case !== "config") throw new Error(`expected Config, got ${first.value?.body.case}`);
  void (async () => {
    for (;;) {
      const next = await incoming.next();
      if (next.done) return;
      const body = next.value.body;
      if (body.case !== "dispatch") continue;
      const { requestId, inputJson } = body.value;
      const value = { requestId, success: true, outputJson: inputJson, error: "" };
      stream.send({ body: { case: "capabilityResult", value } }).catch(() => {});
    }
  })().catch(() => {}); // the end status is reported through `ended`
  return { stream, ended };
}

/** A simulated node: its own mTLS connection, RegisterNode with "echo", then one Connect session. */
export async function connectNode(gw: BenchGateway, device: Device): Promise<SimNode> {
  const client = gw.client(device);
  try {
    await client.service(NodeService).registerNode(registerRequest(device.deviceId));
    const node: SimNode = {
      deviceId: device.deviceId,
      client,
      session: await openSession(client, device.deviceId),
      close: () => {
        node.session.stream.cancel();
        client.close();
      },
    };
    return node;
  } catch (err) {
    client.close();
    throw err;
  }
}

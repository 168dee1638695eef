import {
  Client,
  credentials,
  Server,
  ServerCredentials,
  type ServerUnaryCall,
  type sendUnaryData,
  status,
} from "@grpc/grpc-js";
import { limits } from "../src/common/limits.js";
import { NodeService } from "../src/gen/palyra/v1/node_pb.js";
import { createServiceClient, serviceDefinition } from "../src/transport/grpc/service-definition.js";
import type { BenchGateway, Device } from "./node-port-fixture.js";

/**
 * The baseline for unary calls: stock grpc-js servers over mutual TLS (grpc-js's own TLS, client
 * certificate required and checked against our CA), the same protobuf-es codecs and the same typed
 * client, but none of our layer (no TLS terminator of ours, no allowlist, no policy interceptor).
 * `real` does RegisterNode's work on the gateway's store (registry read + node upsert with audit);
 * `noop` answers a constant; `connectAndRegister` opens a connection of its own for one `noop` call.
 */

type Unary = (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => void;
interface RegisterRequest {
  deviceId: string;
  platform: string;
  version: string;
  capabilities: { name: string; requiresMediation: boolean; description: string }[];
}

/** SNI and the name check use "localhost" (SNI may not carry an IP address). */
const CLIENT_OPTIONS = {
  "grpc.ssl_target_name_override": "localhost",
  "grpc.default_authority": "localhost",
};

export async function startPlainGrpc(gw: BenchGateway, device: Device) {
  const real: Unary = (call, callback) => {
    const req = call.request as RegisterRequest;
    gw.devices.get(req.deviceId).then(
      async (found) => {
        const { heartbeatIntervalMs } = await gw.runtime.register(req.deviceId, {
          platform: req.platform,
          version: req.version,
          capabilities: req.capabilities.map(({ name, requiresMediation, description }) => ({
            name,
            requiresMediation,
            description,
          })),
        });
        const expires = found?.current.expiresAt ?? Date.now();
        const renewAfterMs = Math.max(0, Math.floor((expires - Date.now()) * (1 - limits.renewAtFraction)));
        callback(null, { heartbeatIntervalMs, renewAfterMs: BigInt(renewAfterMs) });
      },
      (err: unknown) => callback({ code: status.INTERNAL, details: String(err) }),
    );
  };
  const noop: Unary = (_call, callback) =>
    callback(null, { heartbeatIntervalMs: 10_000, renewAfterMs: 60_000n });

  const servers: Server[] = [];
  const clients: Client[] = [];
  const clientCredentials = () =>
    credentials.createSsl(
      Buffer.from(gw.ca.certPem),
      Buffer.from(device.keyPem),
      Buffer.from(device.certPem),
    );
  const serve = async (registerNode: Unary) => {
    const server = new Server();
    servers.push(server);
    server.addService(serviceDefinition(NodeService), { registerNode });
    const creds = ServerCredentials.createSsl(
      Buffer.from(gw.ca.certPem),
      [
        {
          cert_chain: Buffer.from(gw.serverCert.certPem + gw.ca.certPem),
          private_key: Buffer.from(gw.serverCert.keyPem),
        },
      ],
      true,
    );
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", creds, (err, p) => (err ? reject(err) : resolve(p))),
    );
    const client = new Client(`127.0.0.1:${port}`, clientCredentials(), CLIENT_OPTIONS);
    clients.push(client);
    return { port, rpc: createServiceClient(NodeService, client) };
  };
  const realServer = await serve(real);
  const noopServer = await serve(noop);
  return {
    real: realServer.rpc,
    noop: noopServer.rpc,
    /**
     * One stock grpc-js connection, as the node port's connection figure makes one: a new client with
     * its own credentials (so its own TLS context), the constant RegisterNode, close.
     */
    connectAndRegister: async (request: RegisterRequest) => {
      const client = new Client(`127.0.0.1:${noopServer.port}`, clientCredentials(), CLIENT_OPTIONS);
      try {
        await createServiceClient(NodeService, client).registerNode(request);
      } finally {
        client.close();
      }
    },
    close: async () => {
      for (const c of clients) c.close();
      await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.tryShutdown(() => resolve()))));
    },
  };
}

import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { systemClock } from "../../src/common/clock.js";
import { systemRandom } from "../../src/common/random.js";
import { DeviceIdentity } from "../../src/identity/device-identity.js";
import { DevicePairingClient } from "../../src/pairing/device-client.js";
import type { DeviceCredentials } from "../../src/pairing/device-store.js";
import { parseQrUri } from "../../src/pairing/qr-uri.js";
import { GrpcPairingTransport } from "../../src/transport/grpc/pairing-client.js";
import { type DaemonProcess, startDaemon, testEnv } from "./cli.js";
import { type PgServer, startPostgres } from "./postgres-server.js";

/**
 * Several real gateway daemons on one real PostgreSQL server (tests and `npm run bench -- cluster`),
 * every listener on port 0, each gateway with its own state root, all with one CA passphrase.
 */
/** An admin API answer's JSON; each test reads the fields it expects of it. */
// biome-ignore lint/suspicious/noExplicitAny: parsed JSON of several shapes, checked by the tests' assertions
export type AdminBody = Record<string, any>;

export interface Cluster {
  root: string;
  env: NodeJS.ProcessEnv;
  gateways: Map<string, DaemonProcess>;
  start(name: string, extraEnv?: Record<string, string>): Promise<DaemonProcess>;
  admin(
    name: string,
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: AdminBody }>;
  /** A device paired (QR code, its own keys) through gateway `via` and approved through `approver`. */
  pairDevice(
    via: string,
    approver: string,
    clientKind?: string,
  ): Promise<{
    identity: DeviceIdentity;
    credentials: DeviceCredentials;
  }>;
  close(): Promise<void>;
}

/** Polls a condition the cluster reaches by itself (presence is re-read every 2 s), with a deadline. */
export async function clusterReaches(condition: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > until) throw new Error("the cluster did not reach the expected state in time");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export async function startCluster(prefix: string): Promise<Cluster> {
  const root = mkdtempSync(join(tmpdir(), prefix));
  const pg: PgServer = await startPostgres();
  const url = await pg.createDatabase("cluster");
  const env = testEnv({
    PALYRA_CA_PASSPHRASE: "correct horse battery staple",
    PALYRA_PAIRING_BEGINS_PER_ADDRESS_PER_MINUTE: "1000",
    PALYRA_PAIRING_BEGINS_PER_MINUTE: "1000",
  });
  const gateways = new Map<string, DaemonProcess>();
  const tokens = new Map<string, string>();
  const cluster: Cluster = {
    root,
    env,
    gateways,
    async start(name, extraEnv = {}) {
      const daemon = await startDaemon(join(root, name), { ...env, ...extraEnv }, ["--database-url", url]);
      gateways.set(name, daemon);
      tokens.set(name, readFileSync(join(root, name, "admin.token"), "utf8").trim());
      return daemon;
    },
    async admin(name, method, path, body) {
      const daemon = gateways.get(name)!;
      const res = await fetch(new URL(path, daemon.summary.admin_url), {
        method,
        headers: { authorization: `Bearer ${tokens.get(name)}`, "content-type": "application/json" },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return { status: res.status, body: (await res.json()) as AdminBody };
    },
    async pairDevice(via, approver, clientKind = "node") {
      const minted = await cluster.admin(via, "POST", "/v1/pairing/codes", {
        method: "qr",
        client_kind: clientKind,
      });
      const qr = parseQrUri(minted.body.qr_uri as string);
      const address = gateways.get(via)!.summary.node_address;
      const [host, port] = address.split(":");
      const transport = new GrpcPairingTransport(host!, Number(port));
      try {
        const identity = DeviceIdentity.generate(systemClock, systemRandom);
        const client = new DevicePairingClient(transport, identity, systemClock, systemRandom);
        const pending = await client.pair({
          codeId: qr.codeId,
          secret: qr.secret,
          clientKind,
          deviceName: `cluster-${identity.deviceId.slice(-6)}`,
          platform: "linux",
        });
        const approved = await cluster.admin(
          approver,
          "POST",
          `/v1/pairing/requests/${pending.requestId}/approve`,
          {},
        );
        if (approved.status !== 200) throw new Error(`approval failed: ${JSON.stringify(approved.body)}`);
        const material = await client.waitForDecision(pending);
        if (material.state !== "completed") throw new Error(`pairing ended ${material.state}`);
        return {
          identity,
          credentials: {
            clientKeyPem: pending.keyPair.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
            clientCertPem: material.clientCertPem!,
            caCertPem: material.caCertPem!,
            gateway: address,
          },
        };
      } finally {
        transport.close();
      }
    },
    async close() {
      await Promise.all([...gateways.values()].map((g) => g.stop()));
      await pg.stop();
      rmSync(root, { recursive: true, force: true });
    },
  };
  return cluster;
}

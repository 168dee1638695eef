import assert from "node:assert/strict";
import { afterEach, test } from "node:test";
import { issueLeaf, WAIT_MS, within } from "../../../test/helpers/pki.js";
import { type Clock, ManualClock, systemClock } from "../../common/clock.js";
import { newId } from "../../common/ids.js";
import { systemRandom } from "../../common/random.js";
import { PairingService } from "../../gen/palyra/v1/pairing_pb.js";
import { CertificateAuthority } from "../../identity/ca.js";
import type { DeviceRepository } from "../../identity/device-records.js";
import { DeviceRegistry, trustedCertificateOf } from "../../identity/device-registry.js";
import { openGatewayStore } from "../../store/gateway-store.js";
import { type ConnectionEndpoints, ConnectionRegistry } from "../tls/connection-registry.js";
import type { ConnectionPeer } from "../tls/peer-identity.js";
import { NodePortClient } from "./client.js";
import { RpcError, RpcStatus } from "./rpc-error.js";
import { NodePortServer } from "./server.js";

/**
 * The per-call allowlist check with its fast paths (DeviceRegistry's memo of accepted certificates,
 * the connection's certificate compared once per connection): whatever is remembered, a revocation,
 * an expiry or the end of a rotation overlap answers the very next call on an open connection.
 */

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

let ca: CertificateAuthority | undefined;
async function authority(): Promise<CertificateAuthority> {
  ca ??= await CertificateAuthority.create({ clock: systemClock, random: systemRandom });
  return ca;
}

/** A node port whose registry runs on `clock`, one paired device, and its client. */
async function setup(options: { clock?: Clock; lifetimeMs?: number; registry?: ConnectionRegistry } = {}) {
  const clock = options.clock ?? systemClock;
  const auth = await authority();
  const store = openGatewayStore(":memory:", clock, systemRandom);
  cleanups.push(() => store.close());
  let reads = 0;
  const repo = new Proxy(store.devices, {
    get(target, prop) {
      const value = Reflect.get(target, prop) as (...args: unknown[]) => unknown;
      if (prop === "findByCertificate" || prop === "findRevokedCertificate") reads++;
      return value.bind(target);
    },
  }) as DeviceRepository;
  const devices = new DeviceRegistry(repo, clock);
  const serverCert = await issueLeaf(auth, "server");
  const server = new NodePortServer({
    identity: { certChainPem: serverCert.certPem + auth.certPem, keyPem: serverCert.keyPem },
    caPem: auth.certPem,
    authorizePeer: (der) => devices.authorizePeer(der),
    ...(options.registry ? { registry: options.registry } : {}),
  });
  server.addService(
    PairingService,
    {
      beginPairing: () => ({}),
      exchangePairing: () => ({}),
      completePairing: () => ({}),
      getPairingStatus: (_request, context) => ({
        reason: context.peer.kind === "device" ? context.peer.deviceId : "",
      }),
    },
    {
      beginPairing: "anonymous",
      exchangePairing: "device",
      completePairing: "anonymous",
      getPairingStatus: "device",
    },
  );
  const { port } = await server.listen("127.0.0.1", 0);
  cleanups.push(() => server.close(100));
  const device = await issueLeaf(auth, "client");
  const deviceId = newId(systemClock, systemRandom);
  const trusted = trustedCertificateOf(device.certPem);
  await devices.recordPairing({
    deviceId,
    clientKind: "node",
    deviceName: "worker",
    platform: "linux",
    identityPublicKey: Buffer.alloc(32, 7),
    certificate:
      options.lifetimeMs === undefined
        ? trusted
        : { ...trusted, expiresAt: clock.now() + options.lifetimeMs },
  });
  const client = new NodePortClient({
    host: "127.0.0.1",
    port,
    serverName: "localhost",
    pinnedCa: auth.certPem,
    clientIdentity: { certChainPem: device.certPem, keyPem: device.keyPem },
  });
  cleanups.push(() => client.close());
  const rpc = client.service(PairingService);
  return {
    server,
    devices,
    reads: () => reads,
    deviceId,
    status: () => within(rpc.getPairingStatus({}), "a device call", WAIT_MS),
  };
}

async function denied(call: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(call, (err: unknown) => {
    assert.ok(err instanceof RpcError, String(err));
    assert.equal(err.status, RpcStatus.PERMISSION_DENIED, err.message);
    assert.match(err.message, pattern);
    return true;
  });
}

test("repeated device calls skip the database; a revocation is refused on the very next call", async () => {
  const s = await setup();
  await s.status();
  const afterFirst = s.reads();
  for (let i = 0; i < 5; i++) await s.status();
  assert.equal(s.reads(), afterFirst, "calls after the first are answered from the allowlist memo");
  await s.devices.revoke(s.deviceId, "lost");
  await denied(s.status(), /certificate_revoked/);
  // The connection is still open: the refusal came from the per-call check.
  assert.equal(s.server.connections.connectionCount(s.deviceId), 1);
});

test("a device whose certificate expires is refused on its next call (injected clock)", async () => {
  const clock = new ManualClock(Date.now());
  const s = await setup({ clock, lifetimeMs: 60_000 });
  await s.status();
  await s.status();
  clock.advance(59_999);
  await s.status();
  clock.advance(1);
  await denied(s.status(), /certificate_expired/);
});

test("the previous certificate is refused on its next call once the rotation overlap ends", async () => {
  const clock = new ManualClock(Date.now());
  const s = await setup({ clock, lifetimeMs: 10 * 60_000 });
  await s.status();
  const next = await issueLeaf(await authority(), "client");
  const rotated = await s.devices.recordRotation(s.deviceId, trustedCertificateOf(next.certPem));
  const overlapEnd = rotated.previous?.acceptedUntil ?? 0;
  await s.status(); // the old certificate, inside the overlap
  clock.set(overlapEnd - 1);
  await s.status();
  clock.set(overlapEnd);
  await denied(s.status(), /rotation_overlap_ended/);
});

test("a connection record whose certificate is not the connection's is refused", async () => {
  let swap: Buffer | undefined;
  class Tampered extends ConnectionRegistry {
    override lookup(endpoints: ConnectionEndpoints): ConnectionPeer | undefined {
      const peer = super.lookup(endpoints);
      // A new record (as a bug in the endpoint map would give) that names another certificate.
      return peer && swap ? { ...peer, leafDer: swap } : peer;
    }
  }
  const s = await setup({ registry: new Tampered() });
  await s.status();
  await s.status();
  swap = (await issueLeaf(await authority(), "client")).der;
  await denied(s.status(), /does not match/);
});

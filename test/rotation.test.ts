import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { ManualClock } from "../src/common/clock.js";
import { SeededRandom, systemRandom } from "../src/common/random.js";
import { ManualScheduler } from "../src/common/scheduler.js";
import { certificateFingerprint } from "../src/crypto/fingerprint.js";
import { resolveConfig } from "../src/daemon/config.js";
import { Gateway } from "../src/daemon/gateway.js";
import { createLogger } from "../src/daemon/logger.js";
import { NodeService } from "../src/gen/palyra/v1/node_pb.js";
import { createCsr, generateP256KeyPair } from "../src/identity/csr.js";
import { DeviceIdentity } from "../src/identity/device-identity.js";
import { trustedCertificateOf } from "../src/identity/device-registry.js";
import { InMemorySecretStore } from "../src/identity/secret-store.js";
import { BUILT_IN_CAPABILITIES } from "../src/node-host/capabilities.js";
import { NodeSession } from "../src/node-host/node-session.js";
import {
  type DeviceCredentials,
  loadDeviceCredentials,
  storeDeviceCredentials,
} from "../src/pairing/device-store.js";
import { NodePortClient } from "../src/transport/grpc/client.js";
import type { RpcError } from "../src/transport/grpc/rpc-error.js";
import { testEnv } from "./helpers/cli.js";
import { within } from "./helpers/pki.js";

/**
 * Rotation end to end, in one process with the real composition root, real TLS and real gRPC, and an
 * injected clock and scheduler shared by the gateway and the node host: 3-minute certificates, time
 * moved on by hand. The node must renew before expiry without its session going down, and the old
 * certificate must stop working once the overlap is over.
 */

const MINUTE = 60_000;
const root = mkdtempSync(join(tmpdir(), "palyra-rotation-"));
// Start at the real time: the node's TLS stack checks the server certificate against the real clock.
const clock = new ManualClock(Date.now());
const scheduler = new ManualScheduler(clock);
let gateway: Gateway;
let token: string;
let identity: DeviceIdentity;
let paired: DeviceCredentials;
const store = new InMemorySecretStore();
const events: { kind: string; detail?: string }[] = [];
let session: NodeSession;

function waitForEvent(kind: string, since = events.length): Promise<{ kind: string; detail?: string }> {
  return within(
    new Promise((resolve) => {
      const check = () => {
        const found = events.slice(since).find((e) => e.kind === kind);
        if (found) resolve(found);
        else waiters.push(check);
      };
      check();
    }),
    `node event ${kind}`,
    15_000,
  );
}
const waiters: (() => void)[] = [];
// What the node advertises: a second registration by the same device replaces the list.
const advertised = BUILT_IN_CAPABILITIES.map((c) => ({
  name: c.name,
  requiresMediation: c.requiresMediation,
  description: c.description,
}));

async function admin(method: string, path: string, body?: unknown) {
  const res = await fetch(new URL(path, gateway.adminUrl), {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

function clientWith(credentials: DeviceCredentials) {
  const [host, port] = gateway.nodeAddress.split(":");
  return new NodePortClient({
    host: host!,
    port: Number(port),
    pinnedCa: credentials.caCertPem,
    clientIdentity: { certChainPem: credentials.clientCertPem, keyPem: credentials.clientKeyPem },
  });
}

before(async () => {
  gateway = await Gateway.start({
    stateRoot: join(root, "gateway"),
    config: resolveConfig({
      admin: { host: "127.0.0.1", port: 0 },
      node: { host: "127.0.0.1", port: 0 },
      // Every listener on port 0, so the suite runs beside a daemon on the default ports.
      quic: { host: "127.0.0.1", port: 0 },
      log_level: "silent",
      client_certificate_lifetime_minutes: 3,
    }),
    logger: createLogger("silent"),
    clock,
    random: systemRandom,
    scheduler,
    env: testEnv(),
  });
  token = readFileSync(join(root, "gateway", "admin.token"), "utf8").trim();
  // Paired as approval would: the device's own keys, a 3-minute certificate from the gateway's CA.
  identity = DeviceIdentity.generate(clock, systemRandom);
  const keys = generateP256KeyPair();
  const issued = await gateway.ca.issueClientCertificate(await createCsr(keys.privateKey, keys.publicKey), {
    deviceId: identity.deviceId,
    lifetimeMs: 3 * MINUTE,
  });
  await gateway.devices.recordPairing({
    deviceId: identity.deviceId,
    clientKind: "node",
    deviceName: "rotating",
    platform: "linux",
    identityPublicKey: identity.publicKey,
    certificate: trustedCertificateOf(issued.pem),
  });
  paired = {
    clientKeyPem: keys.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    clientCertPem: issued.pem,
    caCertPem: gateway.ca.certPem,
    gateway: gateway.nodeAddress,
  };
  await storeDeviceCredentials(store, paired);
  session = new NodeSession({
    deviceId: identity.deviceId,
    credentials: paired,
    sign: (m) => identity.sign(m),
    saveCredentials: (c) => storeDeviceCredentials(store, c),
    capabilities: BUILT_IN_CAPABILITIES,
    consent: async () => false,
    clock,
    scheduler,
    random: new SeededRandom("rotation-e2e"),
    onEvent: (e) => {
      events.push(e);
      for (const w of waiters.splice(0)) w();
    },
  });
  void session.start();
  await waitForEvent("connected", 0);
});

after(async () => {
  await session?.stop();
  await gateway?.stop();
  rmSync(root, { recursive: true, force: true });
});

test("a node with a 3-minute certificate renews before expiry without dropping its session; the old certificate stops after the overlap", async () => {
  const start = clock.now();
  const firstFingerprint = certificateFingerprint(new X509Certificate(paired.clientCertPem).raw);
  const planned = session.info().nextRenewalAt!;
  assert.ok(planned >= start + 108_000 && planned <= start + 132_000, "renewal at 2 min +-10%");

  // Keep a connection on the old certificate open, with a stream, to watch the sweep end it.
  const oldClient = clientWith(paired);
  const oldRpc = oldClient.service(NodeService);
  await oldRpc.registerNode({
    deviceId: identity.deviceId,
    platform: "linux",
    version: "t",
    capabilities: advertised,
  });
  const since = events.length;
  scheduler.advance(planned - start + 1_000);
  await waitForEvent("handover", since);
  assert.deepEqual(
    events
      .slice(since)
      .map((e) => e.kind)
      .filter((k) => k === "disconnected" || k === "backoff"),
    [],
    "the session never went down",
  );
  assert.equal(session.state(), "connected");

  const renewed = session.credentials();
  assert.notEqual(renewed.clientCertPem, paired.clientCertPem);
  assert.notEqual(renewed.clientKeyPem, paired.clientKeyPem, "a new key, not only a new certificate");
  assert.deepEqual(await loadDeviceCredentials(store), renewed, "stored before use");
  const device = await gateway.devices.get(identity.deviceId);
  assert.equal(device?.previous?.fingerprint, firstFingerprint);
  assert.ok(device!.current.expiresAt > clock.now() + 2 * MINUTE);

  // Work flows over the renewed connection.
  const echo = await admin("POST", `/v1/nodes/${identity.deviceId}/invoke`, {
    capability: "echo",
    input: { after: "renewal" },
    timeout_seconds: 5,
  });
  assert.equal(echo.body.state, "succeeded", JSON.stringify(echo.body));
  assert.deepEqual(echo.body.output, { after: "renewal" });

  // Inside the overlap the old certificate still works...
  await oldRpc.registerNode({
    deviceId: identity.deviceId,
    platform: "linux",
    version: "t",
    capabilities: advertised,
  });
  const oldStream = oldRpc.connect();
  await oldStream.send({ body: { case: "hello", value: { deviceId: identity.deviceId } } });
  const oldEnded = oldStream.done.then(
    () => "ok",
    (e: RpcError) => e.message,
  );
  // ...and once the overlap is over (30 s: half the old certificate's remaining minute) it does not:
  // the sweep closes its live connection and a new one is refused.
  const overlapEnd = device!.previous!.acceptedUntil;
  assert.ok(overlapEnd < device!.previous!.expiresAt, "the overlap ends before the old certificate expires");
  scheduler.advance(overlapEnd - clock.now() + 15_000);
  const ended = await within(oldEnded, "the old certificate's stream to be cut");
  assert.notEqual(ended, "ok");
  oldClient.close();
  const late = clientWith(paired);
  await assert.rejects(
    late
      .service(NodeService)
      .registerNode({ deviceId: identity.deviceId, platform: "l", version: "t", capabilities: advertised }),
  );
  late.close();
  assert.equal(session.state(), "connected");
  const again = await admin("POST", `/v1/nodes/${identity.deviceId}/invoke`, {
    capability: "echo",
    input: 2,
  });
  assert.equal(again.body.state, "succeeded", JSON.stringify(again.body));
});

test("devices rotate: the gateway asks the connected node to renew and answers with the new certificate", async () => {
  const before = session.credentials().clientCertPem;
  const since = events.length;
  const rotated = await admin("POST", `/v1/devices/${identity.deviceId}/rotate`, { reason: "test" });
  assert.equal(rotated.status, 200, JSON.stringify(rotated.body));
  await waitForEvent("handover", since);
  assert.notEqual(session.credentials().clientCertPem, before);
  assert.equal(
    rotated.body.certificate_fingerprint,
    certificateFingerprint(new X509Certificate(session.credentials().clientCertPem).raw),
  );
  assert.equal(rotated.body.rotated_from, certificateFingerprint(new X509Certificate(before).raw));
  const offline = await admin("POST", "/v1/devices/01JBBBBBBBBBBBBBBBBBBBBBBB/rotate", {});
  assert.equal(offline.status, 404);
});

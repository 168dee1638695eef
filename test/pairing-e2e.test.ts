import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createPrivateKey, createPublicKey, X509Certificate } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { PairingService } from "../src/gen/palyra/v1/pairing_pb.js";
import { DeviceIdentity } from "../src/identity/device-identity.js";
import { openFilesystemSecretStore } from "../src/identity/filesystem-secret-store.js";
import { loadDeviceCredentials } from "../src/pairing/device-store.js";
import { NodePortClient } from "../src/transport/grpc/client.js";
import { type RpcError, RpcStatus } from "../src/transport/grpc/rpc-error.js";
import { type DaemonProcess, runCli, startDaemon, startPair, testEnv } from "./helpers/cli.js";
import { mintCode } from "./helpers/devices.js";

const root = mkdtempSync(join(tmpdir(), "palyra-e2e-"));
const gatewayRoot = join(root, "gateway");
let daemon: DaemonProcess;
let nodeAddress: string;
before(async () => {
  daemon = await startDaemon(gatewayRoot);
  nodeAddress = daemon.summary.node_address;
});
after(async () => {
  await daemon?.stop();
  rmSync(root, { recursive: true, force: true });
});

const mint = (method: "pin" | "qr") => mintCode(gatewayRoot, method, "cli");

test("PIN pairing end to end over real TLS: approve, then the device holds a CA-issued certificate for its own key", async () => {
  const code = await mint("pin");
  const deviceRoot = join(root, "device-pin");
  const pair = startPair(["--gateway", nodeAddress, "--code", code.typed!, "--name", "laptop"], deviceRoot);
  const requestId = await pair.requestId;
  // /metrics counts the request waiting for a human.
  const pendingGauge = async () => {
    const token = readFileSync(join(gatewayRoot, "admin.token"), "utf8").trim();
    const text = await (
      await fetch(new URL("/metrics", daemon.summary.admin_url), {
        headers: { authorization: `Bearer ${token}` },
      })
    ).text();
    return Number(/^palyra_pairing_requests_pending (\d+)$/m.exec(text)?.[1]);
  };
  assert.equal(await pendingGauge(), 1);
  const approved = await runCli(["pairing", "approve", requestId, "--state-root", gatewayRoot, "--json"]);
  assert.equal(approved.code, 0, approved.stderr);
  const result = await pair.exit;
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /state\s+completed/);
  assert.match(result.stdout, /comparison code\s+[0-9]{6}/);
  assert.equal(await pendingGauge(), 0);

  const list = JSON.parse(
    (await runCli(["pairing", "list", "--state-root", gatewayRoot, "--json"])).stdout,
  ) as {
    requests: { request_id: string; state: string; device_name: string }[];
  };
  const request = list.requests.find((r) => r.request_id === requestId);
  assert.equal(request?.state, "completed");
  assert.equal(request?.device_name, "laptop");
  assert.ok(!JSON.stringify(list).includes(code.pin!));
  assert.ok(!daemon.stderr().includes(code.pin!), "the PIN is not in the gateway's logs");
  assert.ok(!result.stdout.includes(code.pin!) && !result.stderr.includes(code.pin!));
  assert.equal(
    readdirSync(join(deviceRoot, "device", "secrets")).filter((f) => f.endsWith(".sec")).length,
    2,
    "the identity, and the key with its certificate as one entry",
  );
});

test("QR pairing end to end, and a rejected request exits 6", async () => {
  const code = await mint("qr");
  const pair = startPair(["--qr-uri", code.qr_uri!], join(root, "device-qr"));
  const requestId = await pair.requestId;
  assert.equal((await runCli(["pairing", "approve", requestId, "--state-root", gatewayRoot])).code, 0);
  const done = await pair.exit;
  assert.equal(done.code, 0, done.stderr);

  const second = await mint("pin");
  const rejected = startPair(
    ["--gateway", nodeAddress, "--code", second.typed!],
    join(root, "device-rejected"),
  );
  const rid = await rejected.requestId;
  assert.equal(
    (await runCli(["pairing", "reject", rid, "--reason", "not ours", "--state-root", gatewayRoot])).code,
    0,
  );
  const out = await rejected.exit;
  assert.equal(out.code, 6);
  assert.match(out.stderr, /error: pairing was rejected: not ours/);
  const twice = await runCli(["pairing", "approve", rid, "--state-root", gatewayRoot]);
  assert.equal(twice.code, 7);
  assert.match(twice.stderr, /already decided \(rejected\)/);
});

test("a QR code refuses, during TLS, a gateway whose CA does not match its pin", async () => {
  const other = await startDaemon(join(root, "other-gateway"));
  try {
    const code = await mint("qr");
    const otherAddress = other.summary.node_address;
    const uri = code.qr_uri!.replace(/gw=[^&]+/, `gw=${encodeURIComponent(otherAddress)}`);
    const result = await runCli(["pair", "--qr-uri", uri, "--state-root", join(root, "device-misdirected")]);
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /does not match the pinned CA/);
    assert.ok(!other.stderr().includes("pairing.begin") && !/"msg":"rpc/.test(other.stderr()));
  } finally {
    await other.stop();
  }
});

test("a wrong PIN makes the device stop before Complete with a clear message", async () => {
  const code = await mint("pin");
  const wrongPin = code.pin === "000001" ? "000002" : "000001";
  const result = await runCli([
    "pair",
    "--gateway",
    nodeAddress,
    "--code",
    `${code.code_id}-${wrongPin}`,
    "--state-root",
    join(root, "device-wrong"),
  ]);
  assert.equal(result.code, 3);
  assert.match(
    result.stderr,
    /the gateway could not prove it knows the code: wrong code or someone in the middle/,
  );
});

test("the device's stored certificate verifies against the CA with openssl, and matches the device's own key", async () => {
  const deviceRoot = join(root, "device-pin");
  const store = await openFilesystemSecretStore(join(deviceRoot, "device", "secrets"), { env: testEnv() });
  const creds = await loadDeviceCredentials(store);
  store.close();
  assert.ok(creds);
  const certPath = join(root, "device-cert.pem");
  writeFileSync(certPath, creds.clientCertPem);
  const verified = spawnSync(
    "openssl",
    ["verify", "-CAfile", join(gatewayRoot, "ca.pem"), "-purpose", "sslclient", certPath],
    {
      encoding: "utf8",
    },
  );
  assert.equal(verified.status, 0, verified.stderr);
  assert.match(verified.stdout, /: OK/);
  const cert = new X509Certificate(creds.clientCertPem);
  const keyOfDevice = createPublicKey(createPrivateKey(creds.clientKeyPem)).export({
    type: "spki",
    format: "der",
  });
  assert.deepEqual(
    cert.publicKey.export({ type: "spki", format: "der" }),
    keyOfDevice,
    "CSR key == certificate key",
  );
  assert.equal(creds.caCertPem.trim(), readFileSync(join(gatewayRoot, "ca.pem"), "utf8").trim());
});

test("devices: list shows the paired device; revoke cuts its live connection at once and blocks re-pairing until removed", async () => {
  const deviceRoot = join(root, "device-pin");
  const store = await openFilesystemSecretStore(join(deviceRoot, "device", "secrets"), { env: testEnv() });
  const creds = await loadDeviceCredentials(store);
  const identity = await DeviceIdentity.load(store);
  store.close();
  assert.ok(creds && identity);

  const listed = await runCli(["devices", "list", "--state-root", gatewayRoot, "--json"]);
  assert.equal(listed.code, 0, listed.stderr);
  const devices = (
    JSON.parse(listed.stdout) as { devices: { device_id: string; state: string; device_name: string }[] }
  ).devices;
  assert.ok(
    devices.some(
      (d) => d.device_id === identity.deviceId && d.state === "active" && d.device_name === "laptop",
    ),
  );

  // Paging: one row at a time reaches every device once, in id order; --search filters on the gateway.
  const ids: string[] = [];
  let after: string | null = null;
  for (;;) {
    const page = await runCli([
      "devices",
      "list",
      "--limit",
      "1",
      ...(after ? ["--after", after] : []),
      "--state-root",
      gatewayRoot,
      "--json",
    ]);
    const parsed = JSON.parse(page.stdout) as { devices: { device_id: string }[]; next_after: string | null };
    ids.push(...parsed.devices.map((d) => d.device_id));
    after = parsed.next_after;
    if (!after) break;
  }
  assert.deepEqual(ids, devices.map((d) => d.device_id).sort());
  assert.ok(ids.length >= 2, "more than one page");
  const found = await runCli([
    "devices",
    "list",
    "--search",
    "LAPTOP",
    "--state-root",
    gatewayRoot,
    "--json",
  ]);
  assert.deepEqual(
    (JSON.parse(found.stdout) as { devices: { device_name: string }[] }).devices.map((d) => d.device_name),
    devices.filter((d) => d.device_name.toLowerCase().includes("laptop")).map((d) => d.device_name),
  );
  assert.equal((await runCli(["devices", "list", "--limit", "0", "--state-root", gatewayRoot])).code, 2);

  // A live mutual-TLS connection from the device (any RPC keeps the HTTP/2 connection open).
  const [host, port] = nodeAddress.split(":");
  const client = new NodePortClient({
    host: host!,
    port: Number(port),
    pinnedCa: creds.caCertPem,
    clientIdentity: { certChainPem: creds.clientCertPem, keyPem: creds.clientKeyPem },
  });
  const rpc = client.service(PairingService);
  const probe = () =>
    rpc.beginPairing({ version: 1, clientKind: "cli", codeId: "ZZZZ", deviceId: identity.deviceId });
  await assert.rejects(
    probe(),
    (err: RpcError) =>
      err.status === RpcStatus.PERMISSION_DENIED || err.status === RpcStatus.FAILED_PRECONDITION,
  );
  assert.equal(client.connectionCount, 1);

  const revoked = await runCli([
    "devices",
    "revoke",
    identity.deviceId,
    "--reason",
    "lost",
    "--state-root",
    gatewayRoot,
    "--json",
  ]);
  assert.equal(revoked.code, 0, revoked.stderr);
  const body = JSON.parse(revoked.stdout) as {
    state: string;
    connections_closed: number;
    revoked_reason: string;
  };
  assert.equal(body.state, "revoked");
  assert.equal(body.revoked_reason, "lost");
  assert.equal(body.connections_closed, 1);
  // Its next connection is refused at the handshake.
  await assert.rejects(probe(), (err: RpcError) => err.status === RpcStatus.UNAVAILABLE);
  client.close();

  const code = await mint("pin");
  const again = await runCli([
    "pair",
    "--gateway",
    nodeAddress,
    "--code",
    code.typed!,
    "--state-root",
    deviceRoot,
  ]);
  assert.equal(again.code, 6);
  assert.match(again.stderr, /revoked/);

  const removed = await runCli([
    "devices",
    "remove",
    identity.deviceId,
    "--state-root",
    gatewayRoot,
    "--json",
  ]);
  assert.equal(removed.code, 0, removed.stderr);
  const pair = startPair(["--gateway", nodeAddress, "--code", code.typed!], deviceRoot);
  const requestId = await pair.requestId;
  assert.equal((await runCli(["pairing", "approve", requestId, "--state-root", gatewayRoot])).code, 0);
  assert.equal((await pair.exit).code, 0);
});

import assert from "node:assert/strict";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import pgDriver from "pg";
import { systemClock } from "../src/common/clock.js";
import { systemRandom } from "../src/common/random.js";
import { DeviceIdentity } from "../src/identity/device-identity.js";
import { DevicePairingClient } from "../src/pairing/device-client.js";
import { parseQrUri } from "../src/pairing/qr-uri.js";
import { GrpcPairingTransport } from "../src/transport/grpc/pairing-client.js";
import { type DaemonProcess, runCli, startDaemon, startPair, testEnv } from "./helpers/cli.js";
import { clusterReaches } from "./helpers/cluster.js";
import { mintCode, pairCliDevice, spawnTestNode, waitForOutput } from "./helpers/devices.js";
import { type PgServer, startPostgres } from "./helpers/postgres-server.js";

/**
 * Several gateways on one real PostgreSQL server (Debian's, started for this file): one CA for all,
 * a pairing begun on one gateway and approved on another, and approvals racing on two gateways.
 */

const PASSPHRASE = "correct horse battery staple";
const root = mkdtempSync(join(tmpdir(), "palyra-cluster-"));
let pg: PgServer;
let url: string;
const gateways: DaemonProcess[] = [];
// 21 pairings from one address in a minute: above the default per-address limit.
const env = testEnv({
  PALYRA_CA_PASSPHRASE: PASSPHRASE,
  PALYRA_PAIRING_BEGINS_PER_ADDRESS_PER_MINUTE: "100",
});

function gatewayRoot(name: string): string {
  return join(root, name);
}

async function startGateway(name: string, extraEnv: Record<string, string> = {}): Promise<DaemonProcess> {
  const daemon = await startDaemon(gatewayRoot(name), { ...env, ...extraEnv }, ["--database-url", url]);
  gateways.push(daemon);
  return daemon;
}

async function adminGet(daemon: DaemonProcess, path: string) {
  const token = readFileSync(join(daemon.summary.state_root, "admin.token"), "utf8").trim();
  const res = await fetch(new URL(path, daemon.summary.admin_url), {
    headers: { authorization: `Bearer ${token}` },
  });
  return (await res.json()) as { nodes: { device_id: string; presence: string }[] };
}

async function adminGetAny(daemon: DaemonProcess, path: string) {
  const token = readFileSync(join(daemon.summary.state_root, "admin.token"), "utf8").trim();
  const res = await fetch(new URL(path, daemon.summary.admin_url), {
    headers: { authorization: `Bearer ${token}` },
  });
  return (await res.json()) as Record<string, unknown>;
}

async function adminPost(daemon: DaemonProcess, path: string, body: unknown) {
  const token = readFileSync(join(daemon.summary.state_root, "admin.token"), "utf8").trim();
  const res = await fetch(new URL(path, daemon.summary.admin_url), {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

before(async () => {
  pg = await startPostgres();
  url = await pg.createDatabase("cluster");
});

after(async () => {
  await Promise.all(gateways.map((g) => g.stop()));
  await pg?.stop();
  rmSync(root, { recursive: true, force: true });
});

test("two gateways started at once on an empty database create one CA between them", async () => {
  const [a, b] = await Promise.all([startGateway("a"), startGateway("b")]);
  assert.match(a.summary.ca_fingerprint, /^[0-9a-f]{64}$/);
  assert.equal(a.summary.ca_fingerprint, b.summary.ca_fingerprint);
  assert.equal(
    readFileSync(join(gatewayRoot("a"), "ca.pem"), "utf8"),
    readFileSync(join(gatewayRoot("b"), "ca.pem"), "utf8"),
  );
});

test("a gateway without the cluster's passphrase refuses to start, and says why", async () => {
  await assert.rejects(
    startGateway("wrong", { PALYRA_CA_PASSPHRASE: "not the passphrase at all" }),
    (err: Error) => {
      assert.match(err.message, /PALYRA_CA_PASSPHRASE does not open the cluster's CA/);
      return true;
    },
  );
  await assert.rejects(startGateway("none", { PALYRA_CA_PASSPHRASE: "" }), /needs PALYRA_CA_PASSPHRASE/);
});

test("a device pairs through gateway A and is approved through gateway B", async () => {
  const [a] = gateways;
  const code = await mintCode(gatewayRoot("a"));
  const pair = startPair(
    ["--gateway", a!.summary.node_address, "--code", code.typed!, "--client-kind", "node"],
    join(root, "device-1"),
  );
  const requestId = await pair.requestId;
  // B sees the request A created, and its approval reaches the device's status poll on A.
  const listed = await runCli(["pairing", "list", "--state-root", gatewayRoot("b"), "--json"], env);
  assert.equal(listed.code, 0, listed.stderr);
  assert.ok(JSON.stringify(JSON.parse(listed.stdout)).includes(requestId));
  const approved = await runCli(
    ["pairing", "approve", requestId, "--state-root", gatewayRoot("b"), "--json"],
    env,
  );
  assert.equal(approved.code, 0, approved.stderr);
  const exit = await pair.exit;
  assert.equal(exit.code, 0, exit.stderr);
  const devices = await runCli(["devices", "list", "--state-root", gatewayRoot("a"), "--json"], env);
  assert.equal(JSON.parse(devices.stdout).devices.length, 1);
});

test("two gateways approving the same request at the same instant: one approval, one certificate, 20 of 20", async () => {
  const [a, b] = gateways;
  const [host, port] = a!.summary.node_address.split(":");
  const requests: { requestId: string; deviceId: string }[] = [];
  for (let i = 0; i < 20; i++) {
    // QR codes: their verifier costs 1000 PBKDF2 iterations, not a PIN's 100 000 (this is about races).
    const qr = parseQrUri((await mintCode(gatewayRoot("a"), "qr")).qr_uri!);
    const identity = DeviceIdentity.generate(systemClock, systemRandom);
    const transport = new GrpcPairingTransport(host!, Number(port));
    try {
      const client = new DevicePairingClient(transport, identity, systemClock, systemRandom);
      const pending = await client.pair({
        codeId: qr.codeId,
        secret: qr.secret,
        clientKind: "node",
        deviceName: `race-${i}`,
        platform: "linux",
      });
      requests.push({ requestId: pending.requestId, deviceId: identity.deviceId });
    } finally {
      transport.close();
    }
  }
  for (const { requestId } of requests) {
    const path = `/v1/pairing/requests/${requestId}/approve`;
    const results = await Promise.all([adminPost(a!, path, {}), adminPost(b!, path, {})]);
    const statuses = results.map((r) => r.status).sort();
    assert.deepEqual(statuses, [200, 409], JSON.stringify(results.map((r) => r.body)));
  }
  const token = readFileSync(join(b!.summary.state_root, "admin.token"), "utf8").trim();
  const audit = await fetch(new URL("/v1/audit?kind=pairing.approved&limit=1000", b!.summary.admin_url), {
    headers: { authorization: `Bearer ${token}` },
  });
  const events = ((await audit.json()) as { events: { detail: { request_id: string } }[] }).events;
  const approvals = events.filter((e) => requests.some((r) => r.requestId === e.detail.request_id));
  assert.equal(approvals.length, 20, "exactly one approval per request");
  const paired = await runCli(["devices", "list", "--state-root", gatewayRoot("a"), "--json"], env);
  const devices = JSON.parse(paired.stdout).devices as { device_id: string }[];
  for (const { deviceId } of requests)
    assert.equal(devices.filter((d) => d.device_id === deviceId).length, 1, "one device row");
});

test("a node on gateway A: online and invoked through gateway B; a caller on B that goes away cancels its call on A's node; then revoking through B cuts it on A at once", async () => {
  const [a, b] = gateways;
  const code = await mintCode(gatewayRoot("a"));
  const node = spawnTestNode(a!.summary.node_address, code.typed!, join(root, "node-revoked"), env);
  const exited = once(node, "close");
  const requestId = (await waitForOutput(node.stdout, /request id\s+([0-9A-Z]{26})/, { exited }))[1]!;
  const running = waitForOutput(node.stdout, /node ([0-9A-Z]{26}) running/, { exited });
  assert.equal((await adminPost(b!, `/v1/pairing/requests/${requestId}/approve`, {})).status, 200);
  const deviceId = (await running)[1]!;
  await waitForOutput(node.stderr, /"event":"connected"/, { fromStart: true, exited });

  // B sees the node online (A holds its session) and a call through B is pushed by A and answered.
  await clusterReaches(async () =>
    (await adminGet(b!, "/v1/nodes")).nodes.some((n) => n.device_id === deviceId && n.presence === "online"),
  );
  const invoked = await adminPost(b!, `/v1/nodes/${deviceId}/invoke`, {
    capability: "echo",
    input: { hi: "from B" },
  });
  assert.equal(invoked.status, 200, JSON.stringify(invoked.body));
  assert.equal(invoked.body.state, "succeeded");
  assert.deepEqual(invoked.body.output, { hi: "from B" });
  const unknown = await adminPost(b!, `/v1/nodes/${deviceId}/invoke`, { capability: "nope" });
  assert.equal(unknown.status, 404);

  // A long call through B whose HTTP caller hangs up: B ends the row, A hears of it and tells the node.
  const token = readFileSync(join(b!.summary.state_root, "admin.token"), "utf8").trim();
  const hangUp = new AbortController();
  const started = waitForOutput(node.stderr, /"event":"running","detail":"([0-9A-Z]{26}) test\.sleep"/, {
    exited,
  });
  const call = fetch(new URL(`/v1/nodes/${deviceId}/invoke`, b!.summary.admin_url), {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ capability: "test.sleep", input: { ms: 60_000 }, timeout_seconds: 90 }),
    signal: hangUp.signal,
  }).catch((err: Error) => err);
  const sleeping = (await started)[1]!;
  const cancelled = waitForOutput(node.stderr, new RegExp(`"event":"cancelled","detail":"${sleeping}`), {
    exited,
    ms: 10_000,
  });
  hangUp.abort();
  assert.ok((await call) instanceof Error);
  await cancelled;
  await clusterReaches(async () => {
    const detail = await adminGetAny(a!, `/v1/nodes/${deviceId}`);
    const row = (detail.recent_requests as { request_id: string; state: string }[]).find(
      (r) => r.request_id === sleeping,
    );
    return row?.state === "cancelled";
  });

  const cutOnA = waitForOutput(a!.child.stderr, /cut a device changed on another gateway/, { exited });
  const revoked = await adminPost(b!, `/v1/devices/${deviceId}/revoke`, { reason: "stolen laptop" });
  assert.equal(revoked.status, 200);
  assert.equal(revoked.body.connections_closed, 0, "B held none of its connections");
  await cutOnA;
  const [exitCode] = (await exited) as [number];
  assert.equal(exitCode, 6, "the node host learns it was revoked and exits 6");
});

test("secrets are shared: set through A, revealed through B, listed on C; the database holds only sealed blobs", async () => {
  const [a, b] = gateways;
  const call = async (daemon: DaemonProcess, method: string, path: string, body?: unknown) => {
    const token = readFileSync(join(daemon.summary.state_root, "admin.token"), "utf8").trim();
    const res = await fetch(new URL(path, daemon.summary.admin_url), {
      method,
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const ref = encodeURIComponent("global/api-key");
  const put = await call(a!, "PUT", `/v1/secrets/${ref}`, { value: "hunter2-cluster-value" });
  assert.equal(put.status, 201, JSON.stringify(put.body));
  assert.equal(put.body.backend, "database");
  const revealed = await call(b!, "POST", `/v1/secrets/${ref}/reveal`, { reason: "test" });
  assert.equal(revealed.status, 200, JSON.stringify(revealed.body));
  assert.equal(revealed.body.value_utf8, "hunter2-cluster-value");
  const c = await startGateway("c");
  const listed = await call(c, "GET", "/v1/secrets");
  assert.deepEqual(
    (listed.body.secrets as { ref: string }[]).map((s) => s.ref),
    ["global/api-key"],
  );
  const client = new pgDriver.Client({ connectionString: url });
  await client.connect();
  try {
    const rows = await client.query("SELECT blob FROM vault_secrets");
    assert.equal(rows.rowCount, 1);
    assert.ok(!(rows.rows[0].blob as Buffer).includes("hunter2"), "no plaintext in the database");
    const meta = await client.query("SELECT value FROM meta WHERE key = 'cluster.vault_key'");
    assert.ok(!String(meta.rows[0].value).includes(PASSPHRASE));
  } finally {
    await client.end();
  }
  const deleted = await call(b!, "DELETE", `/v1/secrets/${ref}`);
  assert.equal(deleted.status, 200);
  assert.equal((await call(a!, "GET", `/v1/secrets/${ref}`)).status, 404);
});

test("on a cluster gateway, palyra audit reads the shared database and palyra backup points to pg_dump", async () => {
  const audit = await runCli(
    ["audit", "--kind", "pairing.approved", "--limit", "5", "--state-root", gatewayRoot("a"), "--json"],
    { ...env, PALYRA_DATABASE_URL: url },
  );
  assert.equal(audit.code, 0, audit.stderr);
  assert.equal(JSON.parse(audit.stdout).events.length, 5);
  const backup = await runCli(["backup", join(root, "x.backup"), "--state-root", gatewayRoot("a")], {
    ...env,
    PALYRA_DATABASE_URL: url,
    PALYRA_BACKUP_PASSPHRASE: "a backup passphrase",
  });
  assert.equal(backup.code, 7, backup.stderr);
  assert.match(backup.stderr, /pg_dump/);
});

test("an operator CLI paired through A administers the cluster through B; a role change made on A holds on B", async () => {
  const [a, b] = gateways;
  const laptop = join(root, "operator-laptop");
  const operatorId = await pairCliDevice(gatewayRoot("a"), a!.summary.node_address, laptop, {
    role: "operator",
  });
  const viaB = (args: string[]) =>
    runCli([...args, "--gateway", b!.summary.node_address, "--state-root", laptop], env);
  const listed = await viaB(["devices", "list", "--json"]);
  assert.equal(listed.code, 0, listed.stderr);
  const me = (
    JSON.parse(listed.stdout) as { devices: { device_id: string; role: string | null }[] }
  ).devices.find((d) => d.device_id === operatorId);
  assert.equal(me?.role, "operator");

  // Demoted through A's token; B refuses the next operator call (its allowlist memo follows the change).
  const demoted = await runCli(
    ["devices", "set-role", operatorId, "viewer", "--state-root", gatewayRoot("a")],
    env,
  );
  assert.equal(demoted.code, 0, demoted.stderr);
  let code: number | null = 0;
  const until = Date.now() + 20_000;
  while (code !== 6 && Date.now() < until)
    code = (await viaB(["devices", "set-role", operatorId, "operator"])).code;
  assert.equal(code, 6, "a viewer cannot promote itself through another gateway");
  assert.equal((await viaB(["devices", "list", "--json"])).code, 0, "and still reads");
  const audit = await runCli(
    ["audit", "--kind", "device.role_changed", "--state-root", gatewayRoot("b"), "--json"],
    { ...env, PALYRA_DATABASE_URL: url },
  );
  assert.equal(audit.code, 0, audit.stderr);
  const changes = (JSON.parse(audit.stdout) as { events: { device_id: string; detail: { to: string } }[] })
    .events;
  assert.deepEqual(
    changes.filter((e) => e.device_id === operatorId).map((e) => e.detail.to),
    ["viewer"],
  );
});

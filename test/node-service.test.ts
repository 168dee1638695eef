import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { after, before, test } from "node:test";
import { NodeService } from "../src/gen/palyra/v1/node_pb.js";
import type { DeviceCredentials } from "../src/pairing/device-store.js";
import { NodePortClient } from "../src/transport/grpc/client.js";
import { type RpcError, RpcStatus } from "../src/transport/grpc/rpc-error.js";
import { type DaemonProcess, runCli, startDaemon } from "./helpers/cli.js";
import { pairNodeViaCli } from "./helpers/devices.js";

const root = mkdtempSync(join(tmpdir(), "palyra-nodesvc-"));
const gatewayRoot = join(root, "gateway");
let daemon: DaemonProcess;
let host: string;
let port: number;
let token: string;

function clientFor(creds?: DeviceCredentials) {
  return new NodePortClient({
    host,
    port,
    pinnedCa: readFileSync(join(gatewayRoot, "ca.pem"), "utf8"),
    ...(creds ? { clientIdentity: { certChainPem: creds.clientCertPem, keyPem: creds.clientKeyPem } } : {}),
  });
}

async function invoke(deviceId: string, body: Record<string, unknown>) {
  const res = await fetch(new URL(`/v1/nodes/${deviceId}/invoke`, daemon.summary.admin_url), {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

before(async () => {
  daemon = await startDaemon(gatewayRoot);
  [host, port] = daemon.summary.node_address.split(":").map((v, i) => (i ? Number(v) : v)) as [
    string,
    number,
  ];
  token = readFileSync(join(gatewayRoot, "admin.token"), "utf8").trim();
});
after(async () => {
  await daemon?.stop();
  rmSync(root, { recursive: true, force: true });
});

test("NodeService over mTLS: register, connect, a pushed dispatch round-trips through the admin API; revoke ends the stream within 1 s", async (t) => {
  const { deviceId, creds } = await pairNodeViaCli(gatewayRoot, `${host}:${port}`, join(root, "node-a"));
  const other = await pairNodeViaCli(gatewayRoot, `${host}:${port}`, join(root, "node-b"));

  const anonymous = clientFor().service(NodeService);
  await assert.rejects(
    anonymous.registerNode({ deviceId, platform: "linux", version: "1", capabilities: [] }),
    (e: RpcError) => e.status === RpcStatus.UNAUTHENTICATED,
  );

  const client = clientFor(creds);
  const rpc = client.service(NodeService);
  await assert.rejects(
    rpc.registerNode({ deviceId: other.deviceId, platform: "linux", version: "1", capabilities: [] }),
    (e: RpcError) => e.status === RpcStatus.PERMISSION_DENIED,
  );
  const registered = await rpc.registerNode({
    deviceId,
    platform: "linux",
    version: "0.1.0",
    capabilities: [{ name: "echo", requiresMediation: false, description: "returns its input" }],
  });
  assert.ok(registered.heartbeatIntervalMs > 0);
  assert.ok(registered.renewAfterMs > 0n);

  const stream = rpc.connect();
  await stream.send({ body: { case: "hello", value: { deviceId } } });
  const incoming = stream[Symbol.asyncIterator]();
  const config = await incoming.next();
  assert.equal(config.value?.body.case, "config");

  const call = invoke(deviceId, { capability: "echo", input: { hi: 1 }, timeout_seconds: 5 });
  const dispatched = await incoming.next();
  assert.equal(dispatched.value?.body.case, "dispatch");
  const dispatch = dispatched.value!.body.value as {
    requestId: string;
    inputJson: string;
    capability: string;
  };
  assert.equal(dispatch.capability, "echo");
  await stream.send({
    body: {
      case: "capabilityResult",
      value: { requestId: dispatch.requestId, success: true, outputJson: dispatch.inputJson, error: "" },
    },
  });
  const result = await call;
  assert.equal(result.status, 200);
  assert.deepEqual(result.body, {
    request_id: dispatch.requestId,
    state: "succeeded",
    output: { hi: 1 },
    error: null,
  });

  const unknown = await invoke(deviceId, { capability: "nope" });
  assert.equal(unknown.status, 404);

  const list = await fetch(new URL("/v1/nodes", daemon.summary.admin_url), {
    headers: { authorization: `Bearer ${token}` },
  });
  const nodes = ((await list.json()) as { nodes: { device_id: string; presence: string }[] }).nodes;
  assert.equal(nodes.find((n) => n.device_id === deviceId)?.presence, "online");

  const cliList = await runCli(["nodes", "list", "--state-root", gatewayRoot, "--json"]);
  assert.equal(cliList.code, 0, cliList.stderr);
  assert.ok(
    (JSON.parse(cliList.stdout) as { nodes: { device_id: string; presence: string }[] }).nodes.some(
      (n) => n.device_id === deviceId && n.presence === "online",
    ),
  );

  const ended = stream.done.then(
    () => ({ status: RpcStatus.OK, at: performance.now() }),
    (e: RpcError) => ({ status: e.status, at: performance.now() }),
  );
  const start = performance.now();
  const revoked = await fetch(new URL(`/v1/devices/${deviceId}/revoke`, daemon.summary.admin_url), {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ reason: "test" }),
  });
  assert.equal(revoked.status, 200);
  const outcome = await ended;
  const elapsed = outcome.at - start;
  assert.equal(outcome.status, RpcStatus.PERMISSION_DENIED);
  assert.ok(elapsed < 1000, `stream ended ${elapsed.toFixed(1)} ms after the revoke request`);
  t.diagnostic(`revoke-to-stream-end ${elapsed.toFixed(1)} ms`);
  await assert.rejects(
    rpc.registerNode({ deviceId, platform: "l", version: "1", capabilities: [] }),
    // Denied per call while the socket is being cut, refused at the handshake after.
    (e: RpcError) => e.status === RpcStatus.UNAVAILABLE || e.status === RpcStatus.PERMISSION_DENIED,
  );
  client.close();

  const offline = await runCli([
    "nodes",
    "invoke",
    deviceId,
    "echo",
    "--input-json",
    "{}",
    "--state-root",
    gatewayRoot,
  ]);
  assert.equal(offline.code, 7);
  assert.match(offline.stderr, /is not connected/);
  const badJson = await runCli([
    "nodes",
    "invoke",
    deviceId,
    "echo",
    "--input-json",
    "{nope",
    "--state-root",
    gatewayRoot,
  ]);
  assert.equal(badJson.code, 2);
  assert.match(badJson.stderr, /not valid JSON/);
});

test("finding 6: a device paired as cli gets PERMISSION_DENIED on every node-only NodeService call and never becomes a node", async () => {
  const cli = await pairNodeViaCli(gatewayRoot, `${host}:${port}`, join(root, "cli-device"), "cli");
  const client = clientFor(cli.creds);
  const rpc = client.service(NodeService);
  const denied = (e: RpcError) =>
    e.status === RpcStatus.PERMISSION_DENIED &&
    /for devices paired as "node"; this device was paired as "cli"/.test(e.message);
  try {
    await assert.rejects(
      rpc.registerNode({
        deviceId: cli.deviceId,
        platform: "linux",
        version: "1",
        capabilities: [{ name: "echo", requiresMediation: false, description: "" }],
      }),
      denied,
    );
    // Renewal is open to every paired device (an operator's CLI renews with it): this one is judged on
    // its signature and CSR, not refused for its kind.
    await assert.rejects(
      rpc.renewCertificate({
        deviceId: cli.deviceId,
        csrDer: new Uint8Array(10),
        identitySignature: new Uint8Array(64),
      }),
      (e: RpcError) => !denied(e) && /not signed by the device's identity key/.test(e.message),
    );
    await assert.rejects(rpc.deregister({ deviceId: cli.deviceId, reason: "" }), denied);
    const stream = rpc.connect();
    await stream.send({ body: { case: "hello", value: { deviceId: cli.deviceId } } }).catch(() => undefined);
    await assert.rejects(stream[Symbol.asyncIterator]().next(), denied);
  } finally {
    client.close();
  }
  const nodes = await runCli(["nodes", "list", "--state-root", gatewayRoot, "--json"]);
  assert.equal(nodes.code, 0, nodes.stderr);
  assert.ok(!nodes.stdout.includes(cli.deviceId), "the cli device is not in nodes list");
  const devices = await runCli(["devices", "list", "--state-root", gatewayRoot, "--json"]);
  assert.ok(devices.stdout.includes(cli.deviceId), "it is a paired device all the same");
});

import assert from "node:assert/strict";
import { once } from "node:events";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { startPair } from "./helpers/cli.js";
import { type Cluster, clusterReaches, startCluster } from "./helpers/cluster.js";
import { spawnTestNode, waitForOutput } from "./helpers/devices.js";

/**
 * A gateway SIGKILLed under a node and a call in flight: the node moves to the next gateway in its
 * `--gateway` list by itself, the call fails with node_disconnected once the others reap the dead
 * gateway, and nothing is left unfinished; what was acknowledged before the kill is still there.
 */
let cluster: Cluster;

before(async () => {
  cluster = await startCluster("palyra-failover-");
  await Promise.all([cluster.start("a"), cluster.start("b"), cluster.start("c")]);
});

after(async () => {
  await cluster?.close();
});

test("SIGKILL of the gateway a node is on: the node is online on another within 15 s, its call fails with node_disconnected, nothing is lost or left unfinished", async (t) => {
  const a = cluster.gateways.get("a")!;
  const b = cluster.gateways.get("b")!;
  const minted = await cluster.admin("a", "POST", "/v1/pairing/codes", { method: "pin" });
  const node = spawnTestNode(
    `${a.summary.node_address},${b.summary.node_address}`,
    minted.body.typed,
    join(cluster.root, "node"),
    cluster.env,
  );
  const exited = once(node, "close");
  t.after(() => node.kill("SIGTERM"));
  const requestId = (await waitForOutput(node.stdout, /request id\s+([0-9A-Z]{26})/, { exited }))[1]!;
  const running = waitForOutput(node.stdout, /node ([0-9A-Z]{26}) running/, { exited });
  // Approved on C: an acknowledged write that must outlive A.
  assert.equal(
    (await cluster.admin("c", "POST", `/v1/pairing/requests/${requestId}/approve`, {})).status,
    200,
  );
  const deviceId = (await running)[1]!;
  await waitForOutput(node.stderr, new RegExp(`"event":"connected","detail":"${a.summary.node_address} `), {
    exited,
  });

  // A secret set through A before it dies: acknowledged, so it must be readable afterwards.
  const ref = encodeURIComponent("global/failover");
  assert.equal((await cluster.admin("a", "PUT", `/v1/secrets/${ref}`, { value: "kept" })).status, 201);

  // C sees the node online (A's claim), then a call through C, held by A, is in flight when A dies.
  await clusterReaches(
    async () => (await cluster.admin("c", "GET", `/v1/nodes/${deviceId}`)).body.presence === "online",
  );
  const started = waitForOutput(node.stderr, /"event":"running","detail":"[0-9A-Z]{26} test\.sleep"/, {
    exited,
  });
  const call = cluster.admin("c", "POST", `/v1/nodes/${deviceId}/invoke`, {
    capability: "test.sleep",
    input: { ms: 60_000 },
    timeout_seconds: 120,
  });
  await started;
  const killedAt = Date.now();
  await a.stop("SIGKILL");

  await waitForOutput(node.stderr, new RegExp(`"event":"connected","detail":"${b.summary.node_address} `), {
    exited,
    ms: 15_000,
  });
  const onlineAfterMs = Date.now() - killedAt;
  const answered = await call;
  const failedAfterMs = Date.now() - killedAt;
  t.diagnostic(
    `node online on B ${onlineAfterMs} ms after the kill; the call failed after ${failedAfterMs} ms`,
  );
  assert.equal(answered.status, 200, JSON.stringify(answered.body));
  assert.equal(answered.body.state, "failed");
  assert.match(answered.body.error, /^node_disconnected/);

  // Online on B, as every live gateway sees it; the device (approved on C) is intact; nothing unfinished.
  for (const name of ["b", "c"]) {
    const detail = await cluster.admin(name, "GET", `/v1/nodes/${deviceId}`);
    assert.equal(detail.status, 200);
    assert.equal(detail.body.presence, "online", name);
    for (const r of detail.body.recent_requests as { state: string }[])
      assert.ok(["succeeded", "failed", "timed_out", "cancelled"].includes(r.state), JSON.stringify(r));
  }
  const secret = await cluster.admin("b", "POST", `/v1/secrets/${ref}/reveal`, { reason: "failover test" });
  assert.equal(secret.body.value_utf8, "kept");
  const devices = await cluster.admin("b", "GET", "/v1/devices");
  assert.ok((devices.body.devices as { device_id: string }[]).some((d) => d.device_id === deviceId));
  const echoed = await cluster.admin("c", "POST", `/v1/nodes/${deviceId}/invoke`, {
    capability: "echo",
    input: 7,
  });
  assert.equal(echoed.body.state, "succeeded", JSON.stringify(echoed.body));
  assert.equal(echoed.body.output, 7);
});

test("a device waiting for approval on a gateway that is SIGKILLed collects its certificate from the next one", async () => {
  const d = await cluster.start("d");
  const b = cluster.gateways.get("b")!;
  const minted = await cluster.admin("d", "POST", "/v1/pairing/codes", { method: "pin", client_kind: "cli" });
  const pair = startPair(
    ["--gateway", `${d.summary.node_address},${b.summary.node_address}`, "--code", minted.body.typed],
    join(cluster.root, "device-waiting"),
  );
  const requestId = await pair.requestId;
  await d.stop("SIGKILL");
  assert.equal(
    (await cluster.admin("b", "POST", `/v1/pairing/requests/${requestId}/approve`, {})).status,
    200,
  );
  const exit = await pair.exit;
  assert.equal(exit.code, 0, exit.stderr);
  assert.match(exit.stdout, /^state\s+completed$/m);
});

import assert from "node:assert/strict";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { type DaemonProcess, runCli, startDaemon } from "./helpers/cli.js";
import { mintCode, spawnTestNode, waitForOutput } from "./helpers/devices.js";

const root = mkdtempSync(join(tmpdir(), "palyra-nodehost-"));
const gatewayRoot = join(root, "gateway");
let daemon: DaemonProcess;
before(async () => {
  daemon = await startDaemon(gatewayRoot);
});
after(async () => {
  await daemon?.stop();
  rmSync(root, { recursive: true, force: true });
});

test("palyra node run: pairs by PIN, connects, serves echo / system.* and refuses file URLs; SIGTERM exits 0", async () => {
  const code = await mintCode(gatewayRoot);
  const nodeAddress = daemon.summary.node_address;
  const child = spawnTestNode(nodeAddress, code.typed!, join(root, "node"));
  const exited = once(child, "close");
  after(() => {
    if (child.exitCode === null) child.kill("SIGKILL");
  });

  const requestId = (await waitForOutput(child.stdout, /request id\s+([0-9A-Z]{26})/, { exited }))[1]!;
  const connected = waitForOutput(child.stderr, /"event":"connected"/, { exited });
  const running = waitForOutput(child.stdout, /node ([0-9A-Z]{26}) running/, { exited });
  assert.equal((await runCli(["pairing", "approve", requestId, "--state-root", gatewayRoot])).code, 0);
  const deviceId = (await running)[1]!;
  await connected;

  const echo = await runCli([
    "nodes",
    "invoke",
    deviceId,
    "echo",
    "--input-json",
    '{"hi":1}',
    "--state-root",
    gatewayRoot,
  ]);
  assert.equal(echo.code, 0, echo.stderr);
  assert.deepEqual(JSON.parse(echo.stdout), { hi: 1 });
  const health = await runCli([
    "nodes",
    "invoke",
    deviceId,
    "system.health",
    "--state-root",
    gatewayRoot,
    "--json",
  ]);
  assert.equal(health.code, 0, health.stderr);
  assert.equal((JSON.parse(health.stdout) as { output: { status: string } }).output.status, "ok");
  const identity = await runCli([
    "nodes",
    "invoke",
    deviceId,
    "system.identity",
    "--state-root",
    gatewayRoot,
    "--json",
  ]);
  assert.equal((JSON.parse(identity.stdout) as { output: { device_id: string } }).output.device_id, deviceId);
  const file = await runCli([
    "nodes",
    "invoke",
    deviceId,
    "desktop.open_url",
    "--input-json",
    '{"url":"file:///etc/passwd"}',
    "--state-root",
    gatewayRoot,
  ]);
  assert.equal(file.code, 7);
  assert.match(
    file.stderr,
    /error: the call ended failed: only http and https URLs may be opened, not file:/,
  );
  const denied = await runCli([
    "nodes",
    "invoke",
    deviceId,
    "desktop.open_url",
    "--input-json",
    '{"url":"https://example.org/"}',
    "--state-root",
    gatewayRoot,
  ]);
  assert.equal(denied.code, 6, "denied by the node's local policy: exit 6");
  assert.match(denied.stderr, /denied by the node's local user or policy/);

  const list = JSON.parse(
    (await runCli(["nodes", "list", "--state-root", gatewayRoot, "--json"])).stdout,
  ) as {
    nodes: { device_id: string; presence: string; capabilities: { name: string }[] }[];
  };
  const listed = list.nodes.find((n) => n.device_id === deviceId);
  assert.equal(listed?.presence, "online");
  assert.deepEqual(
    listed?.capabilities.map((c) => c.name),
    ["echo", "system.health", "system.identity", "desktop.open_url", "desktop.open_path", "test.sleep"],
  );

  // A 1 s deadline against a capability that would take 10 s: the call ends timed_out and the node is
  // told to cancel (it logs the Cancel it received for that request).
  const cancelled = waitForOutput(child.stderr, /"event":"cancelled","detail":"([0-9A-Z]{26}) test\.sleep/, {
    exited,
  });
  const slow = await runCli([
    "nodes",
    "invoke",
    deviceId,
    "test.sleep",
    "--input-json",
    '{"ms":10000}',
    "--timeout",
    "1",
    "--json",
    "--state-root",
    gatewayRoot,
  ]);
  assert.equal(slow.code, 7, slow.stderr);
  const slowResult = JSON.parse(slow.stdout) as { request_id: string; state: string; error: string };
  assert.equal(slowResult.state, "timed_out");
  assert.equal((await cancelled)[1], slowResult.request_id);

  const described = await runCli(["nodes", "describe", deviceId, "--state-root", gatewayRoot, "--json"]);
  assert.equal(described.code, 0, described.stderr);
  const detail = JSON.parse(described.stdout) as {
    presence: string;
    in_flight: number;
    recent_requests: { request_id: string; state: string }[];
    device: { state: string; connections: number };
  };
  assert.equal(detail.presence, "online");
  assert.equal(detail.in_flight, 0);
  assert.deepEqual(detail.recent_requests[0], {
    ...detail.recent_requests[0],
    request_id: slowResult.request_id,
    state: "timed_out",
  });
  assert.equal(detail.device.state, "active");
  assert.ok(detail.device.connections >= 1);
  const human = await runCli(["nodes", "describe", deviceId, "--state-root", gatewayRoot]);
  assert.match(human.stdout, /^presence\s+online$/m);
  assert.match(human.stdout, /test\.sleep\s+timed_out/);
  const unknown = await runCli([
    "nodes",
    "describe",
    "01JAAAAAAAAAAAAAAAAAAAAAAA",
    "--state-root",
    gatewayRoot,
  ]);
  assert.equal(unknown.code, 8, unknown.stderr);

  child.kill("SIGTERM");
  const [codeOnExit] = (await exited) as [number];
  assert.equal(codeOnExit, 0);
});

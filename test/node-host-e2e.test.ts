import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { CLI_ENTRY, type DaemonProcess, runCli, startDaemon, testEnv } from "./helpers/cli.js";
import { mintCode, waitForOutput } from "./helpers/devices.js";

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
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      CLI_ENTRY,
      "node",
      "run",
      "--gateway",
      nodeAddress,
      "--code",
      code.typed!,
      "--mediation",
      "deny",
      "--state-root",
      join(root, "node"),
    ],
    { env: testEnv() },
  );
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
  assert.equal(denied.code, 7);
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
    ["echo", "system.health", "system.identity", "desktop.open_url", "desktop.open_path"],
  );

  child.kill("SIGTERM");
  const [codeOnExit] = (await exited) as [number];
  assert.equal(codeOnExit, 0);
});

import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { processAlive } from "../src/common/process-alive.js";
import { runningProcess } from "../src/node-host/pid-file.js";
import { type DaemonProcess, runCli, startDaemon } from "./helpers/cli.js";
import { pairNodeViaCli } from "./helpers/devices.js";

/**
 * The node host as a background process, with real processes throughout: install, start, status,
 * restart, stop, and uninstall (which has the gateway revoke the device).
 */

const root = mkdtempSync(join(tmpdir(), "palyra-nodebg-"));
const gatewayRoot = join(root, "gateway");
const nodeRoot = join(root, "node");
let daemon: DaemonProcess;

before(async () => {
  daemon = await startDaemon(gatewayRoot);
});
after(async () => {
  // Whatever a failed assertion left running.
  const left = runningProcess(join(nodeRoot, "node", "node.pid"));
  if (left) process.kill(left.pid, "SIGKILL");
  await daemon?.stop();
  rmSync(root, { recursive: true, force: true });
});

async function cli(args: string[]): Promise<Record<string, unknown>> {
  const result = await runCli([...args, "--state-root", nodeRoot, "--json"]);
  assert.equal(result.code, 0, `${args.join(" ")}: ${result.stderr}${result.stdout}`);
  return JSON.parse(result.stdout) as Record<string, unknown>;
}

test("node install / start / status / restart / stop / uninstall", async () => {
  const notInstalled = await runCli(["node", "start", "--state-root", nodeRoot]);
  assert.equal(notInstalled.code, 7);
  assert.match(notInstalled.stderr, /not installed: run palyra node install/);

  const { deviceId } = await pairNodeViaCli(gatewayRoot, daemon.summary.node_address, nodeRoot);
  const installed = await cli(["node", "install", "--mediation", "deny"]);
  assert.equal(installed.device_id, deviceId);
  const idle = await cli(["node", "status"]);
  assert.deepEqual(
    [idle.installed, idle.paired, idle.running, idle.pid, idle.state, idle.device_id],
    [true, true, false, null, "stopped", deviceId],
  );
  assert.ok(Date.parse(idle.certificate_expires_at as string) > Date.now());

  const started = await cli(["node", "start"]);
  assert.equal(started.state, "connected", JSON.stringify(started));
  const pid = started.pid as number;
  assert.ok(processAlive(pid));
  const status = await cli(["node", "status"]);
  assert.deepEqual(
    [status.running, status.pid, status.state, status.transport],
    [true, pid, "connected", "grpc"],
  );
  assert.ok(Date.parse(status.next_renewal_at as string) > Date.now());
  assert.equal(status.last_error, null);
  const nodes = JSON.parse(
    (await runCli(["nodes", "list", "--state-root", gatewayRoot, "--json"])).stdout,
  ) as { nodes: { device_id: string; presence: string }[] };
  assert.equal(nodes.nodes.find((n) => n.device_id === deviceId)?.presence, "online");
  assert.match(readFileSync(join(nodeRoot, "node", "node.log"), "utf8"), /"event":"connected"/);

  const again = await cli(["node", "start"]);
  assert.deepEqual([again.already_running, again.pid], [true, pid], "one node host per state root");

  const restarted = await cli(["node", "restart"]);
  const newPid = (restarted.started as { pid: number }).pid;
  assert.deepEqual(restarted.stopped as { pid: number; forced: boolean }, {
    stopped: true,
    pid,
    forced: false,
  });
  assert.notEqual(newPid, pid);
  assert.equal(processAlive(pid), false);

  const stopped = await cli(["node", "stop"]);
  assert.deepEqual(stopped, { stopped: true, pid: newPid, forced: false });
  assert.equal(processAlive(newPid), false);
  assert.equal(existsSync(join(nodeRoot, "node", "node.pid")), false, "a clean exit removes its pid file");
  assert.deepEqual(await cli(["node", "stop"]), { stopped: false, reason: "not running" });

  // Uninstall a running node: it stops, the gateway revokes the device, the local identity is gone.
  const running = await cli(["node", "start"]);
  const refused = await runCli(["node", "uninstall", "--state-root", nodeRoot]);
  assert.equal(refused.code, 2, "no terminal to confirm on: --yes is required");
  const uninstalled = await cli(["node", "uninstall", "--yes"]);
  assert.equal((uninstalled.gateway as { revoked: boolean }).revoked, true, JSON.stringify(uninstalled));
  assert.equal(processAlive(running.pid as number), false);
  assert.equal(existsSync(join(nodeRoot, "device")), false);
  assert.equal(existsSync(join(nodeRoot, "node")), false);
  const device = JSON.parse(
    (await runCli(["devices", "list", "--state-root", gatewayRoot, "--json"])).stdout,
  ) as { devices: { device_id: string; state: string; revoked_reason?: string }[] };
  const record = device.devices.find((d) => d.device_id === deviceId);
  assert.equal(record?.state, "revoked");
  assert.match(record?.revoked_reason ?? "", /deregistered by the node: node uninstalled/);
  const after = await cli(["node", "status"]);
  assert.deepEqual([after.installed, after.paired, after.running], [false, false, false]);
});

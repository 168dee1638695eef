import assert from "node:assert/strict";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { type DaemonProcess, runCli, spawnCli, startDaemon, testEnv } from "./helpers/cli.js";
import { mintCode, waitForOutput } from "./helpers/devices.js";

// Issue 14, backup and restore: back up a running gateway with a paired node and a secret, destroy the
// state root, restore, restart: the same CA, the node reconnects by itself, the secret reads back.
const root = mkdtempSync(join(tmpdir(), "palyra-backup-"));
const gatewayRoot = join(root, "gw");
const env = testEnv({ PALYRA_BACKUP_PASSPHRASE: "correct horse battery staple" });
let daemon: DaemonProcess | undefined;
after(async () => {
  await daemon?.stop("SIGKILL");
  rmSync(root, { recursive: true, force: true });
});

const cli = (args: string[], input?: string, e = env) =>
  runCli([...args, "--state-root", gatewayRoot], e, 60_000, input);

test("backup of a running gateway, state root destroyed, restore, restart: same CA, node back, secrets read back", async () => {
  daemon = await startDaemon(gatewayRoot, env);
  const fingerprint = daemon.summary.ca_fingerprint;
  const nodePort = daemon.summary.node_address.slice(daemon.summary.node_address.lastIndexOf(":") + 1);
  const code = await mintCode(gatewayRoot);
  const node = spawnCli(
    [
      "node",
      "run",
      "--mediation",
      "deny",
      "--gateway",
      daemon.summary.node_address,
      "--code",
      code.typed!,
      "--state-root",
      join(root, "node"),
    ],
    env,
  );
  let nodeErr = "";
  node.stderr.on("data", (d) => {
    nodeErr += d;
  });
  const exited = once(node, "close");
  const requestId = (await waitForOutput(node.stdout, /request id\s+([0-9A-Z]{26})/, { exited }))[1]!;
  const running = waitForOutput(node.stdout, /node ([0-9A-Z]{26}) running/, { exited });
  assert.equal((await cli(["pairing", "approve", requestId])).code, 0);
  const deviceId = (await running)[1]!;
  await waitForOutput(node.stderr, /"event":"connected"/, { fromStart: true, exited });
  assert.equal((await cli(["secrets", "set", "global/api-key", "--value-stdin"], "hunter2-value")).code, 0);

  const file = join(root, "gw.backup");
  const backup = await cli(["backup", file, "--json"]);
  assert.equal(backup.code, 0, backup.stderr);
  assert.equal(statSync(file).mode & 0o777, 0o600);
  const archive = readFileSync(file);
  for (const needle of ["hunter2-value", "BEGIN PRIVATE KEY", "PRIVATE KEY"])
    assert.ok(!archive.includes(needle), `the backup holds no plaintext ${needle}`);

  await daemon.stop("SIGTERM");
  rmSync(gatewayRoot, { recursive: true, force: true });
  const wrong = await cli(["restore", file], undefined, {
    ...env,
    PALYRA_BACKUP_PASSPHRASE: "wrong passphrase",
  });
  assert.equal(wrong.code, 3, wrong.stderr);
  rmSync(gatewayRoot, { recursive: true, force: true });
  const restored = await cli(["restore", file, "--json"]);
  assert.equal(restored.code, 0, restored.stderr);
  assert.equal(statSync(gatewayRoot).mode & 0o777, 0o700);
  assert.equal(statSync(join(gatewayRoot, "admin.token")).mode & 0o777, 0o600);
  assert.equal((await cli(["restore", file])).code, 7, "a non-empty state root is refused");

  const connectedBefore = (nodeErr.match(/"event":"connected"/g) ?? []).length;
  daemon = await startDaemon(gatewayRoot, env, ["--node-port", nodePort]);
  assert.equal(daemon.summary.ca_fingerprint, fingerprint, "the same CA");
  const deadline = Date.now() + 60_000;
  while ((nodeErr.match(/"event":"connected"/g) ?? []).length <= connectedBefore) {
    assert.ok(Date.now() < deadline, "the node reconnected by itself");
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal((await cli(["nodes", "invoke", deviceId, "echo", "--input-json", "1"])).code, 0);
  const secret = await cli(["secrets", "get", "global/api-key", "--reveal"]);
  assert.equal(secret.code, 0, secret.stderr);
  assert.equal(secret.stdout, "hunter2-value");

  writeFileSync(join(root, "garbage.backup"), "not a backup");
  const garbage = await runCli(
    ["restore", join(root, "garbage.backup"), "--state-root", join(root, "other")],
    env,
  );
  assert.equal(garbage.code, 2);
  assert.match(garbage.stderr, /not a usable Palyra backup/);
  node.kill("SIGTERM");
  await exited;
});

import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { once } from "node:events";
import { join } from "node:path";
import { test } from "node:test";
import { renewalDelayMs } from "../src/identity/rotation.js";
import { runCli, spawnCli, testEnv } from "./helpers/cli.js";
import { mintCode, pairCliDevice, storedCredentials, waitForOutput } from "./helpers/devices.js";
import { gatewayFixture } from "./helpers/gateway-fixture.js";

// Issue 13, devices recover: a node whose 3-minute certificate expired while it was stopped recovers
// by itself when started again; after revocation a node (gRPC or QUIC) exits 6 with the reason and
// `node status` says revoked; `node run --code NEW` on a removed device's state root pairs again.
// This test waits for a real certificate to expire (about 3 minutes).
const gw = gatewayFixture("palyra-recover-", ["--client-cert-lifetime", "3"]);
const { root, gatewayRoot } = gw;

const cli = (args: string[]) => runCli([...args, "--state-root", gatewayRoot]);

function runNode(name: string, extra: string[] = []) {
  const child = spawnCli(
    ["node", "run", "--mediation", "deny", "--state-root", join(root, name), ...extra],
    testEnv(),
  );
  let stderr = "";
  child.stderr.on("data", (d) => {
    stderr += d;
  });
  const exited = once(child, "close").then(([code]) => code as number | null);
  return { child, exited, stderr: () => stderr };
}

async function pairNode(name: string, extra: string[] = []) {
  const code = await mintCode(gatewayRoot);
  const node = runNode(name, ["--gateway", gw.daemon.summary.node_address, "--code", code.typed!, ...extra]);
  const requestId = (
    await waitForOutput(node.child.stdout, /request id\s+([0-9A-Z]{26})/, { exited: node.exited })
  )[1]!;
  const running = waitForOutput(node.child.stdout, /node ([0-9A-Z]{26}) running/, { exited: node.exited });
  assert.equal((await cli(["pairing", "approve", requestId])).code, 0);
  const deviceId = (await running)[1]!;
  await waitForOutput(node.child.stderr, /"event":"connected"/, { fromStart: true, exited: node.exited });
  return { ...node, deviceId };
}

async function echo(deviceId: string): Promise<number | null> {
  return (await cli(["nodes", "invoke", deviceId, "echo", "--input-json", '{"ok":true}'])).code;
}

test("expired while stopped: recovers by itself; revoked: exits 6 with the reason (gRPC and QUIC); removed: --code pairs again", async (t) => {
  const quicPort = gw.daemon.summary.quic_address!.slice(
    gw.daemon.summary.quic_address!.lastIndexOf(":") + 1,
  );
  // Two operator CLIs, paired first so their 3-minute certificates are due before node A's expiry:
  // one is used after 2/3 of its life (renews), the other only once it expired (recovers).
  const nodeAddress = gw.daemon.summary.node_address;
  const renewing = join(root, "op-renew");
  const returning = join(root, "op-away");
  const renewingId = await pairCliDevice(gatewayRoot, nodeAddress, renewing, { role: "operator" });
  await pairCliDevice(gatewayRoot, nodeAddress, returning, { role: "viewer" });
  const asOperator = (deviceRoot: string) =>
    runCli(["devices", "list", "--gateway", nodeAddress, "--state-root", deviceRoot, "--json"]);
  const a = await pairNode("node-a");
  assert.equal(await echo(a.deviceId), 0);
  a.child.kill("SIGTERM");
  assert.equal(await a.exited, 0);
  const status = JSON.parse(
    (await runCli(["node", "status", "--state-root", join(root, "node-a"), "--json"])).stdout,
  ) as {
    certificate_expires_at: string;
  };
  const expiresAt = Date.parse(status.certificate_expires_at);
  t.diagnostic(`node A's certificate expires at ${status.certificate_expires_at}; waiting for it`);
  // A QUIC node, paired now, to be revoked later.
  const b = await pairNode("node-b", ["--transport", "quic", "--quic-port", quicPort]);

  // The operator CLI used past 2/3 of its certificate's life renews it first (make-before-break).
  const before = await storedCredentials(renewing);
  const cert = new X509Certificate(before.clientCertPem);
  await new Promise((r) => setTimeout(r, renewalDelayMs(before.clientCertPem, Date.now()) + 1_000));
  const renewedRun = await asOperator(renewing);
  assert.equal(renewedRun.code, 0, renewedRun.stderr);
  const after = await storedCredentials(renewing);
  assert.notEqual(after.clientCertPem, before.clientCertPem, "a new certificate was stored");
  assert.ok(Date.parse(new X509Certificate(after.clientCertPem).validTo) > Date.parse(cert.validTo));
  const listed = (
    JSON.parse(renewedRun.stdout) as { devices: { device_id: string; certificate_fingerprint: string }[] }
  ).devices;
  assert.ok(listed.some((d) => d.device_id === renewingId));
  const renewal = await cli([
    "audit",
    "--kind",
    "device.certificate_rotated",
    "--device",
    renewingId,
    "--json",
  ]);
  assert.equal(JSON.parse(renewal.stdout).events.length, 1, renewal.stdout);

  // Stopped past its certificate's expiry (a laptop asleep past its certificate).
  await new Promise((r) => setTimeout(r, Math.max(0, expiresAt - Date.now()) + 2_000));
  const restartedAt = Date.now();
  const again = runNode("node-a");
  await waitForOutput(again.child.stderr, /"event":"recovered"/, { exited: again.exited, ms: 60_000 });
  await waitForOutput(again.child.stderr, /"event":"connected"/, {
    fromStart: true,
    exited: again.exited,
    ms: 60_000,
  });
  assert.equal(await echo(a.deviceId), 0, "echo works again with no operator action");
  const back = Date.now() - restartedAt;
  t.diagnostic(`recovered and answering echo ${back} ms after the restart`);
  assert.ok(back < 60_000);
  // The viewer CLI away past its certificate's expiry recovers it on its next command.
  const recoveredRun = await asOperator(returning);
  assert.equal(recoveredRun.code, 0, recoveredRun.stderr);
  assert.match(recoveredRun.stderr, /certificate had expired; it was recovered/);
  assert.ok(
    Date.parse(new X509Certificate((await storedCredentials(returning)).clientCertPem).validTo) > Date.now(),
  );

  // Revoked: both nodes stop with exit 6 and the operator's reason, each soon after its revocation.
  const exitAfterRevoke = async (
    node: { exited: Promise<number | null> },
    deviceId: string,
    reason: string,
  ) => {
    assert.equal((await cli(["devices", "revoke", deviceId, "--reason", reason])).code, 0);
    const revokedAt = Date.now();
    const code = await node.exited;
    return { code, ms: Date.now() - revokedAt };
  };
  const exitA = await exitAfterRevoke(again, a.deviceId, "laptop stolen");
  const exitB = await exitAfterRevoke(b, b.deviceId, "retired rack");
  t.diagnostic(`exit after revocation: gRPC node ${exitA.ms} ms, QUIC node ${exitB.ms} ms`);
  assert.equal(exitA.code, 6, again.stderr().slice(-800));
  assert.equal(exitB.code, 6, b.stderr().slice(-800));
  assert.match(again.stderr(), /error: this device was revoked: laptop stolen/);
  assert.match(b.stderr(), /error: this device was revoked: retired rack/);
  assert.ok(exitA.ms < 5_000 && exitB.ms < 5_000, "each exits within 5 s of its revocation");
  const revokedStatus = JSON.parse(
    (await runCli(["node", "status", "--state-root", join(root, "node-a"), "--json"])).stdout,
  ) as {
    state: string;
    last_error: string;
  };
  assert.equal(revokedStatus.state, "revoked");
  assert.match(revokedStatus.last_error, /laptop stolen/);

  // Removed at the gateway: `node run --code NEW` forgets the old pairing and pairs as a new device.
  assert.equal((await cli(["devices", "remove", a.deviceId])).code, 0);
  const fresh = await pairNode("node-a");
  assert.notEqual(fresh.deviceId, a.deviceId);
  assert.match(fresh.stderr(), /refuses this node's old pairing .*pairing again as a new device/);
  assert.equal(await echo(fresh.deviceId), 0);
  fresh.child.kill("SIGTERM");
  assert.equal(await fresh.exited, 0);
});

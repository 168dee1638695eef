import assert from "node:assert/strict";
import { once } from "node:events";
import { join } from "node:path";
import { test } from "node:test";
import { runCli, spawnCli, testEnv } from "./helpers/cli.js";
import { mintCode, waitForOutput } from "./helpers/devices.js";
import { gatewayFixture } from "./helpers/gateway-fixture.js";

// `node run --json`: every line on stdout is one JSON object (pairing, then the node's events).
const gw = gatewayFixture("palyra-nodejson-");
const { root, gatewayRoot } = gw;

test("node run --json prints its pairing and its events as JSON lines; palyra audit lists the pairing, the invocation and the revocation", async () => {
  const code = await mintCode(gatewayRoot);
  const child = spawnCli(
    [
      "node",
      "run",
      "--json",
      "--mediation",
      "deny",
      "--gateway",
      gw.daemon.summary.node_address,
      "--code",
      code.typed!,
      "--state-root",
      join(root, "node"),
    ],
    testEnv(),
  );
  let stdout = "";
  child.stdout.on("data", (d) => {
    stdout += d;
  });
  const exited = once(child, "close");
  const requestId = (
    await waitForOutput(child.stdout, /"event":"pairing_requested","request_id":"([0-9A-Z]{26})"/, { exited })
  )[1]!;
  assert.equal((await runCli(["pairing", "approve", requestId, "--state-root", gatewayRoot])).code, 0);
  await waitForOutput(child.stdout, /"event":"connected"/, { exited });
  const deviceId = (/"event":"running","device_id":"([0-9A-Z]{26})"/.exec(stdout) ?? [])[1]!;
  const echo = await runCli([
    "nodes",
    "invoke",
    deviceId,
    "echo",
    "--input-json",
    '{"secret":"s3cr3t-input"}',
    "--state-root",
    gatewayRoot,
  ]);
  assert.equal(echo.code, 0, echo.stderr);
  child.kill("SIGTERM");
  assert.equal((await exited)[0], 0);

  // palyra audit (read from the database) lists the pairing, the invocation and the revocation.
  assert.equal(
    (await runCli(["devices", "revoke", deviceId, "--reason", "test", "--state-root", gatewayRoot])).code,
    0,
  );
  const audit = await runCli([
    "audit",
    "--json",
    "--device",
    deviceId,
    "--since",
    "1h",
    "--state-root",
    gatewayRoot,
  ]);
  assert.equal(audit.code, 0, audit.stderr);
  const kinds = (JSON.parse(audit.stdout) as { events: { kind: string; at: string }[] }).events.map(
    (e) => e.kind,
  );
  for (const kind of ["pairing.approved", "node.invoked", "device.revoked"])
    assert.ok(kinds.includes(kind), `${kind} in ${kinds}`);
  assert.ok(!audit.stdout.includes("s3cr3t-input"), "the invocation's input is not in the audit log");
  const invoked = await runCli(["audit", "--kind", "node", "--ndjson", "--state-root", gatewayRoot]);
  const lines = invoked.stdout
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as { kind: string; detail: { state?: string } });
  assert.ok(lines.length >= 1 && lines.every((l) => l.kind.startsWith("node.")));
  assert.equal(lines.find((l) => l.kind === "node.invoked")?.detail.state, "succeeded");
  assert.equal((await runCli(["audit", "--since", "yesterday-ish", "--state-root", gatewayRoot])).code, 2);
  // --before pages: the page after the newest event is everything else, in the same order.
  const all = JSON.parse((await runCli(["audit", "--json", "--state-root", gatewayRoot])).stdout) as {
    events: { id: string }[];
  };
  const rest = await runCli(["audit", "--json", "--before", all.events[0]!.id, "--state-root", gatewayRoot]);
  assert.deepEqual(
    (JSON.parse(rest.stdout) as { events: { id: string }[] }).events.map((e) => e.id),
    all.events.slice(1).map((e) => e.id),
  );
  assert.equal((await runCli(["audit", "--before", "x", "--state-root", gatewayRoot])).code, 2);
  const events = stdout
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line) as { event: string; time: string });
  const names = events.map((e) => e.event);
  for (const name of ["pairing_requested", "paired", "running", "connected"])
    assert.ok(names.includes(name), `${name} in ${names}`);
  assert.ok(
    events.every((e) => !Number.isNaN(Date.parse(e.time))),
    "every line has an ISO time",
  );
});

import assert from "node:assert/strict";
import { once } from "node:events";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { runCli, spawnCli, testEnv } from "./helpers/cli.js";
import { mintCode, waitForOutput } from "./helpers/devices.js";
import { gatewayFixture } from "./helpers/gateway-fixture.js";

// Issue 13: a node killed during a call: the caller learns node_disconnected when the node's session
// ends, not at the call's deadline.
const SLOW_CAPABILITIES = fileURLToPath(new URL("./fixtures/slow-capabilities.mjs", import.meta.url));
const gw = gatewayFixture("palyra-disconnect-");
const { root, gatewayRoot } = gw;

test("a node SIGKILLed during an 8 s call with a 30 s deadline: the caller gets node_disconnected at once", async (t) => {
  const code = await mintCode(gatewayRoot);
  const node = spawnCli(
    [
      "node",
      "run",
      "--gateway",
      gw.daemon.summary.node_address,
      "--code",
      code.typed!,
      "--capability-module",
      SLOW_CAPABILITIES,
      "--state-root",
      join(root, "node"),
    ],
    testEnv(),
  );
  const exited = once(node, "close");
  const requestId = (await waitForOutput(node.stdout, /request id\s+([0-9A-Z]{26})/, { exited }))[1]!;
  const running = waitForOutput(node.stdout, /node ([0-9A-Z]{26}) running/, { exited });
  assert.equal((await runCli(["pairing", "approve", requestId, "--state-root", gatewayRoot])).code, 0);
  const deviceId = (await running)[1]!;
  await waitForOutput(node.stderr, /"event":"connected"/, { fromStart: true, exited });

  const started = waitForOutput(node.stderr, /"event":"running","detail":"[0-9A-Z]{26} test\.sleep"/, {
    exited,
  });
  const call = runCli(
    [
      "nodes",
      "invoke",
      deviceId,
      "test.sleep",
      "--input-json",
      '{"ms":8000}',
      "--timeout",
      "30",
      "--state-root",
      gatewayRoot,
      "--json",
    ],
    testEnv(),
    60_000,
  );
  await started;
  const killedAt = Date.now();
  node.kill("SIGKILL");
  const result = await call;
  const elapsed = Date.now() - killedAt;
  t.diagnostic(`caller answered ${elapsed} ms after the kill`);
  assert.equal(result.code, 7, result.stderr);
  const body = JSON.parse(result.stdout) as { state: string; error: string };
  assert.equal(body.state, "failed");
  assert.match(body.error, /^node_disconnected: /);
  assert.ok(elapsed < 5_000, `well before the 8 s call or the 30 s deadline (${elapsed} ms)`);
});

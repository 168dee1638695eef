import assert from "node:assert/strict";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { type DaemonProcess, runCli, spawnCli, startDaemon, testEnv } from "./helpers/cli.js";
import { mintCode, waitForOutput } from "./helpers/devices.js";

// Issue 13, pairing survives a crash: of the gateway (SIGKILL while the node waits for approval) and
// of the device (`node run` killed while waiting, then started again without the code).
const root = mkdtempSync(join(tmpdir(), "palyra-resume-"));
const gatewayRoot = join(root, "gw");
let daemon: DaemonProcess | undefined;
after(async () => {
  await daemon?.stop("SIGKILL");
  rmSync(root, { recursive: true, force: true });
});

const cli = (args: string[]) => runCli([...args, "--state-root", gatewayRoot]);

function nodeRun(name: string, extra: string[] = []) {
  const child = spawnCli(
    ["node", "run", "--mediation", "deny", "--state-root", join(root, name), ...extra],
    testEnv(),
  );
  const exited = once(child, "close");
  return { child, exited };
}

async function requestState(requestId: string): Promise<string | undefined> {
  const list = JSON.parse((await cli(["pairing", "list", "--json"])).stdout) as {
    requests: { request_id: string; state: string }[];
  };
  return list.requests.find((r) => r.request_id === requestId)?.state;
}

test("a gateway SIGKILLed while a node waits for approval: after restart and approval the node collects its certificate and runs", async () => {
  daemon = await startDaemon(gatewayRoot);
  const address = daemon.summary.node_address;
  const nodePort = address.slice(address.lastIndexOf(":") + 1);
  const node = nodeRun("node-a", ["--gateway", address, "--code", (await mintCode(gatewayRoot)).typed!]);
  const requestId = (
    await waitForOutput(node.child.stdout, /request id\s+([0-9A-Z]{26})/, { exited: node.exited })
  )[1]!;
  await daemon.stop("SIGKILL");
  daemon = await startDaemon(gatewayRoot, testEnv(), ["--node-port", nodePort]);
  assert.equal(await requestState(requestId), "pending_approval", "the request survived the crash");
  const running = waitForOutput(node.child.stdout, /node ([0-9A-Z]{26}) running/, { exited: node.exited });
  assert.equal((await cli(["pairing", "approve", requestId])).code, 0);
  await running;
  await waitForOutput(node.child.stderr, /"event":"connected"/, { fromStart: true, exited: node.exited });
  assert.equal(await requestState(requestId), "completed");
  node.child.kill("SIGTERM");
  assert.equal((await node.exited)[0], 0);
});

test("node run killed while waiting, approved meanwhile (shown as not collected), started again without the code: it collects and runs", async () => {
  daemon ??= await startDaemon(gatewayRoot);
  const first = nodeRun("node-b", [
    "--gateway",
    daemon.summary.node_address,
    "--code",
    (await mintCode(gatewayRoot)).typed!,
  ]);
  const requestId = (
    await waitForOutput(first.child.stdout, /request id\s+([0-9A-Z]{26})/, { exited: first.exited })
  )[1]!;
  first.child.kill("SIGKILL");
  await first.exited;
  assert.equal((await cli(["pairing", "approve", requestId])).code, 0);
  assert.equal(await requestState(requestId), "approved", "approved, certificate not collected yet");
  const human = await cli(["pairing", "list"]);
  assert.match(human.stdout, new RegExp(`${requestId}\\s+approved \\(not collected\\)`));

  const again = nodeRun("node-b");
  assert.equal(
    (
      await waitForOutput(again.child.stdout, /resuming pairing request ([0-9A-Z]{26})/, {
        exited: again.exited,
      })
    )[1],
    requestId,
  );
  await waitForOutput(again.child.stdout, /node [0-9A-Z]{26} running/, {
    fromStart: true,
    exited: again.exited,
  });
  await waitForOutput(again.child.stderr, /"event":"connected"/, { fromStart: true, exited: again.exited });
  assert.equal(await requestState(requestId), "completed");
  again.child.kill("SIGTERM");
  assert.equal((await again.exited)[0], 0);
});

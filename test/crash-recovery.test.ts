import assert from "node:assert/strict";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import BetterSqlite3 from "better-sqlite3";
import { runCli, spawnCli, startDaemon, testEnv } from "./helpers/cli.js";
import { mintCode, waitForOutput } from "./helpers/devices.js";

const root = mkdtempSync(join(tmpdir(), "palyra-crash-"));
const gatewayRoot = join(root, "gateway");
after(() => rmSync(root, { recursive: true, force: true }));

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

test("SIGKILL of the daemon during a burst of invokes: nothing stays queued or dispatched, the database is intact, the node reconnects", async (t) => {
  const nodePort = String(await freePort());
  let daemon = await startDaemon(gatewayRoot, testEnv(), ["--node-port", nodePort]);
  const minted = await mintCode(gatewayRoot);

  const node = spawnCli(
    [
      "node",
      "run",
      "--gateway",
      `127.0.0.1:${nodePort}`,
      "--code",
      minted.typed!,
      "--mediation",
      "deny",
      "--state-root",
      join(root, "node"),
    ],
    testEnv(),
  );
  after(() => {
    if (node.exitCode === null) node.kill("SIGKILL");
  });
  // Everything the node says, from the start, so a failure shows what it did around the kill.
  let nodeLog = "";
  node.stderr.on("data", (d: Buffer) => {
    nodeLog += d;
  });
  const nodeExited = once(node, "exit");
  const requestId = (await waitForOutput(node.stdout, /request id\s+([0-9A-Z]{26})/))[1]!;
  const connected = waitForOutput(node.stderr, /"event":"connected"/);
  const running = waitForOutput(node.stdout, /node ([0-9A-Z]{26}) running/);
  assert.equal((await runCli(["pairing", "approve", requestId, "--state-root", gatewayRoot])).code, 0);
  const deviceId = (await running)[1]!;
  await connected;

  const token = readFileSync(join(gatewayRoot, "admin.token"), "utf8").trim();
  const invoke = () =>
    fetch(new URL(`/v1/nodes/${deviceId}/invoke`, daemon.summary.admin_url), {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ capability: "system.health", timeout_seconds: 30 }),
    }).then(
      (r) => r.status,
      () => 0,
    );
  const burst = Array.from({ length: 40 }, invoke);
  // Kill as soon as the first calls have been answered, while the rest are in flight.
  await Promise.race(burst);
  daemon.child.kill("SIGKILL");
  await once(daemon.child, "close");
  await Promise.all(burst);

  const reconnected = waitForOutput(node.stderr, /"event":"connected"/, { ms: 60_000, exited: nodeExited });
  daemon = await startDaemon(gatewayRoot, testEnv(), ["--node-port", nodePort]);
  await reconnected.catch((err: Error) => {
    throw new Error(`${err.message}\nthe node's whole log:\n${nodeLog}`);
  });

  const db = new BetterSqlite3(join(gatewayRoot, "palyra.db"), { readonly: true });
  const stuck = db
    .prepare(
      "SELECT count(*) FROM capability_requests WHERE state IN ('queued', 'dispatched', 'awaiting_local_mediation')",
    )
    .pluck()
    .get();
  const total = db.prepare("SELECT count(*) FROM capability_requests").pluck().get() as number;
  const restarted = db
    .prepare("SELECT count(*) FROM capability_requests WHERE error = 'gateway restarted'")
    .pluck()
    .get();
  const integrity = db.pragma("integrity_check", { simple: true });
  db.close();
  assert.equal(stuck, 0);
  assert.ok(total > 0);
  assert.equal(integrity, "ok");
  t.diagnostic(`${total} requests recorded, ${restarted} failed as "gateway restarted" after the SIGKILL`);

  const again = await runCli([
    "nodes",
    "invoke",
    deviceId,
    "echo",
    "--input-json",
    '"again"',
    "--state-root",
    gatewayRoot,
  ]);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(JSON.parse(again.stdout), "again");
  node.kill("SIGTERM");
  assert.equal(((await once(node, "close")) as [number])[0], 0);
  await daemon.stop();
});

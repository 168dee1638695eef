import assert from "node:assert/strict";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { type DaemonProcess, runCli, spawnCli, startDaemon, testEnv } from "./helpers/cli.js";
import { mintCode, waitForOutput } from "./helpers/devices.js";

/**
 * One naming rule for everything the admin API and the CLI print as JSON: snake_case field names, and
 * times as ISO 8601 strings (never epoch numbers). Checked over every read endpoint and `--json` listing
 * with a paired, connected node, so capabilities, presence and audit entries are all present.
 */

const root = mkdtempSync(join(tmpdir(), "palyra-names-"));
const gatewayRoot = join(root, "gateway");
let daemon: DaemonProcess;
let deviceId: string;
before(async () => {
  daemon = await startDaemon(gatewayRoot);
  const code = await mintCode(gatewayRoot);
  const node = spawnCli(
    [
      "node",
      "run",
      "--gateway",
      daemon.summary.node_address,
      "--code",
      code.typed!,
      "--mediation",
      "deny",
      "--state-root",
      join(root, "node"),
    ],
    testEnv(),
  );
  const exited = once(node, "close");
  after(() => {
    if (node.exitCode === null) node.kill("SIGKILL");
  });
  const requestId = (await waitForOutput(node.stdout, /request id\s+([0-9A-Z]{26})/, { exited }))[1]!;
  const connected = waitForOutput(node.stderr, /"event":"connected"/, { exited });
  const running = waitForOutput(node.stdout, /node ([0-9A-Z]{26}) running/, { exited });
  assert.equal((await runCli(["pairing", "approve", requestId, "--state-root", gatewayRoot])).code, 0);
  deviceId = (await running)[1]!;
  await connected;
});
after(async () => {
  await daemon?.stop();
  rmSync(root, { recursive: true, force: true });
});

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$/;

/** Every field name snake_case, every time an ISO string: the offending paths, empty when all is well. */
function naming(value: unknown, path = "$"): string[] {
  if (Array.isArray(value)) return value.flatMap((v, i) => naming(v, `${path}[${i}]`));
  if (value === null || typeof value !== "object") return [];
  const problems: string[] = [];
  for (const [key, v] of Object.entries(value)) {
    const at = `${path}.${key}`;
    if (!/^[a-z][a-z0-9]*(_[a-z0-9]+)*$/.test(key)) problems.push(`${at}: not snake_case`);
    if ((key === "at" || key.endsWith("_at") || key === "accepted_until") && v !== null) {
      if (typeof v !== "string" || !ISO.test(v)) problems.push(`${at}: ${JSON.stringify(v)} is not ISO 8601`);
    }
    problems.push(...naming(v, at));
  }
  return problems;
}

async function get(path: string): Promise<unknown> {
  const token = readFileSync(join(gatewayRoot, "admin.token"), "utf8").trim();
  const res = await fetch(new URL(path, daemon.summary.admin_url), {
    headers: { authorization: `Bearer ${token}` },
  });
  assert.equal(res.status, 200, path);
  return res.json();
}

test("admin API: snake_case names and ISO 8601 times on every read endpoint", async () => {
  for (const path of [
    "/v1/nodes",
    `/v1/nodes/${deviceId}`,
    "/v1/devices",
    `/v1/devices/${deviceId}`,
    "/v1/audit",
    "/v1/pairing/requests",
    "/v1/pairing/codes",
    "/v1/vault",
    "/v1/secrets",
  ])
    assert.deepEqual(naming(await get(path)), [], path);

  const nodes = (await get("/v1/nodes")) as {
    nodes: { capabilities: { name: string; requires_mediation: boolean }[]; last_seen_at: string }[];
  };
  const open = nodes.nodes[0]!.capabilities.find((c) => c.name === "desktop.open_url");
  assert.equal(open?.requires_mediation, true);
  const detail = (await get(`/v1/nodes/${deviceId}`)) as Record<string, unknown>;
  // One name per concept: when the node was last heard from is last_seen_at, in the list and here.
  assert.match(String(detail.last_seen_at), ISO);
  assert.equal("last_heartbeat_at" in detail, false);
  const audit = (await get("/v1/audit")) as { events: { kind: string; device_id?: string; at: string }[] };
  const registered = audit.events.find((e) => e.kind === "node.registered");
  assert.equal(registered?.device_id, deviceId);
  assert.match(registered!.at, ISO);
});

test("CLI --json: snake_case names and ISO 8601 times", async () => {
  for (const args of [
    ["nodes", "list"],
    ["nodes", "describe", deviceId],
    ["devices", "list"],
    ["pairing", "list"],
  ]) {
    const result = await runCli([...args, "--json", "--state-root", gatewayRoot]);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(naming(JSON.parse(result.stdout)), [], args.join(" "));
  }
  const human = await runCli(["nodes", "describe", deviceId, "--state-root", gatewayRoot]);
  assert.match(human.stdout, /^last seen\s+\d{4}-/m);
  assert.match(human.stdout, /desktop\.open_url\s+local/);
});

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import {
  type DaemonProcess,
  recordedOutput,
  runCli,
  spawnCli,
  startDaemon,
  startPair,
  testEnv,
} from "./helpers/cli.js";
import {
  mintCode,
  pairCliDevice,
  spawnTestNode,
  storedCredentials,
  waitForOutput,
} from "./helpers/devices.js";

// Remote operators: CLI devices approved with a role administer the gateway over mutual TLS with their
// own certificates, with the admin token moved out of the way.

const root = mkdtempSync(join(tmpdir(), "palyra-operator-"));
const gw = join(root, "gateway");
const tokenPath = join(gw, "admin.token");
const parked = join(root, "admin.token.parked");
let daemon: DaemonProcess;
let gateway: string;
const devices: Record<"operator" | "viewer" | "plain", { root: string; id: string }> = {} as never;
let nodeId: string;
let node: ReturnType<typeof spawnCli>;

async function pairCli(name: string, role?: string): Promise<{ root: string; id: string }> {
  const deviceRoot = join(root, name);
  const id = await pairCliDevice(gw, gateway, deviceRoot, { name, ...(role ? { role } : {}) });
  return { root: deviceRoot, id };
}

/** Runs an operator command as the device in `deviceRoot`, against the gateway's node port. */
const as = (deviceRoot: string, args: string[]) =>
  runCli([...args, "--gateway", gateway, "--state-root", deviceRoot]);

/** The operator mints a code for a CLI device, and a new laptop in `dir` begins pairing with it. */
async function laptopBegins(dir: string) {
  const minted = await as(devices.operator.root, ["pairing", "code", "--client-kind", "cli", "--json"]);
  assert.equal(minted.code, 0, minted.stderr);
  const pair = startPair(
    ["--gateway", gateway, "--code", JSON.parse(minted.stdout).typed, "--client-kind", "cli"],
    join(root, dir),
  );
  return { pair, requestId: await pair.requestId };
}

/** The operator starts a 60 s `test.sleep` on the node (to be cut while it runs). */
const startLongInvoke = () =>
  spawnCli(
    [
      "nodes",
      "invoke",
      nodeId,
      "test.sleep",
      "--input-json",
      '{"ms":60000}',
      "--timeout",
      "90",
      "--gateway",
      gateway,
      "--state-root",
      devices.operator.root,
    ],
    testEnv(),
  );

before(async () => {
  daemon = await startDaemon(gw);
  gateway = daemon.summary.node_address;
  devices.operator = await pairCli("laptop-operator", "operator");
  devices.viewer = await pairCli("laptop-viewer", "viewer");
  devices.plain = await pairCli("laptop-plain");

  const code = await mintCode(gw);
  node = spawnTestNode(gateway, code.typed!, join(root, "node"));
  const requestId = (await waitForOutput(node.stdout, /request id\s+([0-9A-Z]{26})/))[1]!;
  const connected = waitForOutput(node.stderr, /"event":"connected"/);
  const running = waitForOutput(node.stdout, /node ([0-9A-Z]{26}) running/);
  // A node never gets an operator's role.
  const asOperator = await runCli([
    "pairing",
    "approve",
    requestId,
    "--role",
    "operator",
    "--state-root",
    gw,
  ]);
  assert.equal(asOperator.code, 2, asOperator.stderr);
  assert.match(asOperator.stderr, /"node" cannot hold the operator role/);
  assert.equal((await runCli(["pairing", "approve", requestId, "--state-root", gw])).code, 0);
  nodeId = (await running)[1]!;
  await connected;

  // From here on no command has the token: only device certificates.
  renameSync(tokenPath, parked);
});

after(async () => {
  if (node && node.exitCode === null) node.kill("SIGKILL");
  await daemon?.stop();
  rmSync(root, { recursive: true, force: true });
});

test("an operator device lists devices and approves another device's pairing, with no admin token", async () => {
  const listed = await as(devices.operator.root, ["devices", "list", "--json"]);
  assert.equal(listed.code, 0, listed.stderr);
  const rows = (JSON.parse(listed.stdout) as { devices: { device_id: string; role: string | null }[] })
    .devices;
  const roleOf = (id: string) => rows.find((d) => d.device_id === id)?.role;
  assert.equal(roleOf(devices.operator.id), "operator");
  assert.equal(roleOf(devices.viewer.id), "viewer");
  assert.equal(roleOf(devices.plain.id), null);
  assert.equal(roleOf(nodeId), null);

  // A new laptop pairs; the operator mints its code, sees the request with its comparison code, approves.
  const { pair, requestId } = await laptopBegins("laptop-new");
  const pending = await as(devices.operator.root, ["pairing", "list", "--json"]);
  assert.equal(pending.code, 0, pending.stderr);
  const request = (
    JSON.parse(pending.stdout) as { requests: { request_id: string; comparison_code: string }[] }
  ).requests.find((r) => r.request_id === requestId);
  assert.match(request?.comparison_code ?? "", /^\d{6}$|^[0-9A-Z-]+$/);
  const approved = await as(devices.operator.root, ["pairing", "approve", requestId, "--json"]);
  assert.equal(approved.code, 0, approved.stderr);
  assert.equal(JSON.parse(approved.stdout).decided_by, `device:${devices.operator.id}`);
  assert.equal((await pair.exit).code, 0);

  // The audit log (read from the gateway's database, no token needed) names the approving device.
  const audit = await runCli(["audit", "--kind", "pairing.approved", "--state-root", gw, "--json"]);
  assert.equal(audit.code, 0, audit.stderr);
  const events = (JSON.parse(audit.stdout) as { events: { actor: string; detail: { request_id: string } }[] })
    .events;
  assert.equal(events.find((e) => e.detail.request_id === requestId)?.actor, `device:${devices.operator.id}`);

  const context = await runCli([
    "context",
    "--gateway",
    gateway,
    "--state-root",
    devices.operator.root,
    "--json",
  ]);
  assert.equal(context.code, 0, context.stderr);
  const ctx = JSON.parse(context.stdout);
  assert.equal(ctx.target, "remote");
  assert.equal(ctx.role, "operator");
  assert.equal(ctx.device_id, devices.operator.id);
});

test("a viewer lists but cannot approve (exit 6); a device without a role can do neither (exit 6)", async () => {
  const { pair, requestId } = await laptopBegins("laptop-undecided");

  const viewerList = await as(devices.viewer.root, ["devices", "list", "--json"]);
  assert.equal(viewerList.code, 0, viewerList.stderr);
  const viewerApprove = await as(devices.viewer.root, ["pairing", "approve", requestId]);
  assert.equal(viewerApprove.code, 6, viewerApprove.stderr);
  assert.match(viewerApprove.stderr, /needs the operator role; this device is a viewer/);

  const plainList = await as(devices.plain.root, ["devices", "list", "--json"]);
  assert.equal(plainList.code, 6, plainList.stderr);
  assert.match(plainList.stdout, /no role/);
  const plainApprove = await as(devices.plain.root, ["pairing", "approve", requestId]);
  assert.equal(plainApprove.code, 6, plainApprove.stderr);

  // A role given now applies to the very next call; taking it away too. Both are audited.
  const grant = await as(devices.operator.root, [
    "devices",
    "set-role",
    devices.plain.id,
    "viewer",
    "--json",
  ]);
  assert.equal(grant.code, 0, grant.stderr);
  assert.equal(JSON.parse(grant.stdout).role, "viewer");
  assert.equal((await as(devices.plain.root, ["devices", "list", "--json"])).code, 0);
  assert.equal((await as(devices.operator.root, ["devices", "set-role", devices.plain.id, "none"])).code, 0);
  assert.equal((await as(devices.plain.root, ["devices", "list", "--json"])).code, 6);
  const described = await as(devices.viewer.root, ["devices", "describe", devices.plain.id, "--json"]);
  assert.equal(described.code, 0, described.stderr);
  assert.equal(JSON.parse(described.stdout).role, null);
  const nodeRole = await as(devices.operator.root, ["devices", "set-role", nodeId, "viewer"]);
  assert.equal(nodeRole.code, 2, nodeRole.stderr);
  const audit = await runCli(["audit", "--kind", "device.role_changed", "--state-root", gw, "--json"]);
  const changes = (JSON.parse(audit.stdout) as { events: { actor: string; detail: { to: string | null } }[] })
    .events;
  assert.deepEqual(
    changes.map((e) => [e.actor, e.detail.to]),
    [
      [`device:${devices.operator.id}`, null],
      [`device:${devices.operator.id}`, "viewer"],
    ],
  );

  const rejected = await as(devices.operator.root, ["pairing", "reject", requestId, "--reason", "not ours"]);
  assert.equal(rejected.code, 0, rejected.stderr);
  assert.notEqual((await pair.exit).code, 0);
});

test("python3-grpcio calls OperatorService (WhoAmI, ListDevices, a hostile DescribeDevice) with the operator's key and certificate", async () => {
  const creds = await storedCredentials(devices.operator.root);
  const dir = mkdtempSync(join(root, "py-"));
  for (const [file, pem] of [
    ["key.pem", creds.clientKeyPem],
    ["cert.pem", creds.clientCertPem],
    ["ca.pem", creds.caCertPem],
  ] as const)
    writeFileSync(join(dir, file), pem, { mode: 0o600 });
  // Empty request messages are zero bytes; the reply's field 1 is the JSON document.
  const script = `
import sys, grpc, json
d, target = sys.argv[1:3]
read = lambda f: open(f"{d}/{f}", "rb").read()
creds = grpc.ssl_channel_credentials(root_certificates=read("ca.pem"), private_key=read("key.pem"), certificate_chain=read("cert.pem"))
channel = grpc.secure_channel(target, creds, options=[("grpc.ssl_target_name_override", "localhost")])
def call(method, request=b""):
    reply = channel.unary_unary(f"/palyra.v1.OperatorService/{method}", request_serializer=lambda b: b, response_deserializer=lambda b: b)(request, timeout=10)
    assert reply[0] == 0x0a, reply[:4]
    n, shift, i = 0, 0, 1
    while True:
        b = reply[i]; n |= (b & 0x7f) << shift; shift += 7; i += 1
        if b < 0x80: break
    return json.loads(reply[i:i + n])
me = call("WhoAmI")
listed = call("ListDevices")
# A device id that would climb out of its route is refused before any route is looked at.
try:
    call("DescribeDevice", b"\\x0a\\x0a../devices")
    bad = "accepted"
except grpc.RpcError as e:
    bad = e.code().name + " " + e.details()
print(json.dumps({"role": me["role"], "device_id": me["device_id"], "devices": len(listed["devices"]), "bad": bad}))
`;
  const run = spawnSync("/usr/bin/python3", ["-c", script, dir, gateway], {
    encoding: "utf8",
    timeout: 30_000,
  });
  assert.equal(run.status, 0, run.stderr);
  const out = JSON.parse(run.stdout);
  assert.equal(out.role, "operator");
  assert.equal(out.device_id, devices.operator.id);
  assert.ok(out.devices >= 4);
  assert.equal(out.bad, "INVALID_ARGUMENT device_id must be a canonical ULID");
});

test("secrets and the audit log from a laptop: operators set, reveal and delete; viewers see metadata only", async () => {
  const set = spawnCli(
    [
      "secrets",
      "set",
      "global/remote_token",
      "--value-stdin",
      "--gateway",
      gateway,
      "--state-root",
      devices.operator.root,
      "--json",
    ],
    testEnv(),
  );
  set.stdin.end("s3cret-from-laptop");
  const [setCode] = (await once(set, "close")) as [number];
  assert.equal(setCode, 0);

  const listed = await as(devices.viewer.root, ["secrets", "list", "--json"]);
  assert.equal(listed.code, 0, listed.stderr);
  assert.ok(listed.stdout.includes("global/remote_token"));
  assert.ok(!listed.stdout.includes("s3cret-from-laptop"));
  const viewerReveal = await as(devices.viewer.root, ["secrets", "get", "global/remote_token", "--reveal"]);
  assert.equal(viewerReveal.code, 6, viewerReveal.stderr);
  assert.ok(!viewerReveal.stdout.includes("s3cret"));
  const metadata = await as(devices.viewer.root, ["secrets", "get", "global/remote_token", "--json"]);
  assert.equal(metadata.code, 0, metadata.stderr);
  assert.equal(JSON.parse(metadata.stdout).size, 18);

  const revealed = await as(devices.operator.root, ["secrets", "get", "global/remote_token", "--reveal"]);
  assert.equal(revealed.code, 0, revealed.stderr);
  assert.equal(revealed.stdout, "s3cret-from-laptop");

  // The reveal was recorded, with the laptop as the actor, and the viewer can read that from afar.
  const audit = await as(devices.viewer.root, ["audit", "--kind", "secret", "--json"]);
  assert.equal(audit.code, 0, audit.stderr);
  const events = (JSON.parse(audit.stdout) as { events: { kind: string; actor: string }[] }).events;
  assert.deepEqual(
    events.map((e) => [e.kind, e.actor]),
    [
      ["secret.revealed", `device:${devices.operator.id}`],
      ["secret.set", `device:${devices.operator.id}`],
    ],
  );
  const aboutNode = await as(devices.viewer.root, ["audit", "--device", nodeId, "--json"]);
  const nodeEvents = (JSON.parse(aboutNode.stdout) as { events: { device_id: string }[] }).events;
  assert.ok(nodeEvents.length > 0 && nodeEvents.every((e) => e.device_id === nodeId));

  assert.equal((await as(devices.viewer.root, ["secrets", "delete", "global/remote_token"])).code, 6);
  assert.equal((await as(devices.operator.root, ["secrets", "delete", "global/remote_token"])).code, 0);
  assert.equal((await as(devices.operator.root, ["secrets", "get", "global/remote_token"])).code, 8);
});

test("demoting the operator to viewer cuts its running invoke (cancelled on the node); it still reads as a viewer", async () => {
  const invoke = startLongInvoke();
  const ended = once(invoke, "close");
  await waitForOutput(node.stderr, /"event":"running".*test\.sleep/);
  const cancelled = waitForOutput(node.stderr, /"event":"cancelled".*test\.sleep/, { ms: 10_000 });

  renameSync(parked, tokenPath);
  try {
    const demoted = await runCli(["devices", "set-role", devices.operator.id, "viewer", "--state-root", gw]);
    assert.equal(demoted.code, 0, demoted.stderr);
    const [code] = (await Promise.race([
      ended,
      new Promise((_, reject) => setTimeout(() => reject(new Error("the invoke was not cut")), 10_000)),
    ])) as [number];
    assert.notEqual(code, 0, recordedOutput(invoke.stderr));
    await cancelled;

    // Back on the gateway, it has only what a viewer has: it reads, and a new invoke is refused.
    assert.equal((await as(devices.operator.root, ["devices", "list"])).code, 0);
    const refused = await as(devices.operator.root, ["nodes", "invoke", nodeId, "echo", "--input-json", "1"]);
    assert.equal(refused.code, 6, refused.stderr);
  } finally {
    const restored = await runCli([
      "devices",
      "set-role",
      devices.operator.id,
      "operator",
      "--state-root",
      gw,
    ]);
    renameSync(tokenPath, parked);
    assert.equal(restored.code, 0, restored.stderr);
  }
});

test("revoking the operator device cuts its running nodes invoke, and its next command exits 3 or 6", async () => {
  const invoke = startLongInvoke();
  let stderr = "";
  invoke.stderr.on("data", (d: Buffer) => {
    stderr += d;
  });
  const ended = once(invoke, "close");
  await waitForOutput(node.stderr, /"event":"running".*test\.sleep/);

  renameSync(parked, tokenPath);
  const revoked = await runCli(["devices", "revoke", devices.operator.id, "--state-root", gw, "--json"]);
  renameSync(tokenPath, parked);
  assert.equal(revoked.code, 0, revoked.stderr);
  assert.ok(JSON.parse(revoked.stdout).connections_closed >= 1);
  const [code] = (await Promise.race([
    ended,
    new Promise((_, reject) => setTimeout(() => reject(new Error("the invoke was not cut")), 10_000)),
  ])) as [number];
  assert.notEqual(code, 0, stderr);
  // The capability it started is cancelled on the node too, not left to run out its 60 s.
  await waitForOutput(node.stderr, /"event":"cancelled".*test\.sleep/, { fromStart: true, ms: 10_000 });

  const next = await as(devices.operator.root, ["devices", "list"]);
  assert.ok(next.code === 3 || next.code === 6, `exit ${next.code}: ${next.stderr}`);
  assert.match(next.stderr, /revoked/);
});

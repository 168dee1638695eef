import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { runCli, startDaemon } from "./helpers/cli.js";

const root = mkdtempSync(join(tmpdir(), "palyra-daemon-"));
after(() => rmSync(root, { recursive: true, force: true }));

const secretFile = (key: string) => `${Buffer.from(key).toString("base64url")}.sec`;

test("daemon: serves /healthz, reuses its CA across restarts, exits 0 on SIGTERM and SIGINT", async () => {
  const stateRoot = join(root, "a");
  const first = await startDaemon(stateRoot);
  const health = await fetch(new URL("/healthz", first.summary.admin_url));
  assert.equal(health.status, 200);
  const body = (await health.json()) as { status: string; ca_fingerprint: string };
  assert.equal(body.status, "ok");
  assert.equal(body.ca_fingerprint, first.summary.ca_fingerprint);
  const token = readFileSync(join(stateRoot, "admin.token"), "utf8").trim();
  const unknown = await fetch(new URL("/v1/nope", first.summary.admin_url), {
    headers: { authorization: `Bearer ${token}` },
  });
  assert.equal(unknown.status, 404);
  assert.equal((await fetch(new URL("/v1/nope", first.summary.admin_url))).status, 401);
  assert.equal((await fetch(new URL("/metrics", first.summary.admin_url))).status, 401);
  const metrics = await fetch(new URL("/metrics", first.summary.admin_url), {
    headers: { authorization: `Bearer ${token}` },
  });
  assert.equal(metrics.status, 200);
  assert.match(metrics.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  const exposition = await metrics.text();
  assert.match(exposition, /\npalyra_devices\{state="active"\} 0\n/);
  assert.match(exposition, /\npalyra_nodes\{presence="online"\} 0\n/);
  assert.match(exposition, /\npalyra_vault_secrets 0\n/);
  assert.ok(existsSync(join(stateRoot, "daemon.json")));
  assert.equal(statSync(stateRoot).mode & 0o777, 0o700);

  const shown = await runCli(["ca", "show", "--state-root", stateRoot, "--json"]);
  assert.equal(shown.code, 0, shown.stderr);
  const ca = JSON.parse(shown.stdout);
  assert.equal(ca.fingerprint_sha256, first.summary.ca_fingerprint);
  assert.match(ca.subject, /^CN=Palyra Gateway CA [0-9a-f]{8}$/);
  assert.equal(ca.subject.slice(-8), ca.spki_sha256.slice(0, 8));

  assert.equal(await first.stop("SIGTERM"), 0);
  assert.ok(!existsSync(join(stateRoot, "daemon.json")), "daemon.json is removed on a clean stop");
  const logs = first
    .stderr()
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
  assert.ok(logs.some((l) => l.msg === "created gateway CA"));
  assert.ok(logs.some((l) => l.msg === "gateway stopped"));

  const second = await startDaemon(stateRoot);
  assert.equal(second.summary.ca_fingerprint, first.summary.ca_fingerprint, "same CA after restart");
  assert.ok(second.stderr().includes("loaded gateway CA"));
  assert.equal(await second.stop("SIGINT"), 0);
});

test("daemon: refuses to start when the database knows a CA whose key is gone", async () => {
  const stateRoot = join(root, "b");
  const daemon = await startDaemon(stateRoot);
  assert.equal(await daemon.stop(), 0);
  const keyFile = join(stateRoot, "secrets", secretFile("ca/private-key"));
  assert.ok(existsSync(keyFile), `expected ${keyFile}; have ${readdirSync(join(stateRoot, "secrets"))}`);
  rmSync(keyFile);
  const result = await runCli(["daemon", "--state-root", stateRoot, "--admin-port", "0", "--node-port", "0"]);
  assert.equal(result.code, 7);
  assert.match(result.stderr, /error: the CA key is missing from the secret store/);
  assert.match(result.stderr, new RegExp(`database records CA ${daemon.summary.ca_fingerprint}`));
  assert.match(result.stderr, /refusing to start/);
});

test("daemon: a second daemon on the same state root is refused", async () => {
  const stateRoot = join(root, "c");
  const daemon = await startDaemon(stateRoot);
  const again = await runCli(["daemon", "--state-root", stateRoot, "--admin-port", "0", "--node-port", "0"]);
  assert.equal(again.code, 7);
  assert.match(again.stderr, /already uses/);
  assert.equal(await daemon.stop(), 0);
});

test("daemon: bad configuration is a usage error naming the problem", async () => {
  const stateRoot = join(root, "d");
  const bind = await runCli(["daemon", "--state-root", stateRoot, "--admin-host", "0.0.0.0"]);
  assert.equal(bind.code, 6);
  assert.match(bind.stderr, /not loopback; pass --allow-non-loopback/);
  const port = await runCli(["daemon", "--state-root", stateRoot, "--admin-port", "99999"]);
  assert.equal(port.code, 2);
  assert.match(port.stderr, /admin\.port/);
});

test("doctor --json reports permissions, key mode and a running daemon", async () => {
  const stateRoot = join(root, "e");
  const daemon = await startDaemon(stateRoot);
  const result = await runCli(["doctor", "--state-root", stateRoot, "--json"]);
  assert.equal(result.code, 0, result.stdout + result.stderr);
  const report = JSON.parse(result.stdout) as {
    ok: boolean;
    checks: { name: string; status: string; detail: string }[];
  };
  const byName = Object.fromEntries(report.checks.map((c) => [c.name, c]));
  assert.equal(report.ok, true);
  assert.equal(byName["state root"]?.status, "ok");
  assert.equal(byName["file permissions"]?.status, "ok");
  assert.equal(byName["secret store"]?.status, "ok");
  assert.match(byName["secret store"]?.detail ?? "", /passphrase mode/);
  assert.equal(byName.daemon?.status, "ok");
  assert.equal(await daemon.stop(), 0);
});

test("doctor: key-file mode is reported as weak, and loose permissions fail", async () => {
  const stateRoot = join(root, "f");
  const env = { ...process.env };
  delete env.DBUS_SESSION_BUS_ADDRESS;
  delete env.PALYRA_STORE_PASSPHRASE;
  const daemon = await startDaemon(stateRoot, env);
  assert.equal(await daemon.stop(), 0);
  const { chmodSync } = await import("node:fs");
  chmodSync(join(stateRoot, "palyra.db"), 0o644);
  const result = await runCli(["doctor", "--state-root", stateRoot, "--json"], env);
  assert.equal(result.code, 7);
  const report = JSON.parse(result.stdout) as { checks: { name: string; status: string; detail: string }[] };
  const byName = Object.fromEntries(report.checks.map((c) => [c.name, c]));
  assert.equal(byName["secret store"]?.status, "warn");
  assert.match(byName["secret store"]?.detail ?? "", /key-file mode \(weak/);
  assert.equal(byName["file permissions"]?.status, "fail");
  assert.match(byName["file permissions"]?.detail ?? "", /palyra\.db \(0644\)/);
});

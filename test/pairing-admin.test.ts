import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { type DaemonProcess, runCli, startDaemon } from "./helpers/cli.js";

const root = mkdtempSync(join(tmpdir(), "palyra-admin-"));
const stateRoot = join(root, "state");
let daemon: DaemonProcess;
before(async () => {
  daemon = await startDaemon(stateRoot);
});
after(async () => {
  await daemon?.stop();
  rmSync(root, { recursive: true, force: true });
});

test("the admin API needs the bearer token, kept 0600 in the state root", async () => {
  const tokenPath = join(stateRoot, "admin.token");
  assert.equal(statSync(tokenPath).mode & 0o777, 0o600);
  const url = new URL("/v1/pairing/codes", daemon.summary.admin_url);
  assert.equal((await fetch(url)).status, 401);
  assert.equal((await fetch(url, { headers: { authorization: "Bearer wrong" } })).status, 401);
  const token = readFileSync(tokenPath, "utf8").trim();
  const ok = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(ok.status, 200);
  const bad = await fetch(url, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ method: "sms" }),
  });
  assert.equal(bad.status, 400);
  assert.match(((await bad.json()) as { error: { message: string } }).error.message, /method/);
});

test("pairing code --json shows the PIN once; list never shows it; deciding unknown requests is not found", async () => {
  const minted = await runCli(["pairing", "code", "--method", "pin", "--state-root", stateRoot, "--json"]);
  assert.equal(minted.code, 0, minted.stderr);
  const code = JSON.parse(minted.stdout) as {
    code_id: string;
    method: string;
    expires_at: string;
    pin: string;
    typed: string;
  };
  assert.match(code.code_id, /^[0-9A-HJKMNP-TV-Z]{4}$/);
  assert.equal(code.method, "pin");
  assert.match(code.pin, /^[0-9]{6}$/);
  assert.equal(code.typed, `${code.code_id}-${code.pin}`);
  assert.ok(Date.parse(code.expires_at) > Date.now());

  const qr = await runCli(["pairing", "code", "--method", "qr", "--state-root", stateRoot, "--json"]);
  assert.equal(qr.code, 0, qr.stderr);
  const qrUri = (JSON.parse(qr.stdout) as { qr_uri: string }).qr_uri;
  assert.match(
    qrUri,
    /^palyra:\/\/pair\?v=1&gw=127\.0\.0\.1%3A[0-9]+&id=[0-9A-Z]{4}&s=[A-Za-z0-9_-]{22}&ca=[A-Za-z0-9_-]{43}&k=node$/,
  );
  const human = await runCli(["pairing", "code", "--method", "qr", "--state-root", stateRoot]);
  assert.equal(human.code, 0, human.stderr);
  assert.ok(human.stdout.includes("▄") || human.stdout.includes("█"), "a terminal QR code is drawn");

  const list = await runCli(["pairing", "list", "--state-root", stateRoot, "--json"]);
  assert.equal(list.code, 0, list.stderr);
  assert.ok(!list.stdout.includes(code.pin));
  assert.ok(!list.stdout.includes(new URL(qrUri.replace("palyra:", "http:")).searchParams.get("s")!));
  const listed = JSON.parse(list.stdout) as { codes: { code_id: string; state: string }[] };
  assert.ok(listed.codes.some((c) => c.code_id === code.code_id && c.state === "live"));

  const unknown = await runCli([
    "pairing",
    "approve",
    "01ARZ3NDEKTSV4RRFFQ69G5FAV",
    "--state-root",
    stateRoot,
  ]);
  assert.equal(unknown.code, 8);
  assert.match(unknown.stderr, /^error: no pairing request 01ARZ3NDEKTSV4RRFFQ69G5FAV\n$/);
  const badTtl = await runCli(["pairing", "code", "--ttl", "30s", "--state-root", stateRoot]);
  assert.equal(badTtl.code, 2);
  assert.match(badTtl.stderr, /between 1 minute and 24 hours/);

  const logs = daemon.stderr();
  assert.ok(!logs.includes(code.pin), "the PIN never reaches the logs");
});

test("pairing commands without a running daemon exit 4 with a clear message", async () => {
  const result = await runCli(["pairing", "list", "--state-root", join(root, "nothing")]);
  assert.equal(result.code, 4);
  assert.match(result.stderr, /no running daemon/);
});

test("finding 8: pairing code prints the exact device command; a code used by the wrong kind says which command fits", async () => {
  const nodeAddress = daemon.summary.node_address;
  const pin = await runCli(["pairing", "code", "--state-root", stateRoot]);
  assert.equal(pin.code, 0, pin.stderr);
  const typed = /pairing code {2}(\S+)/.exec(pin.stdout)![1]!;
  assert.ok(
    pin.stdout.includes(`palyra node run --gateway ${nodeAddress} --code ${typed}\n`),
    `the node command, filled in: ${pin.stdout}`,
  );
  const cliQr = await runCli([
    "pairing",
    "code",
    "--method",
    "qr",
    "--client-kind",
    "cli",
    "--state-root",
    stateRoot,
    "--json",
  ]);
  const qr = JSON.parse(cliQr.stdout) as { qr_uri: string; device_command: string };
  assert.equal(qr.device_command, `palyra pair --qr-uri '${qr.qr_uri}'`);
  const desktop = JSON.parse(
    (await runCli(["pairing", "code", "--client-kind", "desktop", "--state-root", stateRoot, "--json"]))
      .stdout,
  ) as { typed: string; device_command: string };
  assert.equal(
    desktop.device_command,
    `palyra pair --gateway ${nodeAddress} --code ${desktop.typed} --client-kind desktop`,
  );

  // `palyra pair` (kind cli) with the node code: refused once the device has proved the code, with the
  // command that fits; the code stays usable.
  const wrongKind = await runCli([
    "pair",
    "--gateway",
    nodeAddress,
    "--code",
    typed,
    "--state-root",
    join(root, "device-wrong-kind"),
  ]);
  assert.equal(wrongKind.code, 7, wrongKind.stderr);
  assert.equal(
    wrongKind.stderr,
    `error: this pairing code was minted for client kind "node", not "cli"; use it with: palyra node run --gateway ${nodeAddress} --code ${typed}\n`,
  );
  // `node run` with a QR code minted for a cli device is refused before anything is sent.
  const nodeWithCliQr = await runCli([
    "node",
    "run",
    "--qr-uri",
    qr.qr_uri,
    "--state-root",
    join(root, "node-cli-qr"),
  ]);
  assert.equal(nodeWithCliQr.code, 7, nodeWithCliQr.stderr);
  assert.match(
    nodeWithCliQr.stderr,
    /minted for client kind "cli", not "node"; use it with: palyra pair --qr-uri 'palyra:\/\/pair\?/,
  );
  const list = JSON.parse(
    (await runCli(["pairing", "list", "--state-root", stateRoot, "--json"])).stdout,
  ) as {
    codes: { code_id: string; state: string; failed_attempts: number }[];
  };
  const used = list.codes.find((c) => typed.startsWith(c.code_id));
  assert.equal(used?.state, "live");
  assert.equal(used?.failed_attempts, 0);
});

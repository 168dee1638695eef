import assert from "node:assert/strict";
import {
  chmodSync,
  cpSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { runCli, startDaemon, testEnv } from "./helpers/cli.js";

/**
 * `palyra doctor` on a damaged state root: every kind of damage is a failed check that names the
 * damaged file, in the human output and in --json, and the command exits 7 without crashing.
 *
 * One daemon run makes a healthy state root with both weak key files (no keyring, no passphrases), so
 * `secrets.kek` and `vault/vault.key` exist; each test damages its own copy.
 */

const root = mkdtempSync(join(tmpdir(), "palyra-doctor-"));
after(() => rmSync(root, { recursive: true, force: true }));
const base = join(root, "base");
const env = testEnv();
delete env.PALYRA_STORE_PASSPHRASE;
delete env.PALYRA_VAULT_PASSPHRASE;
delete env.PALYRA_VAULT_BACKEND;

const secretFile = (key: string) => `${Buffer.from(key).toString("base64url")}.sec`;
const CA_KEY_FILE = join("secrets", secretFile("ca/private-key"));

before(async () => {
  const daemon = await startDaemon(base, env);
  assert.equal(await daemon.stop(), 0);
});

let copies = 0;
/** A fresh copy of the healthy state root (modes kept). */
function copyOfBase(): string {
  const dir = join(root, `copy-${++copies}`);
  cpSync(base, dir, { recursive: true });
  // Node 22's cpSync makes directories with the umask's mode (20 kept the source's): keep them.
  const keepModes = (from: string, to: string) => {
    chmodSync(to, statSync(from).mode & 0o777);
    for (const entry of readdirSync(from, { withFileTypes: true }))
      if (entry.isDirectory()) keepModes(join(from, entry.name), join(to, entry.name));
  };
  keepModes(base, dir);
  return dir;
}

function flipByte(path: string, at: (length: number) => number): void {
  const bytes = readFileSync(path);
  const i = at(bytes.length);
  bytes[i] = (bytes[i] ?? 0) ^ 0x01;
  writeFileSync(path, bytes);
}

interface Report {
  ok: boolean;
  checks: { name: string; status: string; detail: string }[];
}

/** Runs doctor twice (human and --json) and checks what every damaged root must show. */
async function doctorFails(stateRoot: string, check: string, file: string, detail?: RegExp) {
  const [human, json] = await Promise.all([
    runCli(["doctor", "--state-root", stateRoot], env),
    runCli(["doctor", "--state-root", stateRoot, "--json"], env),
  ]);
  for (const r of [human, json]) {
    assert.equal(r.code, 7, `exit 7 expected\n${r.stdout}\n${r.stderr}`);
    assert.doesNotMatch(r.stderr, /internal error|\n\s+at /, "no crash, no stack trace");
  }
  const report = JSON.parse(json.stdout) as Report;
  assert.equal(report.ok, false);
  const failed = report.checks.find((c) => c.name === check);
  assert.ok(failed, `no '${check}' check in ${json.stdout}`);
  assert.equal(failed.status, "fail", json.stdout);
  assert.ok(failed.detail.includes(file), `'${check}' should name ${file}: ${failed.detail}`);
  if (detail) assert.match(failed.detail, detail);
  const line = human.stdout.split("\n").find((l) => l.startsWith("fail") && l.includes(check));
  assert.ok(line, `human output has a failed '${check}' line: ${human.stdout}`);
  assert.ok(line.includes(file), `human output names ${file}: ${line}`);
  return report;
}

test("a healthy copy passes, and doctor unlocks every key to say so", async () => {
  const dir = copyOfBase();
  const result = await runCli(["doctor", "--state-root", dir, "--json"], env);
  assert.equal(result.code, 0, result.stdout + result.stderr);
  const report = JSON.parse(result.stdout) as Report;
  const byName = Object.fromEntries(report.checks.map((c) => [c.name, c]));
  assert.equal(byName["file permissions"]?.status, "ok");
  assert.equal(byName["secret store"]?.status, "warn", "key-file mode is weak");
  assert.match(byName["secret store"]?.detail ?? "", /key check passes/);
  assert.match(byName.vault?.detail ?? "", /vault key opens the vault/);
  assert.equal(byName["certificate authority"]?.status, "ok");
  assert.match(byName["certificate authority"]?.detail ?? "", /key matches/);
  assert.equal(byName["admin token"]?.status, "ok");
});

test("a missing CA key fails, naming the secret file", async () => {
  const dir = copyOfBase();
  unlinkSync(join(dir, CA_KEY_FILE));
  await doctorFails(dir, "certificate authority", join(dir, CA_KEY_FILE), /missing/);
});

test("a corrupt CA key fails, naming the secret file", async () => {
  const dir = copyOfBase();
  flipByte(join(dir, CA_KEY_FILE), (n) => n - 5);
  await doctorFails(dir, "certificate authority", join(dir, CA_KEY_FILE), /damaged|authentication/);
});

test("a ca.pem that is not a certificate fails, naming ca.pem, without a crash", async () => {
  const dir = copyOfBase();
  writeFileSync(join(dir, "ca.pem"), "-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n");
  await doctorFails(dir, "certificate authority", join(dir, "ca.pem"));
});

test("a ca.pem of another CA fails: the CA key does not match it", async () => {
  const dir = copyOfBase();
  const other = join(root, "other-ca");
  const daemon = await startDaemon(other, env);
  assert.equal(await daemon.stop(), 0);
  cpSync(join(other, "ca.pem"), join(dir, "ca.pem"));
  await doctorFails(dir, "certificate authority", join(dir, "ca.pem"), /does not match/);
});

test("a flipped secrets.kek fails, naming the key file", async () => {
  const dir = copyOfBase();
  flipByte(join(dir, "secrets.kek"), () => 3);
  await doctorFails(dir, "secret store", join(dir, "secrets.kek"));
});

test("a flipped key check in store.json fails, naming store.json", async () => {
  const dir = copyOfBase();
  const path = join(dir, "secrets", "store.json");
  const meta = JSON.parse(readFileSync(path, "utf8")) as { check: string };
  const bytes = Buffer.from(meta.check, "base64url");
  bytes[bytes.length - 3] = (bytes[bytes.length - 3] ?? 0) ^ 0x01;
  meta.check = bytes.toString("base64url");
  writeFileSync(path, JSON.stringify(meta, null, 2));
  await doctorFails(dir, "secret store", path, /key check/);
});

test("a flipped vault.key fails, naming vault.key", async () => {
  const dir = copyOfBase();
  flipByte(join(dir, "vault", "vault.key"), () => 7);
  await doctorFails(dir, "vault", join(dir, "vault", "vault.key"));
});

test("a vault.key readable by others fails, naming the file, its mode and the fix", async () => {
  const dir = copyOfBase();
  const path = join(dir, "vault", "vault.key");
  chmodSync(path, 0o644);
  const report = await doctorFails(dir, "file permissions", path, /0644/);
  const perms = report.checks.find((c) => c.name === "file permissions");
  assert.match(perms?.detail ?? "", new RegExp(`chmod 600 ${path.replace(/[.]/g, "\\.")}`));
});

test("admin.token: missing, readable by others, or malformed fails, naming the file", async () => {
  const missing = copyOfBase();
  unlinkSync(join(missing, "admin.token"));
  await doctorFails(missing, "admin token", join(missing, "admin.token"), /missing/);

  const loose = copyOfBase();
  chmodSync(join(loose, "admin.token"), 0o644);
  await doctorFails(loose, "admin token", join(loose, "admin.token"), /0644.*chmod 600/);

  const malformed = copyOfBase();
  writeFileSync(join(malformed, "admin.token"), "not a token\n", { mode: 0o600 });
  await doctorFails(malformed, "admin token", join(malformed, "admin.token"), /malformed/);
});

test("the daemon and the CLI refuse an admin.token readable by others, naming it with the fix", async () => {
  const dir = copyOfBase();
  const token = join(dir, "admin.token");
  const secret = readFileSync(token, "utf8").trim();
  chmodSync(token, 0o644);
  const daemon = await runCli(
    ["daemon", "--state-root", dir, "--admin-port", "0", "--node-port", "0", "--no-quic"],
    env,
  );
  assert.equal(daemon.code, 7, daemon.stderr);
  assert.ok(daemon.stderr.includes(`chmod 600 ${token}`), daemon.stderr);
  assert.ok(!daemon.stderr.includes(secret), "never the token");
  const list = await runCli(["pairing", "list", "--state-root", dir], env);
  assert.notEqual(list.code, 0);
  assert.ok(!list.stdout.includes(secret) && !list.stderr.includes(secret));
  assert.equal(readFileSync(token, "utf8").trim(), secret, "the token is kept, not replaced");
});

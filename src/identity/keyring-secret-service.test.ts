import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, test } from "node:test";
import { isolatedKeyringEnv, runInKeyringSession } from "../../test/helpers/keyring-session.js";

/**
 * The real OS keyring path, run in child processes so the test never touches the developer's keyring:
 * a private D-Bus session with gnome-keyring (Debian packages gnome-keyring, libsecret-tools,
 * dbus-daemon), with HOME and XDG dirs pointing at fresh temp directories.
 */

const root = mkdtempSync(join(tmpdir(), "palyra-keyring-"));
after(() => rmSync(root, { recursive: true, force: true }));
const repo = resolve(import.meta.dirname, "../..");
const fixture = join(repo, "test/fixtures/secret-store-keyring-child.ts");

function results(stdout: string): Record<string, unknown>[] {
  return stdout
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

test("under a real Secret Service a new store keeps its key in the keyring and reopens from it", () => {
  const store = join(root, "real", "secrets");
  const node = `"${process.execPath}" --import tsx "${fixture}"`;
  const run = runInKeyringSession(`${node} create "${store}" && ${node} reopen "${store}"`, {
    cwd: repo,
    env: isolatedKeyringEnv(root, "real"),
  });
  const [created, reopened] = results(run.stdout);
  assert.equal(run.status, 0, `child failed: ${run.stdout}\n${run.stderr}`);
  assert.equal(created?.mode, "keyring");
  assert.equal(created?.reopenedMode, "keyring");
  assert.equal(created?.value, "keyring-protected value");
  const description = created?.description as Record<string, unknown>;
  assert.equal(description.mode, "keyring");
  assert.equal(description.weak, false);
  assert.match(String(description.keyringAccount), /^secret-store-kek:[0-9a-f]{16}:[0-9a-f]{8}$/);
  assert.equal(created?.secretToolStatus, 0, "secret-tool finds the KEK item (Debian: libsecret-tools)");
  assert.ok(Number(created?.secretToolBytes) > 0);
  assert.deepEqual(reopened, { action: "reopen", mode: "keyring", value: "keyring-protected value" });
});

test("with no Secret Service the probe says unavailable quickly and creation falls back", () => {
  const run = spawnSync(process.execPath, ["--import", "tsx", fixture, "unavailable", join(root, "none")], {
    cwd: repo,
    env: isolatedKeyringEnv(root, "none"),
    encoding: "utf8",
    timeout: 60_000,
  });
  const [result] = results(run.stdout);
  assert.equal(run.status, 0, `child failed: ${run.stdout}\n${run.stderr}`);
  const probe = result?.probe as { available: boolean; reason?: string };
  assert.equal(probe.available, false);
  assert.match(probe.reason ?? "", /DBus|D-Bus|DBUS_SESSION_BUS_ADDRESS/i);
  assert.ok(Number(result?.probeMs) < 1_000, `probe took ${result?.probeMs} ms`);
  assert.equal(result?.keyFileMode, "key-file");
  assert.equal(result?.passphraseMode, "passphrase");
});

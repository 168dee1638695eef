import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, test } from "node:test";
import { CLI_ENTRY } from "./helpers/cli.js";
import { isolatedKeyringEnv, runInKeyringSession } from "./helpers/keyring-session.js";

/**
 * The vault's Secret Service backend against a real gnome-keyring in a private D-Bus session, driven
 * through the CLI exactly as a user would: set, get, list, delete, and migrate both ways.
 */

const root = mkdtempSync(join(tmpdir(), "palyra-vault-ss-"));
after(() => rmSync(root, { recursive: true, force: true }));
const repo = resolve(import.meta.dirname, "..");
const palyra = `"${process.execPath}" --import tsx "${CLI_ENTRY}"`;
const SECRET = "sk-ss-round-trip-7f3a9c";

test("Secret Service (real gnome-keyring): set, get, list, delete and migrate round trips", () => {
  const out = join(root, "out");
  const state = join(root, "state");
  const steps = [
    `printf %s '${SECRET}' | ${palyra} secrets set global/openai_api_key --value-stdin --json > ${out}/set.json`,
    `printf %s 'xoxb-2' | ${palyra} secrets set channel:slack:acct-1/bot_token --value-stdin --json > ${out}/set2.json`,
    `${palyra} secrets backend --json > ${out}/backend.json`,
    `${palyra} secrets get global/openai_api_key --reveal > ${out}/reveal1`,
    `${palyra} secrets list --json > ${out}/list.json`,
    `secret-tool search --all service palyra.vault > ${out}/search1 2>&1`,
    `${palyra} secrets migrate --to encrypted-file --json > ${out}/to-file.json`,
    `${palyra} secrets get global/openai_api_key --reveal > ${out}/reveal2`,
    `secret-tool search --all service palyra.vault > ${out}/search2 2>&1 || true`,
    `${palyra} secrets migrate --to secret-service --json > ${out}/to-ss.json`,
    `${palyra} secrets get global/openai_api_key --reveal > ${out}/reveal3`,
    `${palyra} secrets delete global/openai_api_key --json > ${out}/delete.json`,
    `${palyra} secrets list --json > ${out}/list2.json`,
    `secret-tool search --all service palyra.vault > ${out}/search3 2>&1`,
  ];
  const run = runInKeyringSession(`mkdir -p ${out} && ${steps.join(" && ")}`, {
    cwd: repo,
    env: isolatedKeyringEnv(root, "ss", { PALYRA_STATE_ROOT: state }),
  });
  assert.equal(run.status, 0, `a step failed:\n${run.stdout}\n${run.stderr}`);
  const json = (name: string) => JSON.parse(readFileSync(join(out, name), "utf8"));
  const text = (name: string) => readFileSync(join(out, name), "utf8");

  assert.equal(json("set.json").backend, "secret-service");
  const backend = json("backend.json");
  assert.equal(backend.backend, "secret-service");
  assert.equal(backend.selected_by, "auto", "auto-selection probed the real Secret Service");
  assert.equal(backend.probe.ok, true);
  assert.equal(backend.protection, "os-keyring");
  assert.equal(backend.weak, false);
  assert.equal(text("reveal1"), SECRET);
  assert.deepEqual(
    json("list.json").secrets.map((m: { ref: string }) => m.ref),
    ["channel:slack:acct-1/bot_token", "global/openai_api_key"],
  );
  // Two secrets and the vault key, under opaque ids only.
  const items = text("search1").match(/attribute\.username = (\S+)/g) ?? [];
  assert.equal(items.length, 3, text("search1"));
  assert.ok(!text("search1").includes("openai"), "item attributes do not name the secret");

  assert.equal(json("to-file.json").moved, 2);
  assert.equal(text("reveal2"), SECRET);
  assert.equal(
    (text("search2").match(/attribute\.username/g) ?? []).length,
    0,
    "nothing left in the keyring",
  );
  assert.equal(json("to-ss.json").moved, 2);
  assert.equal(json("to-ss.json").key_home, "secret-service");
  assert.equal(text("reveal3"), SECRET);
  assert.deepEqual(json("delete.json"), { ref: "global/openai_api_key", deleted: true });
  assert.deepEqual(
    json("list2.json").secrets.map((m: { ref: string }) => m.ref),
    ["channel:slack:acct-1/bot_token"],
  );
  assert.equal((text("search3").match(/attribute\.username/g) ?? []).length, 2);
  // The vault directory holds no blobs while on the Secret Service, and no value anywhere.
  const vaultDir = join(state, "vault");
  for (const entry of readdirSync(vaultDir, { recursive: true, withFileTypes: true }))
    if (entry.isFile())
      assert.ok(!readFileSync(join(entry.parentPath, entry.name)).includes(SECRET), entry.name);
});

for (const [name, unlock, session] of [
  ["no D-Bus session at all", false, false],
  ["a D-Bus session whose keyring was never unlocked", false, true],
] as const) {
  test(`with ${name}, auto-selection falls back to the file backend with a warning, in under a second`, () => {
    const state = join(root, `fallback-${session}`);
    const env = isolatedKeyringEnv(root, `fallback-${session}`, { PALYRA_STATE_ROOT: state });
    const command = `printf %s value | ${palyra} secrets set global/k --value-stdin --json && ${palyra} secrets backend --json`;
    const run = session
      ? runInKeyringSession(command, { cwd: repo, env, unlock })
      : spawnSync("sh", ["-c", command], { cwd: repo, env, encoding: "utf8", timeout: 60_000 });
    assert.equal(run.status, 0, `${run.stdout}\n${run.stderr}`);
    assert.match(
      run.stderr,
      /warning: no OS keyring is usable here \(Secret Service write failed: .+\); secrets go to encrypted files/,
    );
    const backend = JSON.parse(run.stdout.slice(run.stdout.lastIndexOf('{\n  "path"')));
    assert.equal(backend.backend, "encrypted-file");
    assert.equal(backend.selected_by, "fallback");
    assert.equal(backend.weak, true);
    assert.equal(backend.probe.ok, false);
    assert.ok(backend.probe.ms < 1000, `the probe took ${backend.probe.ms} ms`);
  });
}

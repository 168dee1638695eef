import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { RecordedRunner } from "../../test/helpers/recorded-runner.js";
import { migrateVault } from "./migrate.js";
import { openVault, type VaultOptions } from "./open-vault.js";

const root = mkdtempSync(join(tmpdir(), "palyra-migrate-"));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

async function seeded(options: VaultOptions, count: number) {
  const dir = join(root, `m${n++}`);
  const vault = await openVault(dir, options);
  for (let i = 0; i < count; i++)
    await vault.put(`principal:user${i % 3}`, `key${i}`, Buffer.from(`value ${i}`));
  return { dir, vault };
}

async function assertAllReadable(vault: Awaited<ReturnType<typeof openVault>>, count: number) {
  for (let i = 0; i < count; i++)
    assert.equal(
      (await vault.get(`principal:user${i % 3}`, `key${i}`)).expose().toString(),
      `value ${i}`,
      `key${i}`,
    );
  assert.equal(vault.list().length, count);
}

test("migrate from the encrypted-file backend to DPAPI (recorded PowerShell double), interrupted, loses nothing and resumes", async () => {
  const runner = new RecordedRunner();
  const options: VaultOptions = {
    platform: "win32",
    runner,
    env: { PALYRA_VAULT_BACKEND: "encrypted-file" },
  };
  const { dir, vault } = await seeded(options, 10);
  assert.equal(vault.describe().backend, "encrypted-file");
  // The probe and the vault key take two Protect calls; the 4th blob's fails.
  runner.failProtectAt = 2 + 4;
  const progress: number[] = [];
  await assert.rejects(
    migrateVault(vault, "windows-dpapi", (p) => progress.push(p.moved)),
    { code: "backend_failed", message: /DPAPI Protect failed: .*injected failure/ },
  );
  assert.deepEqual(progress, [1, 2, 3]);
  const mid = vault.describe();
  assert.equal(mid.backend, "windows-dpapi", "new writes already go to the target");
  assert.deepEqual(mid.key_homes, ["windows-dpapi", "key-file"], "both homes are kept mid-way");
  assert.equal(mid.pending_migration, 7);
  await assertAllReadable(vault, 10);
  vault.close();

  // A new process (a rerun of the command) opens the half-moved vault and finishes the job.
  const again = await openVault(dir, { ...options, ignoreBackendOverride: true });
  await assertAllReadable(again, 10);
  const report = await migrateVault(again, "windows-dpapi");
  assert.equal(report.moved, 7);
  assert.deepEqual(report.from, ["encrypted-file"]);
  const done = again.describe();
  assert.deepEqual(done.key_homes, ["windows-dpapi"]);
  assert.equal(done.pending_migration, 0);
  assert.equal(done.protection, "os-user-key");
  await assertAllReadable(again, 10);
  again.close();
  assert.equal(existsSync(join(dir, "vault.key")), false, "the weak key file is gone");
  assert.deepEqual(readdirSync(join(dir, "blobs")), [], "the old blobs are gone");
  assert.equal(readdirSync(join(dir, "dpapi")).length, 11, "10 secrets and the vault key");

  const reopened = await openVault(dir, { platform: "win32", runner, env: {} });
  await assertAllReadable(reopened, 10);
  reopened.close();
});

test("migrate back to the encrypted-file backend, and a write during the move is not lost", async () => {
  const runner = new RecordedRunner();
  const options: VaultOptions = { platform: "win32", runner, env: {} };
  const { dir, vault } = await seeded(options, 6);
  assert.equal(vault.describe().backend, "windows-dpapi");
  let wrote = false;
  const report = await migrateVault(vault, "encrypted-file", async () => {
    if (wrote) return;
    wrote = true;
    // Another writer replaces a secret that has not moved yet.
    await vault.put("principal:user2", "key5", Buffer.from("value 5"));
  });
  assert.equal(report.to, "encrypted-file");
  assert.equal(report.key_home, "key-file");
  await assertAllReadable(vault, 6);
  assert.equal(vault.describe().weak, true);
  vault.close();
  assert.equal(readdirSync(join(dir, "dpapi")).length, 0);
});

test("migrating to a backend that does not work here is refused before anything moves", async () => {
  const { vault } = await seeded({ env: { PALYRA_VAULT_BACKEND: "encrypted-file" } }, 2);
  try {
    await assert.rejects(migrateVault(vault, "macos-keychain"), { code: "backend_unavailable" });
    await assert.rejects(migrateVault(vault, "tape"), {
      code: "backend_unavailable",
      message: /unknown vault backend/,
    });
    assert.equal(vault.describe().backend, "encrypted-file");
    assert.deepEqual(vault.describe().key_homes, ["key-file"]);
  } finally {
    vault.close();
  }
});

test("migrate --to encrypted-file with PALYRA_VAULT_PASSPHRASE set moves a weak key file behind the passphrase", async () => {
  const fast = { N: 1024, r: 8, p: 1 };
  const { dir, vault } = await seeded({ env: { PALYRA_VAULT_BACKEND: "encrypted-file" }, scrypt: fast }, 3);
  assert.equal(vault.describe().protection, "key-file");
  vault.close();
  const env = { PALYRA_VAULT_BACKEND: "encrypted-file", PALYRA_VAULT_PASSPHRASE: "s3cret phrase" };
  const again = await openVault(dir, { env, scrypt: fast });
  const report = await migrateVault(again, "encrypted-file");
  assert.equal(report.moved, 0);
  assert.equal(report.key_home, "passphrase");
  assert.equal(again.describe().weak, false);
  again.close();
  assert.equal(existsSync(join(dir, "vault.key")), false);
  await assert.rejects(openVault(dir, { env: { PALYRA_VAULT_BACKEND: "encrypted-file" } }), {
    code: "vault_locked",
  });
  const unlocked = await openVault(dir, { env, scrypt: fast });
  await assertAllReadable(unlocked, 3);
  unlocked.close();
});

test("a write that started on the old backend during a migration is waited for and moved too", async () => {
  const dir = join(root, `m${n++}`);
  const gate: { open?: () => void; reached?: () => void } = {};
  let gated = false;
  const base = new RecordedRunner();
  const gatedRunner = {
    run: async (request: Parameters<RecordedRunner["run"]>[0]) => {
      const script = Buffer.from(request.args.at(-1) ?? "", "base64").toString("utf16le");
      if (gated && script.includes("Protect(")) {
        gated = false;
        gate.reached?.();
        await new Promise<void>((resolve) => {
          gate.open = resolve;
        });
      }
      return base.run(request);
    },
  };
  const options: VaultOptions = { platform: "win32", runner: base, env: {} };
  const setup = await openVault(dir, options);
  await setup.put("global", "a", Buffer.from("A"));
  setup.close();
  const writer = await openVault(dir, { ...options, runner: gatedRunner });
  const mover = await openVault(dir, { ...options, ignoreBackendOverride: true });
  gated = true;
  const reached = new Promise<void>((resolve) => {
    gate.reached = resolve;
  });
  const put = writer.put("global", "b", Buffer.from("B"));
  await reached; // the writer chose DPAPI and is inside its write
  const report = await migrateVault(mover, "encrypted-file", () => gate.open?.());
  assert.equal(report.moved, 2, "the late write was moved as well");
  assert.equal((await put).backend, "windows-dpapi");
  assert.equal(mover.describe().pending_migration, 0);
  assert.deepEqual(mover.describe().key_homes, ["key-file"]);
  assert.equal((await mover.get("global", "b")).expose().toString(), "B");
  writer.close();
  mover.close();
});

test("a second migration while one is running is refused; a dead one's lease is taken over", async () => {
  const { vault } = await seeded({ env: { PALYRA_VAULT_BACKEND: "encrypted-file" } }, 1);
  try {
    const { catalog, clock } = vault.parts;
    const hold = (pid: number) =>
      catalog.write(() =>
        catalog.takeLease("migration", {
          owner: "other",
          pid,
          detail: "secret-service",
          expires_at: clock.now() + 60_000,
        }),
      );
    hold(process.pid);
    await assert.rejects(migrateVault(vault, "encrypted-file"), {
      code: "busy",
      message: /another migration \(pid \d+, to secret-service\) is running/,
    });
    const { spawnSync } = await import("node:child_process");
    const dead = spawnSync(process.execPath, ["-e", "0"]).pid!;
    hold(dead);
    const report = await migrateVault(vault, "encrypted-file");
    assert.equal(report.to, "encrypted-file");
    assert.equal(catalog.lease("migration"), undefined, "released when done");
  } finally {
    vault.close();
  }
});

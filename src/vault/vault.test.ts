import assert from "node:assert/strict";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import BetterSqlite3 from "better-sqlite3";
import { ManualClock } from "../common/clock.js";
import { limits } from "../common/limits.js";
import { SeededRandom } from "../common/random.js";
import { inspectVault, openVault, type VaultOptions } from "./open-vault.js";

const root = mkdtempSync(join(tmpdir(), "palyra-vault-"));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = () => join(root, `v${n++}`);
const FILE_ENV = { PALYRA_VAULT_BACKEND: "encrypted-file" };
const fast = { N: 1024, r: 8, p: 1 };
const open = (dir: string, options: VaultOptions = {}) =>
  openVault(dir, { env: FILE_ENV, scrypt: fast, ...options });

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

test("put, get, list, delete round trip on the encrypted-file backend", async () => {
  const clock = new ManualClock(Date.UTC(2026, 10, 1));
  const vault = await open(fresh(), { clock });
  try {
    const first = await vault.put("global", "openai_api_key", Buffer.from("sk-first"));
    assert.deepEqual(first, {
      ref: "global/openai_api_key",
      scope: "global",
      key: "openai_api_key",
      size: 8,
      backend: "encrypted-file",
      created_at: "2026-11-01T00:00:00.000Z",
      updated_at: "2026-11-01T00:00:00.000Z",
    });
    clock.advance(60_000);
    const second = await vault.put("global", "openai_api_key", Buffer.from("sk-second-value"));
    assert.equal(second.created_at, first.created_at, "an update keeps the creation time");
    assert.equal(second.updated_at, "2026-11-01T00:01:00.000Z");
    assert.equal(second.size, 15);
    await vault.put("channel:slack:acct-1", "bot_token", Buffer.from("xoxb"));
    await vault.put("global", "empty", Buffer.alloc(0));
    assert.equal((await vault.get("global", "openai_api_key")).expose().toString(), "sk-second-value");
    assert.equal((await vault.get("global", "empty")).expose().length, 0);
    assert.deepEqual(
      vault.list().map((m) => m.ref),
      ["channel:slack:acct-1/bot_token", "global/empty", "global/openai_api_key"],
    );
    assert.deepEqual(
      vault.list({ scope: "channel:slack:acct-1" }).map((m) => m.key),
      ["bot_token"],
    );
    assert.ok(!JSON.stringify(vault.list()).includes("sk-second"), "listings carry no values");
    assert.equal(await vault.delete("global", "openai_api_key"), true);
    assert.equal(await vault.delete("global", "openai_api_key"), false);
    await assert.rejects(vault.get("global", "openai_api_key"), { code: "not_found" });
    assert.throws(() => vault.metadata("global", "openai_api_key"), { code: "not_found" });
  } finally {
    vault.close();
  }
});

test("a value prints as [redacted] when logged or serialised", async () => {
  const vault = await open(fresh());
  try {
    await vault.put("global", "k", Buffer.from("hunter2"));
    const value = await vault.get("global", "k");
    const { inspect } = await import("node:util");
    assert.ok(!inspect(value).includes("hunter2"));
    assert.ok(!JSON.stringify({ value }).includes("hunter2"));
    assert.ok(!`${value}`.includes("hunter2"));
  } finally {
    vault.close();
  }
});

test("size and name limits are checked before anything is stored", async () => {
  const dir = fresh();
  const vault = await open(dir);
  try {
    await vault.put("global", "max", Buffer.alloc(limits.vaultMaxValueBytes, 1));
    assert.equal((await vault.get("global", "max")).expose().length, limits.vaultMaxValueBytes);
    await assert.rejects(vault.put("global", "over", Buffer.alloc(limits.vaultMaxValueBytes + 1)), {
      code: "value_too_large",
      message: /65537 bytes; the limit is 65536/,
    });
    await assert.rejects(vault.put("GLOBAL", "k", Buffer.from("x")), { code: "invalid_scope" });
    await assert.rejects(vault.put("global", "Bad Key", Buffer.from("x")), { code: "invalid_key" });
    await assert.rejects(vault.put("principal:a/b", "k", Buffer.from("x")), { code: "invalid_scope" });
    assert.deepEqual(
      vault.list().map((m) => m.key),
      ["max"],
    );
    assert.equal(readdirSync(join(dir, "blobs")).length, 1, "rejected writes leave no blobs");
  } finally {
    vault.close();
  }
});

test("files are private and hold no value in the clear", async () => {
  const dir = fresh();
  const vault = await open(dir);
  const value = "very-secret-value-4711";
  await vault.put("principal:alice", "token", Buffer.from(value));
  await vault.put("principal:alice", "token", Buffer.from(`${value}-2`));
  vault.close();
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  assert.equal(statSync(join(dir, "blobs")).mode & 0o777, 0o700);
  const files = filesUnder(dir);
  assert.ok(files.some((f) => f.endsWith("vault.db")) && files.some((f) => f.endsWith("vault.key")));
  assert.equal(files.filter((f) => f.endsWith(".blob")).length, 1, "the replaced blob was deleted");
  for (const file of files) {
    assert.equal(statSync(file).mode & 0o777, 0o600, file);
    const bytes = readFileSync(file);
    assert.ok(!bytes.includes(value), `${file} holds the value`);
    assert.ok(!bytes.includes(Buffer.from(value).toString("base64")), `${file} holds the value in base64`);
  }
});

test("a blob replayed under another secret's name fails authentication", async () => {
  const dir = fresh();
  const vault = await open(dir);
  await vault.put("principal:alice", "token", Buffer.from("alice's"));
  await vault.put("principal:bob", "token", Buffer.from("bob's"));
  vault.close();
  // Copy alice's blob over bob's, as someone with write access to the store could.
  const db = new BetterSqlite3(join(dir, "vault.db"), { readonly: true });
  const idOf = (scope: string) =>
    (db.prepare("SELECT object_id FROM secrets WHERE scope = ?").get(scope) as { object_id: string })
      .object_id;
  const blob = (scope: string) => join(dir, "blobs", `${idOf(scope)}.blob`);
  copyFileSync(blob("principal:alice"), blob("principal:bob"));
  db.close();
  const reopened = await open(dir);
  try {
    await assert.rejects(reopened.get("principal:bob", "token"), {
      code: "blob_corrupt",
      message: /moved from another name/,
    });
    assert.equal((await reopened.get("principal:alice", "token")).expose().toString(), "alice's");
  } finally {
    reopened.close();
  }
});

test("a blob from another vault, and a replaced vault key, are refused", async () => {
  const [a, b] = [fresh(), fresh()];
  const va = await open(a);
  const vb = await open(b);
  await va.put("global", "k", Buffer.from("from a"));
  await vb.put("global", "k", Buffer.from("from b"));
  va.close();
  vb.close();
  const blobOf = (dir: string) => join(dir, "blobs", readdirSync(join(dir, "blobs"))[0]!);
  copyFileSync(blobOf(b), blobOf(a));
  const reopened = await open(a);
  await assert.rejects(reopened.get("global", "k"), { code: "wrong_vault_key" });
  reopened.close();
  writeFileSync(join(a, "vault.key"), new SeededRandom("other").bytes(32), { mode: 0o600 });
  await assert.rejects(open(a), { code: "vault_locked", message: /holds a different key/ });
});

test("with PALYRA_VAULT_PASSPHRASE the key is sealed by the passphrase, and opens only with it", async () => {
  const dir = fresh();
  const env = { ...FILE_ENV, PALYRA_VAULT_PASSPHRASE: "correct horse" };
  const vault = await open(dir, { env });
  assert.equal(vault.describe().protection, "passphrase");
  assert.equal(vault.describe().weak, false);
  await vault.put("global", "k", Buffer.from("v"));
  vault.close();
  assert.equal(readFileSync(join(dir, "vault-key.sealed")).length, 32 + 33, "the file holds a sealed key");
  assert.equal(existsSync(join(dir, "vault.key")), false, "no plain key file");
  await assert.rejects(open(dir), { code: "vault_locked", message: /PALYRA_VAULT_PASSPHRASE/ });
  await assert.rejects(open(dir, { env: { ...FILE_ENV, PALYRA_VAULT_PASSPHRASE: "wrong" } }), {
    code: "vault_locked",
    message: /wrong PALYRA_VAULT_PASSPHRASE/,
  });
  const again = await open(dir, { env });
  assert.equal((await again.get("global", "k")).expose().toString(), "v");
  again.close();
});

test("PALYRA_VAULT_BACKEND that disagrees with the recorded backend points to migrate", async () => {
  const dir = fresh();
  (await open(dir)).close();
  await assert.rejects(open(dir, { env: { PALYRA_VAULT_BACKEND: "secret-service" }, platform: "linux" }), {
    code: "backend_mismatch",
    message: /palyra secrets migrate --to secret-service/,
  });
  await assert.rejects(open(fresh(), { env: { PALYRA_VAULT_BACKEND: "floppy" } }), {
    code: "backend_unavailable",
    message: /unknown vault backend 'floppy'/,
  });
  await assert.rejects(
    open(fresh(), { env: { PALYRA_VAULT_BACKEND: "macos-keychain" }, platform: "linux" }),
    {
      code: "backend_unavailable",
      message: /cannot work on linux/,
    },
  );
});

test("blobs left by a writer that died are collected once their grace period is over", async () => {
  const dir = fresh();
  const clock = new ManualClock(Date.UTC(2026, 10, 1));
  const vault = await open(dir, { clock });
  await vault.put("global", "kept", Buffer.from("kept"));
  // What a writer that died between its blob and its commit leaves behind.
  const orphan = `pv_${"ab".repeat(16)}`;
  vault.parts.catalog.write(() => vault.parts.catalog.addOrphan(orphan, "encrypted-file", clock.now(), true));
  await vault.parts.backends.get("encrypted-file").put(orphan, Buffer.from("sealed bytes"));
  assert.equal(await vault.collectGarbage(), 0, "a young pending write may still belong to a live writer");
  assert.equal(readdirSync(join(dir, "blobs")).length, 2);
  clock.advance(limits.vaultPendingGraceMs + 1);
  vault.close();
  const reopened = await open(dir, { clock });
  try {
    assert.deepEqual(readdirSync(join(dir, "blobs")).length, 1, "collected on open");
    assert.equal((await reopened.get("global", "kept")).expose().toString(), "kept");
  } finally {
    reopened.close();
  }
});

test("a vault index that is not a database is reported as a failure, not as busy", async () => {
  const dir = fresh();
  const { mkdirSync } = await import("node:fs");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(join(dir, "vault.db"), "this is not sqlite".repeat(100), { mode: 0o600 });
  await assert.rejects(open(dir), { code: "backend_failed", message: /not a database/ });
});

test("a vault key file readable by others is refused, naming the file, its mode and the fix", async () => {
  const dir = fresh();
  (await open(dir)).close();
  const path = join(dir, "vault.key");
  chmodSync(path, 0o644);
  await assert.rejects(open(dir), (err: Error & { code?: string }) => {
    assert.equal(err.code, "vault_locked");
    assert.ok(err.message.includes(path), err.message);
    assert.match(err.message, /mode 0644/);
    assert.ok(err.message.includes(`chmod 600 ${path}`), err.message);
    return true;
  });
  chmodSync(path, 0o600);
  (await open(dir)).close();
});

test("temp files left by a killed write are collected on open once stale, young ones kept", async () => {
  const dir = fresh();
  const clock = new ManualClock(Date.UTC(2026, 10, 1));
  const vault = await open(dir, { clock });
  await vault.put("global", "kept", Buffer.from("kept"));
  vault.close();
  // What writeFileAtomic leaves when the process dies between creating its temp file and the rename.
  const staleBlob = join(dir, "blobs", `.pv_${"cd".repeat(16)}.blob.0123456789ab.tmp`);
  const youngBlob = join(dir, "blobs", `.pv_${"ef".repeat(16)}.blob.ba9876543210.tmp`);
  const staleKey = join(dir, ".vault.key.a1b2c3d4e5f6.tmp");
  for (const path of [staleBlob, youngBlob, staleKey]) writeFileSync(path, "partial", { mode: 0o600 });
  const longAgo = new Date(clock.now() - limits.vaultPendingGraceMs - 60_000);
  utimesSync(staleBlob, longAgo, longAgo);
  utimesSync(staleKey, longAgo, longAgo);
  const reopened = await open(dir, { clock });
  try {
    assert.equal(existsSync(staleBlob), false, "a stale blob temp file is removed");
    assert.equal(existsSync(staleKey), false, "a stale vault key temp file is removed");
    assert.equal(existsSync(youngBlob), true, "a young one may belong to a live writer");
    assert.equal((await reopened.get("global", "kept")).expose().toString(), "kept");
  } finally {
    reopened.close();
  }
});

test("inspectVault names a damaged vault key and a damaged blob, and changes nothing", async () => {
  const dir = fresh();
  const vault = await open(dir);
  await vault.put("global", "a", Buffer.from("value a"));
  await vault.put("global", "b", Buffer.from("value b"));
  const blobB = join(dir, "blobs", `${vault.parts.catalog.secret("global", "b")!.object_id}.blob`);
  vault.close();
  const healthy = await inspectVault(dir, { env: FILE_ENV });
  assert.deepEqual([healthy?.problems, healthy?.opened, healthy?.unchecked], [[], 2, undefined]);

  const bytes = readFileSync(blobB);
  bytes[bytes.length - 2] = (bytes[bytes.length - 2] ?? 0) ^ 1;
  writeFileSync(blobB, bytes);
  const damagedBlob = await inspectVault(dir, { env: FILE_ENV });
  assert.equal(damagedBlob?.opened, 1);
  assert.deepEqual(
    damagedBlob?.problems.map((p) => p.file),
    [blobB],
  );

  const keyFile = join(dir, "vault.key");
  const key = readFileSync(keyFile);
  writeFileSync(keyFile, Buffer.from(key.map((b, i) => (i === 0 ? b ^ 1 : b))));
  const damagedKey = await inspectVault(dir, { env: FILE_ENV });
  assert.deepEqual(
    damagedKey?.problems.map((p) => p.file),
    [keyFile],
  );
  assert.match(damagedKey?.problems[0]?.message ?? "", /does not hold this vault's key/);
  assert.equal(await inspectVault(fresh(), { env: FILE_ENV }), undefined, "no vault, nothing created");
});

test("inspectVault leaves a passphrase vault unchecked without the passphrase", async () => {
  const dir = fresh();
  (await open(dir, { env: { ...FILE_ENV, PALYRA_VAULT_PASSPHRASE: "pw" } })).close();
  const inspection = await inspectVault(dir, { env: FILE_ENV, scrypt: fast });
  assert.match(inspection?.unchecked ?? "", /PALYRA_VAULT_PASSPHRASE is not set/);
  assert.deepEqual(inspection?.problems, []);
  const wrong = await inspectVault(dir, { env: { ...FILE_ENV, PALYRA_VAULT_PASSPHRASE: "nope" } });
  assert.deepEqual(
    wrong?.problems.map((p) => p.file),
    [join(dir, "vault-key.sealed")],
  );
});

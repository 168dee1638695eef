import assert from "node:assert/strict";
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { inspect } from "node:util";
import { modeOf } from "../common/atomic-file.js";
import { ManualClock } from "../common/clock.js";
import { IdentityError } from "./errors.js";
import {
  type FilesystemSecretStoreOptions,
  inspectSecretStore,
  openFilesystemSecretStore,
} from "./filesystem-secret-store.js";
import type { KeyringFactory } from "./keyring-kek.js";

const root = mkdtempSync(join(tmpdir(), "palyra-fss-"));
after(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;
const freshDir = () => join(root, `store-${++counter}`, "secrets");

// Tests never touch the machine's real keyring: auto mode sees a keyring that is not there.
const noKeyring: KeyringFactory = () => {
  throw new Error("no keyring in this test");
};
const fast: FilesystemSecretStoreOptions = { keyring: noKeyring, env: {} };
const fileOf = (key: string) => `${Buffer.from(key).toString("base64url")}.sec`;

test("write, read, list, delete round trip; values survive reopening", async () => {
  const dir = freshDir();
  const store = await openFilesystemSecretStore(dir, fast);
  assert.equal(store.mode, "key-file");
  await store.write("ca/key", Buffer.from("ca secret"));
  await store.write("device/identity", Buffer.from([0, 1, 2, 255]));
  await store.write("empty", new Uint8Array(0));
  await store.write("ca/key", Buffer.from("ca secret v2"));
  assert.deepEqual(await store.read("ca/key"), Buffer.from("ca secret v2"));
  assert.deepEqual(await store.read("empty"), Buffer.alloc(0));
  assert.equal(await store.read("missing"), undefined);
  assert.deepEqual(await store.list(), ["ca/key", "device/identity", "empty"]);
  assert.deepEqual(await store.list("ca/"), ["ca/key"]);
  assert.equal(await store.delete("empty"), true);
  assert.equal(await store.delete("empty"), false);
  assert.equal(await store.read("empty"), undefined);

  const reopened = await openFilesystemSecretStore(dir, fast);
  assert.deepEqual(await reopened.list(), ["ca/key", "device/identity"]);
  assert.deepEqual(await reopened.read("device/identity"), Buffer.from([0, 1, 2, 255]));
  assert.deepEqual(await reopened.read("ca/key"), Buffer.from("ca secret v2"));
});

test("invalid key names and oversized values are refused before touching the disk", async () => {
  const dir = freshDir();
  const store = await openFilesystemSecretStore(dir, fast);
  for (const bad of ["../x", "A", "", "a".repeat(129), "a//b", "/a", ".hidden", "a/../b"]) {
    await assert.rejects(store.write(bad, Buffer.from("v")), { code: "invalid_secret_key" }, bad);
    await assert.rejects(store.read(bad), { code: "invalid_secret_key" }, bad);
    await assert.rejects(store.delete(bad), { code: "invalid_secret_key" }, bad);
  }
  await store.write("a".repeat(128), Buffer.from("longest name is fine"));
  await assert.rejects(store.write("big", Buffer.alloc(1024 * 1024 + 1)), { code: "secret_too_large" });
  assert.deepEqual(await store.list(), ["a".repeat(128)]);
  assert.deepEqual(readdirSync(join(dir, "..")).sort(), ["secrets", "secrets.kek"]);
});

test("a changed byte, a truncated file or a file renamed to another key fails with a clear error", async () => {
  const dir = freshDir();
  const store = await openFilesystemSecretStore(dir, fast);
  const value = "TOP-SECRET-VALUE";
  await store.write("alpha", Buffer.from(value));
  await store.write("beta", Buffer.from("other value"));

  const alpha = join(dir, fileOf("alpha"));
  const original = readFileSync(alpha);
  const tampered = Buffer.from(original);
  tampered[25] = (tampered[25] as number) ^ 0x01;
  writeFileSync(alpha, tampered);
  const err = await store.read("alpha").catch((e: unknown) => e);
  assert.ok(err instanceof IdentityError);
  assert.equal(err.code, "secret_store_corrupt");
  assert.match(err.message, /secret 'alpha' .* is corrupt: its file failed authentication/);
  assert.doesNotMatch(err.message, /TOP-SECRET/);
  assert.ok(!err.message.includes(Buffer.from(value).toString("hex")));

  writeFileSync(alpha, original.subarray(0, 10));
  await assert.rejects(store.read("alpha"), { code: "secret_store_corrupt", message: /secret 'alpha'/ });

  writeFileSync(alpha, original);
  assert.deepEqual(await store.read("alpha"), Buffer.from(value));
  renameSync(alpha, join(dir, fileOf("beta")));
  await assert.rejects(store.read("beta"), {
    code: "secret_store_corrupt",
    message: /secret 'beta' .*renamed from another key/,
  });
});

test("a wrong key-encryption key is reported as such, not as tampering", async () => {
  const dir = freshDir();
  const store = await openFilesystemSecretStore(dir, fast);
  await store.write("x", Buffer.from("v"));
  writeFileSync(`${dir}.kek`, Buffer.alloc(32, 7), { mode: 0o600 });
  await assert.rejects(openFilesystemSecretStore(dir, fast), {
    code: "secret_store_locked",
    message: /wrong key-encryption key \(key file replaced\?\)/,
  });
});

test("directory is 0700 (tightened from 0755), secret files, store.json and key file are 0600", async () => {
  const dir = freshDir();
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o755);
  const store = await openFilesystemSecretStore(dir, fast);
  await store.write("one", Buffer.from("1"));
  await store.write("nested/two", Buffer.from("2"));
  assert.equal(modeOf(dir), 0o700);
  const names = readdirSync(dir).sort();
  assert.deepEqual(names, [fileOf("nested/two"), fileOf("one"), "store.json"].sort());
  for (const name of names) assert.equal(modeOf(join(dir, name)), 0o600, name);
  assert.equal(modeOf(`${dir}.kek`), 0o600);
  chmodSync(dir, 0o755);
  await openFilesystemSecretStore(dir, fast);
  assert.equal(modeOf(dir), 0o700);
});

test("list ignores temp files and names that are not canonical encodings of valid keys", async () => {
  const dir = freshDir();
  const store = await openFilesystemSecretStore(dir, fast);
  await store.write("real", Buffer.from("r"));
  writeFileSync(join(dir, `.${fileOf("ghost")}.a1b2c3d4e5f6.tmp`), "partial");
  writeFileSync(join(dir, "QQ.sec"), "x"); // decodes to "A": not a valid key
  writeFileSync(join(dir, "YR.sec"), "x"); // decodes to "a", but is not its canonical file name
  writeFileSync(join(dir, "notes.txt"), "x");
  assert.deepEqual(await store.list(), ["real"]);
});

test("open removes temp files only once they are stale", async () => {
  const dir = freshDir();
  const clock = new ManualClock(Date.now());
  await openFilesystemSecretStore(dir, { ...fast, clock });
  const stale = join(dir, `.${fileOf("old")}.0123456789ab.tmp`);
  const young = join(dir, `.${fileOf("new")}.ba9876543210.tmp`);
  writeFileSync(stale, "x");
  writeFileSync(young, "y");
  const longAgo = new Date(clock.now() - 11 * 60_000);
  utimesSync(stale, longAgo, longAgo);
  await openFilesystemSecretStore(dir, { ...fast, clock });
  assert.deepEqual(
    readdirSync(dir).filter((n) => n.endsWith(".tmp")),
    [`.${fileOf("new")}.ba9876543210.tmp`],
  );
});

test("inspect and JSON of the store never show the key-encryption key", async () => {
  const dir = freshDir();
  const store = await openFilesystemSecretStore(dir, fast);
  const kek = readFileSync(`${dir}.kek`);
  const shown = [
    inspect(store, { showHidden: true, depth: Number.POSITIVE_INFINITY }),
    JSON.stringify(store),
    String(store),
    inspect({ nested: store }, { depth: Number.POSITIVE_INFINITY }),
  ].join("\n");
  for (const encoding of ["hex", "base64", "base64url"] as const)
    assert.ok(!shown.includes(kek.toString(encoding)));
  assert.ok(!shown.includes(inspect(kek)));
  assert.match(shown, /FilesystemSecretStore \{ directory: ".*secrets", mode: key-file \}/);
  assert.deepEqual(JSON.parse(JSON.stringify(store)), { directory: dir, mode: "key-file" });
});

test("a closed store wipes its key and refuses use", async () => {
  const store = await openFilesystemSecretStore(freshDir(), fast);
  await store.write("k", Buffer.from("v"));
  store.close();
  await assert.rejects(store.read("k"), { code: "secret_store_locked", message: /is closed/ });
  await assert.rejects(store.write("k", Buffer.from("v")), { code: "secret_store_locked" });
});

test("secret files without store.json, or a broken store.json, are refused, never re-keyed", async () => {
  const dir = freshDir();
  const store = await openFilesystemSecretStore(dir, fast);
  await store.write("k", Buffer.from("v"));
  const metadata = readFileSync(join(dir, "store.json"));
  rmSync(join(dir, "store.json"));
  await assert.rejects(openFilesystemSecretStore(dir, fast), {
    code: "secret_store_corrupt",
    message: /holds secret files but no store.json/,
  });
  writeFileSync(join(dir, "store.json"), "{not json");
  await assert.rejects(openFilesystemSecretStore(dir, fast), {
    code: "secret_store_corrupt",
    message: /not valid JSON/,
  });
  writeFileSync(join(dir, "store.json"), JSON.stringify({ format: "other" }));
  await assert.rejects(openFilesystemSecretStore(dir, fast), {
    code: "secret_store_corrupt",
    message: /not a valid/,
  });
  writeFileSync(join(dir, "store.json"), metadata);
  assert.deepEqual(await (await openFilesystemSecretStore(dir, fast)).read("k"), Buffer.from("v"));
});

test("a secret file readable by others (device credentials at 0644) is refused, naming file, mode and fix", async () => {
  const dir = freshDir();
  const store = await openFilesystemSecretStore(dir, fast);
  await store.write("device/credentials", Buffer.from("key and certificate"));
  const path = join(dir, fileOf("device/credentials"));
  chmodSync(path, 0o644);
  await assert.rejects(store.read("device/credentials"), (err: Error) => {
    assert.ok(err instanceof IdentityError);
    assert.ok(err.message.includes(path), err.message);
    assert.match(err.message, /mode 0644/);
    assert.ok(err.message.includes(`chmod 600 ${path}`), err.message);
    assert.ok(!err.message.includes("key and certificate"));
    return true;
  });
  chmodSync(path, 0o600);
  assert.deepEqual(await store.read("device/credentials"), Buffer.from("key and certificate"));
});

test("inspectSecretStore tells a damaged key check from a wrong key, and names damaged files", async () => {
  const dir = freshDir();
  const store = await openFilesystemSecretStore(dir, fast);
  await store.write("one", Buffer.from("1"));
  await store.write("two", Buffer.from("2"));
  store.close();
  const healthy = await inspectSecretStore(dir, fast);
  assert.deepEqual([healthy?.problems, healthy?.opened], [[], 2]);
  healthy?.store?.close();

  const two = join(dir, fileOf("two"));
  const sealed = readFileSync(two);
  writeFileSync(two, Buffer.from(sealed.map((b, i) => (i === sealed.length - 1 ? b ^ 1 : b))));
  const damagedFile = await inspectSecretStore(dir, fast);
  assert.deepEqual(
    damagedFile?.problems.map((p) => p.file),
    [two],
  );
  assert.deepEqual(await damagedFile?.store?.read("one"), Buffer.from("1"), "the right key still reads");
  damagedFile?.store?.close();
  writeFileSync(two, sealed);

  const metadataFile = join(dir, "store.json");
  const metadata = readFileSync(metadataFile, "utf8");
  const parsed = JSON.parse(metadata) as { check: string };
  const check = Buffer.from(parsed.check, "base64url");
  check[check.length - 1] = (check[check.length - 1] ?? 0) ^ 1;
  writeFileSync(metadataFile, JSON.stringify({ ...parsed, check: check.toString("base64url") }));
  const damagedCheck = await inspectSecretStore(dir, fast);
  assert.deepEqual(
    damagedCheck?.problems.map((p) => p.file),
    [metadataFile],
  );
  assert.match(damagedCheck?.problems[0]?.message ?? "", /key check .* is damaged/);
  damagedCheck?.store?.close();
  writeFileSync(metadataFile, metadata);

  writeFileSync(`${dir}.kek`, Buffer.alloc(32, 9), { mode: 0o600 });
  const wrongKey = await inspectSecretStore(dir, fast);
  assert.deepEqual(
    wrongKey?.problems.map((p) => p.file),
    [`${dir}.kek`],
  );
  assert.equal(wrongKey?.store, undefined, "no store with a wrong key");
  assert.equal(await inspectSecretStore(freshDir(), fast), undefined, "no store, none created");
});

test("inspectSecretStore leaves a passphrase store unchecked without its passphrase, and says a wrong one", async () => {
  const dir = freshDir();
  const withPassphrase = (pw?: string) => ({
    keyring: noKeyring,
    env: pw ? { PALYRA_STORE_PASSPHRASE: pw } : {},
    scrypt: { N: 1024, r: 8, p: 1 },
  });
  const store = await openFilesystemSecretStore(dir, withPassphrase("right"));
  await store.write("k", Buffer.from("v"));
  store.close();
  const locked = await inspectSecretStore(dir, withPassphrase());
  assert.match(locked?.unchecked ?? "", /PALYRA_STORE_PASSPHRASE is not set/);
  assert.deepEqual(locked?.problems, []);
  const wrong = await inspectSecretStore(dir, withPassphrase("wrong"));
  assert.match(wrong?.problems[0]?.message ?? "", /wrong passphrase/);
  const right = await inspectSecretStore(dir, withPassphrase("right"));
  assert.deepEqual([right?.problems, right?.opened], [[], 1]);
  right?.store?.close();
});

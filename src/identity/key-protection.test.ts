import assert from "node:assert/strict";
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, test } from "node:test";
import { modeOf } from "../common/atomic-file.js";
import { ManualClock } from "../common/clock.js";
import { SeededRandom } from "../common/random.js";
import { openFilesystemSecretStore } from "./filesystem-secret-store.js";
import { describeSecretStore, type KeyProtectionOptions, PASSPHRASE_ENV } from "./key-protection.js";
import { type KeyringEntry, type KeyringFactory, probeKeyring } from "./keyring-kek.js";

const root = mkdtempSync(join(tmpdir(), "palyra-kek-"));
after(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;
const freshDir = () => join(root, `store-${++counter}`, "secrets");

const scrypt = { N: 1024, r: 8, p: 1 }; // small on purpose: tests stay fast; production uses limits
const noKeyring: KeyringFactory = () => {
  throw new Error("no keyring in this test");
};
const withPassphrase = (passphrase: string): KeyProtectionOptions => ({
  keyring: noKeyring,
  env: { [PASSPHRASE_ENV]: passphrase },
  scrypt,
});

/** An in-memory keyring; `broken` makes every call fail like an unreachable Secret Service. */
class FakeKeyring {
  readonly items = new Map<string, Buffer>();
  broken = false;
  readonly factory: KeyringFactory = (service, account) => {
    if (this.broken) throw new Error("Platform failure: DBus error");
    const id = `${service}/${account}`;
    const entry: KeyringEntry = {
      setSecret: async (secret) => void this.items.set(id, Buffer.from(secret)),
      getSecret: async () => {
        const value = this.items.get(id);
        return value === undefined ? null : Array.from(value);
      },
      deleteCredential: async () => this.items.delete(id),
    };
    return entry;
  };
}

test("passphrase mode: right passphrase reopens, wrong or missing one is refused clearly", async () => {
  const dir = freshDir();
  const store = await openFilesystemSecretStore(dir, withPassphrase("correct horse"));
  assert.equal(store.mode, "passphrase");
  await store.write("k", Buffer.from("value"));
  const metadata = JSON.parse(readFileSync(join(dir, "store.json"), "utf8"));
  assert.deepEqual([metadata.kek.N, metadata.kek.r, metadata.kek.p], [1024, 8, 1]);
  assert.equal(Buffer.from(metadata.kek.salt, "base64url").length, 16);

  const again = await openFilesystemSecretStore(dir, withPassphrase("correct horse"));
  assert.deepEqual(await again.read("k"), Buffer.from("value"));
  await assert.rejects(openFilesystemSecretStore(dir, withPassphrase("wrong horse")), {
    code: "secret_store_locked",
    message: /wrong key-encryption key \(wrong passphrase\?\)/,
  });
  await assert.rejects(openFilesystemSecretStore(dir, { keyring: noKeyring, env: {} }), {
    code: "secret_store_locked",
    message: /needs its passphrase: set PALYRA_STORE_PASSPHRASE/,
  });
  assert.deepEqual(await describeSecretStore(dir), {
    path: dir,
    mode: "passphrase",
    weak: false,
    created: metadata.createdAt,
  });
});

test("creation order: keyring when it works, then passphrase, then a weak key file", async () => {
  const keyring = new FakeKeyring();
  const clock = new ManualClock(Date.UTC(2026, 1, 2));
  const a = freshDir();
  const first = await openFilesystemSecretStore(a, { keyring: keyring.factory, env: {}, clock });
  assert.equal(first.mode, "keyring");
  assert.equal(keyring.items.size, 1);
  const [item] = [...keyring.items.keys()];
  assert.match(item ?? "", /^palyra\/secret-store-kek:[0-9a-f]{16}:[0-9a-f]{8}$/);
  assert.deepEqual(await describeSecretStore(a), {
    path: a,
    mode: "keyring",
    weak: false,
    created: "2026-02-02T00:00:00.000Z",
    keyringAccount: item?.slice("palyra/".length),
  });

  keyring.broken = true;
  const b = freshDir();
  assert.equal(
    (await openFilesystemSecretStore(b, { ...withPassphrase("pw"), keyring: keyring.factory })).mode,
    "passphrase",
  );
  const c = freshDir();
  const third = await openFilesystemSecretStore(c, { keyring: keyring.factory, env: {}, clock });
  assert.equal(third.mode, "key-file");
  assert.equal(modeOf(`${c}.kek`), 0o600);
  assert.equal(readFileSync(`${c}.kek`).length, 32);
  assert.deepEqual(await describeSecretStore(c), {
    path: c,
    mode: "key-file",
    weak: true,
    created: "2026-02-02T00:00:00.000Z",
    keyFile: `${c}.kek`,
  });
  assert.equal(await describeSecretStore(freshDir()), undefined);
});

test("the recorded mode is honoured on reopen, and a missing source fails clearly", async () => {
  const keyring = new FakeKeyring();
  const fileDir = freshDir();
  await (await openFilesystemSecretStore(fileDir, { keyring: noKeyring, env: {} })).write(
    "k",
    Buffer.from("v"),
  );
  // Keyring and passphrase are available now, but the store stays a key-file store.
  const reopened = await openFilesystemSecretStore(fileDir, {
    ...withPassphrase("pw"),
    keyring: keyring.factory,
  });
  assert.equal(reopened.mode, "key-file");
  assert.deepEqual(await reopened.read("k"), Buffer.from("v"));
  assert.equal(keyring.items.size, 0);
  await assert.rejects(
    openFilesystemSecretStore(fileDir, { kekMode: "passphrase", ...withPassphrase("pw") }),
    {
      code: "secret_store_unavailable",
      message: /uses key-file key protection, not the requested passphrase/,
    },
  );
  rmSync(`${fileDir}.kek`);
  await assert.rejects(openFilesystemSecretStore(fileDir, { keyring: noKeyring }), {
    code: "secret_store_locked",
    message: /cannot read key file/,
  });

  const ringDir = freshDir();
  await (await openFilesystemSecretStore(ringDir, { keyring: keyring.factory, env: {} })).write(
    "k",
    Buffer.from("v"),
  );
  assert.deepEqual(
    await (await openFilesystemSecretStore(ringDir, { keyring: keyring.factory, env: {} })).read("k"),
    Buffer.from("v"),
  );
  keyring.broken = true;
  await assert.rejects(
    openFilesystemSecretStore(ringDir, { ...withPassphrase("pw"), keyring: keyring.factory }),
    {
      code: "secret_store_unavailable",
      message: /keeps its key-encryption key in the OS keyring, which is unreachable: Platform failure/,
    },
  );
  keyring.broken = false;
  for (const id of keyring.items.keys()) keyring.items.set(id, Buffer.alloc(32, 9));
  await assert.rejects(openFilesystemSecretStore(ringDir, { keyring: keyring.factory }), {
    code: "secret_store_locked",
    message: /wrong key-encryption key/,
  });
  keyring.items.clear();
  await assert.rejects(openFilesystemSecretStore(ringDir, { keyring: keyring.factory }), {
    code: "secret_store_unavailable",
    message: /OS keyring has no key-encryption key for secret store/,
  });
});

test("forcing a mode: keyring must work, passphrase must be set, key file may live elsewhere", async () => {
  await assert.rejects(openFilesystemSecretStore(freshDir(), { kekMode: "keyring", keyring: noKeyring }), {
    code: "secret_store_unavailable",
    message: /the OS keyring is unavailable: no keyring in this test/,
  });
  await assert.rejects(openFilesystemSecretStore(freshDir(), { kekMode: "passphrase", env: {} }), {
    code: "secret_store_locked",
    message: /PALYRA_STORE_PASSPHRASE is not set/,
  });
  const keyring = new FakeKeyring();
  const dir = freshDir();
  const keyFilePath = join(root, "elsewhere", "custom.key");
  const store = await openFilesystemSecretStore(dir, {
    kekMode: "key-file",
    keyring: keyring.factory,
    keyFilePath,
  });
  assert.equal(store.mode, "key-file");
  assert.equal(keyring.items.size, 0);
  assert.equal(modeOf(keyFilePath), 0o600);
  assert.equal((await describeSecretStore(dir))?.keyFile, keyFilePath);
});

test("a key file left by an interrupted creation is reused; one readable by others is refused", async () => {
  const dir = freshDir();
  const key = Buffer.alloc(32, 5);
  mkdirSync(join(dir, ".."));
  writeFileSync(`${dir}.kek`, key, { mode: 0o600 });
  const store = await openFilesystemSecretStore(dir, { keyring: noKeyring, env: {} });
  await store.write("k", Buffer.from("v"));
  assert.deepEqual(readFileSync(`${dir}.kek`), key);
  chmodSync(`${dir}.kek`, 0o644);
  await assert.rejects(openFilesystemSecretStore(dir, { keyring: noKeyring }), {
    code: "secret_store_locked",
    message: new RegExp(`${dir}\\.kek has mode 0644.*chmod 600 ${dir}\\.kek`),
  });
});

test("a key file that is a symbolic link, or in a directory others may write, is refused", async () => {
  const dir = freshDir();
  const keyFilePath = join(root, `shared-${counter}`, "custom.key");
  (await openFilesystemSecretStore(dir, { keyring: noKeyring, env: {}, keyFilePath })).close();
  chmodSync(dirname(keyFilePath), 0o777);
  await assert.rejects(openFilesystemSecretStore(dir, { keyring: noKeyring, env: {} }), {
    code: "secret_store_locked",
    message: new RegExp(`${dirname(keyFilePath)}, the directory .*writable by group or others.*chmod go-w`),
  });
  chmodSync(dirname(keyFilePath), 0o700);
  renameSync(keyFilePath, `${keyFilePath}.real`);
  symlinkSync(`${keyFilePath}.real`, keyFilePath);
  await assert.rejects(openFilesystemSecretStore(dir, { keyring: noKeyring, env: {} }), {
    code: "secret_store_locked",
    message: new RegExp(`${keyFilePath} is a symbolic link`),
  });
  rmSync(keyFilePath);
  renameSync(`${keyFilePath}.real`, keyFilePath);
  (await openFilesystemSecretStore(dir, { keyring: noKeyring, env: {} })).close();
});

test("two concurrent creators of one store end up sharing one key", async () => {
  const dir = freshDir();
  const [a, b] = await Promise.all([
    openFilesystemSecretStore(dir, withPassphrase("pw")),
    openFilesystemSecretStore(dir, withPassphrase("pw")),
  ]);
  await a.write("from-a", Buffer.from("A"));
  await b.write("from-b", Buffer.from("B"));
  assert.deepEqual(await b.read("from-a"), Buffer.from("A"));
  assert.deepEqual(await a.read("from-b"), Buffer.from("B"));
});

test("a keyring that hangs or throws counts as unavailable within the time bound", async () => {
  const hanging: KeyringFactory = () => ({
    setSecret: () => new Promise<void>(() => {}),
    getSecret: () => new Promise(() => {}),
    deleteCredential: () => new Promise(() => {}),
  });
  const started = performance.now();
  const probe = await probeKeyring({ keyring: hanging, keyringTimeoutMs: 50 });
  assert.deepEqual(probe, { available: false, reason: "keyring did not answer within 50 ms" });
  const store = await openFilesystemSecretStore(freshDir(), {
    keyring: hanging,
    keyringTimeoutMs: 50,
    env: {},
  });
  assert.equal(store.mode, "key-file");
  assert.ok(performance.now() - started < 2_000);

  assert.deepEqual(await probeKeyring({ keyring: noKeyring }), {
    available: false,
    reason: "no keyring in this test",
  });
  const keyring = new FakeKeyring();
  assert.deepEqual(await probeKeyring({ keyring: keyring.factory, random: new SeededRandom("probe") }), {
    available: true,
  });
  assert.equal(keyring.items.size, 0, "the probe cleans up its entry");
});

import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { RecordedRunner } from "../../../test/helpers/recorded-runner.js";
import { systemRandom } from "../../common/random.js";
import { openVault } from "../open-vault.js";
import { KEYCHAIN_SERVICE, MacosKeychainBackend, SECURITY } from "./macos-keychain.js";
import { probeBackend } from "./probe.js";

const root = mkdtempSync(join(tmpdir(), "palyra-keychain-"));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const SECRET = "sk-keychain-test-0123456789";

test("macOS Keychain (recorded `security` double): exact argv, key only on stdin, value never leaves the process", async () => {
  const runner = new RecordedRunner();
  const dir = join(root, `k${n++}`);
  const vault = await openVault(dir, { platform: "darwin", runner, env: {} });
  try {
    assert.equal(vault.describe().backend, "macos-keychain");
    assert.equal(vault.describe().selected_by, "auto");
    await vault.put("global", "openai_api_key", Buffer.from(SECRET));
    assert.equal((await vault.get("global", "openai_api_key")).expose().toString(), SECRET);
    assert.equal(await vault.delete("global", "openai_api_key"), true);
  } finally {
    vault.close();
  }
  const [[item, stored]] = [...runner.keychain.entries()] as [[string, string]];
  const account = item.slice(`${KEYCHAIN_SERVICE}/`.length);
  assert.match(account, /^wrap:[0-9a-f]{32}$/);
  // One wrapping key per vault: found missing, written through the prompt, read back; later cached.
  assert.deepEqual(runner.calls[0]?.args, [
    "find-generic-password",
    "-s",
    KEYCHAIN_SERVICE,
    "-a",
    account,
    "-w",
  ]);
  assert.deepEqual(runner.calls[1]?.args, [
    "add-generic-password",
    "-s",
    KEYCHAIN_SERVICE,
    "-a",
    account,
    "-l",
    "Palyra vault",
    "-w",
  ]);
  assert.equal(runner.calls[1]?.detached, true, "no controlling terminal, so the prompt reads stdin");
  assert.ok(runner.calls.every((c) => c.file === SECURITY));
  assert.equal(Buffer.from(stored, "base64").length, 32);
  assert.equal(
    runner.calls[1]?.stdin.toString(),
    `${stored}\n${stored}\n`,
    "the key is sent twice, on stdin only",
  );
  const argv = runner.argvText();
  assert.ok(!argv.includes(stored), "the wrapping key never appears in argv");
  assert.ok(
    !argv.includes(SECRET) && !runner.calls.some((c) => c.stdin.includes(SECRET)),
    "the value never goes to security",
  );
  for (const file of readdirSync(dir, { recursive: true }).map(String))
    if (file.endsWith(".blob")) assert.ok(!readFileSync(join(dir, file)).includes(SECRET));
});

test("macOS Keychain (recorded `security` double): a write whose prompted copies differ is caught by the read-back", async () => {
  const runner = new RecordedRunner();
  const backend = new MacosKeychainBackend({
    dir: join(root, `k${n++}`),
    namespace: "0".repeat(32),
    random: systemRandom,
    timeoutMs: 1000,
    maxBlobBytes: 1024,
    runner: {
      run: (request) =>
        runner.run(
          request.args[0] === "add-generic-password" ? { ...request, stdin: Buffer.from("once\n") } : request,
        ),
    },
  });
  const probe = await probeBackend(backend, systemRandom, 1000);
  assert.equal(probe.ok, false);
  assert.match(probe.ok ? "" : probe.reason, /did not keep the vault's wrapping key/);
});

test("macOS Keychain, real `security` (runs on macOS only)", {
  skip: process.platform !== "darwin" && "needs macOS",
}, async () => {
  const dir = join(root, `k${n++}`);
  const vault = await openVault(dir, { env: { PALYRA_VAULT_BACKEND: "macos-keychain" } });
  try {
    await vault.put("global", "real_keychain_test", Buffer.from(SECRET));
    assert.equal((await vault.get("global", "real_keychain_test")).expose().toString(), SECRET);
    assert.equal(await vault.delete("global", "real_keychain_test"), true);
  } finally {
    await (vault.parts.backends.get("macos-keychain") as MacosKeychainBackend).forget();
    vault.close();
  }
});

test("macOS Keychain (recorded `security` double): two processes creating the wrapping key at once share the first", async () => {
  const runner = new RecordedRunner();
  const namespace = "1".repeat(32);
  const make = (r: RecordedRunner | { run: RecordedRunner["run"] }) =>
    new MacosKeychainBackend({
      dir: join(root, "shared"),
      namespace,
      random: systemRandom,
      timeoutMs: 1000,
      maxBlobBytes: 1024,
      runner: r,
    });
  const first = make(runner);
  await first.put(`pv_${"a".repeat(32)}`, Buffer.from("from the first"));
  // The second looked before the first wrote, so it tries to create the key too.
  let raced = false;
  const second = make({
    run: (request) => {
      if (request.args[0] === "find-generic-password" && !raced) {
        raced = true;
        return Promise.resolve({ status: 44, stdout: Buffer.alloc(0), stderr: "could not be found" });
      }
      return runner.run(request);
    },
  });
  await second.put(`pv_${"b".repeat(32)}`, Buffer.from("from the second"));
  assert.equal((await first.get(`pv_${"b".repeat(32)}`))?.toString(), "from the second");
  assert.equal((await second.get(`pv_${"a".repeat(32)}`))?.toString(), "from the first");
});

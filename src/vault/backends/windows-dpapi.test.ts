import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { RecordedRunner } from "../../../test/helpers/recorded-runner.js";
import { openVault } from "../open-vault.js";
import { POWERSHELL, powershellArgs } from "./windows-dpapi.js";

const root = mkdtempSync(join(tmpdir(), "palyra-dpapi-"));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const SECRET = "sk-dpapi-test-0123456789";

test("Windows DPAPI (recorded PowerShell double): exact argv, data only on stdin, current-user scope", async () => {
  const runner = new RecordedRunner();
  const dir = join(root, `d${n++}`);
  const vault = await openVault(dir, { platform: "win32", runner, env: {} });
  try {
    assert.equal(vault.describe().backend, "windows-dpapi");
    assert.equal(vault.describe().protection, "os-user-key");
    await vault.put("global", "openai_api_key", Buffer.from(SECRET));
    assert.equal((await vault.get("global", "openai_api_key")).expose().toString(), SECRET);
  } finally {
    vault.close();
  }
  assert.ok(runner.calls.length >= 4);
  for (const call of runner.calls) {
    assert.equal(call.file, POWERSHELL);
    const op = call.args.at(-1) === powershellArgs("Protect").at(-1) ? "Protect" : "Unprotect";
    assert.deepEqual(call.args, powershellArgs(op), "the fixed script, as -EncodedCommand");
    assert.deepEqual(call.args.slice(0, 4), ["-NoLogo", "-NoProfile", "-NonInteractive", "-EncodedCommand"]);
    const script = Buffer.from(call.args[4]!, "base64").toString("utf16le");
    assert.match(script, new RegExp(`ProtectedData\\]::${op}\\(\\$d,\\$e,\\$s\\)`));
    assert.match(script, /DataProtectionScope\]::CurrentUser/);
    const [entropy] = call.stdin.toString().split("\n");
    assert.match(Buffer.from(entropy!, "base64").toString(), /^palyra-vault:(pv|vk|pr)_[0-9a-f]{32}$/);
  }
  const argv = runner.argvText();
  assert.ok(!argv.includes(SECRET) && !argv.includes(Buffer.from(SECRET).toString("base64")));
  for (const file of readdirSync(dir, { recursive: true }).map(String))
    if (file.endsWith(".blob")) assert.ok(!readFileSync(join(dir, file)).includes(SECRET));
});

test("Windows DPAPI (recorded PowerShell double): a protected file renamed to another id does not unprotect", async () => {
  const runner = new RecordedRunner();
  const dir = join(root, `d${n++}`);
  const vault = await openVault(dir, { platform: "win32", runner, env: {} });
  try {
    await vault.put("global", "a", Buffer.from("value a"));
    await vault.put("global", "b", Buffer.from("value b"));
    const ids = vault.list().map((m) => vault.parts.catalog.secret(m.scope, m.key)!.object_id);
    const files = (id: string) => join(dir, "dpapi", `${id}.blob`);
    const { copyFileSync } = await import("node:fs");
    copyFileSync(files(ids[0]!), files(ids[1]!));
    await assert.rejects(vault.get("global", "b"), {
      code: "backend_failed",
      message: /DPAPI Unprotect failed/,
    });
  } finally {
    vault.close();
  }
});

test("Windows DPAPI, real PowerShell (runs on Windows only)", {
  skip: process.platform !== "win32" && "needs Windows",
}, async () => {
  const vault = await openVault(join(root, `d${n++}`), { env: { PALYRA_VAULT_BACKEND: "windows-dpapi" } });
  try {
    await vault.put("global", "real_dpapi_test", Buffer.from(SECRET));
    assert.equal((await vault.get("global", "real_dpapi_test")).expose().toString(), SECRET);
  } finally {
    vault.close();
  }
});

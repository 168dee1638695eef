import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { runCli, startDaemon, testEnv } from "./helpers/cli.js";

/**
 * A real full disk: the state root lives on a 4 MiB tmpfs mounted for this file (the tests run as
 * root; the mount is always undone) and a filler file takes every free block. The admin API answers
 * 507 and the CLI exits 1, both with "no space left writing <path>", never a bare "internal error".
 * A damaged palyra.db is named by the daemon and by CLI commands that open it.
 */

const root = mkdtempSync(join(tmpdir(), "palyra-disk-full-"));
const mountPoint = join(root, "small");
mkdirSync(mountPoint);
execFileSync("mount", ["-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", mountPoint]);
after(() => {
  try {
    execFileSync("umount", [mountPoint]);
  } catch {
    // a process of ours still holds it: detach now, the kernel frees it when they are gone
    execFileSync("umount", ["-l", mountPoint]);
  }
  rmSync(root, { recursive: true, force: true });
});

/** Writes zeros until the filesystem refuses: from then on, every new block fails with ENOSPC. */
function fillDisk(path: string): void {
  const fd = openSync(path, "w");
  const block = Buffer.alloc(64 * 1024);
  try {
    for (;;) writeSync(fd, block);
  } catch (err) {
    assert.equal((err as NodeJS.ErrnoException).code, "ENOSPC");
  } finally {
    closeSync(fd);
  }
  // Whatever is left is smaller than a block; take it too, byte runs at a time.
  const tail = openSync(path, "a");
  try {
    for (;;) writeSync(tail, Buffer.alloc(512));
  } catch (err) {
    assert.equal((err as NodeJS.ErrnoException).code, "ENOSPC");
  } finally {
    closeSync(tail);
  }
}

test("disk full: the admin API answers 507 and the CLI exits 1 with 'no space left writing <path>'", async () => {
  const state = join(mountPoint, "gateway");
  const env = testEnv({ PALYRA_VAULT_BACKEND: "encrypted-file" });
  const daemon = await startDaemon(state, env);
  try {
    const token = readFileSync(join(state, "admin.token"), "utf8").trim();
    const api = (method: string, path: string, body: unknown) =>
      fetch(new URL(path, daemon.summary.admin_url), {
        method,
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    assert.equal((await api("PUT", "/v1/secrets/global%2Fbefore", { value: "fits" })).status, 201);

    const filler = join(mountPoint, "filler");
    fillDisk(filler);

    const put = await api("PUT", "/v1/secrets/global%2Fafter", { value: "does not fit".repeat(500) });
    assert.equal(put.status, 507);
    const putError = ((await put.json()) as { error: { code: string; message: string } }).error;
    assert.equal(putError.code, "no_space");
    assert.match(putError.message, new RegExp(`^no space left writing ${state}/`));
    assert.doesNotMatch(putError.message, /internal error/);

    const minted = await api("POST", "/v1/pairing/codes", { method: "pin" });
    assert.equal(minted.status, 507);
    const mintError = ((await minted.json()) as { error: { code: string; message: string } }).error;
    assert.equal(mintError.code, "no_space");
    assert.match(mintError.message, /^no space left writing .*palyra\.db/);

    // The CLI through the daemon, and the CLI on its own (the vault in the state root).
    const code = await runCli(["pairing", "code", "--state-root", state], env);
    assert.equal(code.code, 1, code.stderr);
    assert.match(code.stderr, /^error: no space left writing .*palyra\.db[^\n]*\n$/);
    const codeJson = await runCli(["pairing", "code", "--json", "--state-root", state], env);
    assert.equal(codeJson.code, 1, codeJson.stderr);
    assert.equal(JSON.parse(codeJson.stdout).error.code, "no_space");
    const set = await runCli(
      ["secrets", "set", "global/cli", "--value-stdin", "--state-root", state],
      env,
      30_000,
      "x".repeat(4096),
    );
    assert.equal(set.code, 1, set.stderr);
    assert.match(set.stderr, new RegExp(`^error: no space left writing ${state}/[^\\n]*\\n$`));
    const setJson = await runCli(
      ["secrets", "set", "global/cli", "--value-stdin", "--json", "--state-root", state],
      env,
      30_000,
      "x".repeat(4096),
    );
    assert.equal(setJson.code, 1, setJson.stderr);
    assert.equal(JSON.parse(setJson.stdout).error.code, "no_space");

    // Space again: the same requests succeed, the daemon never stopped.
    rmSync(filler);
    assert.equal((await api("PUT", "/v1/secrets/global%2Fafter", { value: "fits now" })).status, 201);
    assert.equal((await api("POST", "/v1/pairing/codes", { method: "pin" })).status, 201);
  } finally {
    assert.equal(await daemon.stop(), 0);
  }
});

test("a damaged palyra.db is named by the daemon and by CLI commands that open it", async () => {
  const state = join(root, "damaged");
  const env = testEnv({ PALYRA_VAULT_BACKEND: "encrypted-file" });
  const first = await startDaemon(state, env);
  assert.equal(await first.stop(), 0);
  const database = join(state, "palyra.db");
  writeFileSync(database, Buffer.alloc(8192, 0x5a));
  rmSync(`${database}-wal`, { force: true });
  rmSync(`${database}-shm`, { force: true });

  const daemon = await runCli(
    ["daemon", "--state-root", state, "--admin-port", "0", "--node-port", "0", "--no-quic"],
    env,
  );
  assert.equal(daemon.code, 1, daemon.stderr);
  assert.match(daemon.stderr, new RegExp(`error: the database ${database} is damaged`));
  assert.doesNotMatch(daemon.stderr, /internal error/);

  const set = await runCli(
    ["secrets", "set", "global/x", "--value-stdin", "--state-root", state],
    env,
    30_000,
    "value",
  );
  assert.equal(set.code, 1, set.stderr);
  assert.match(set.stderr, new RegExp(`^error: the database ${database} is damaged[^\\n]*\\n$`));
});

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, watch } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, test } from "node:test";
import { crashValueOf } from "../../test/fixtures/secret-store-crash-writer.js";
import { openFilesystemSecretStore } from "./filesystem-secret-store.js";

const root = mkdtempSync(join(tmpdir(), "palyra-crash-"));
after(() => rmSync(root, { recursive: true, force: true }));
const repo = resolve(import.meta.dirname, "../..");
const writer = join(repo, "test/fixtures/secret-store-crash-writer.ts");

/**
 * Runs the writer until it has acknowledged `wanted` keys, then SIGKILLs it: at once ("ack", which lands
 * between two writes), or at the next change in the store directory ("file-event", which lands inside a
 * write: temp file written, fsync, rename). Returns every acknowledged key.
 */
function writeThenKill(dir: string, wanted: number, trigger: "ack" | "file-event"): Promise<string[]> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, ["--import", "tsx", writer, dir], {
      cwd: repo,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let buffered = "";
    let stderr = "";
    const acknowledged: string[] = [];
    const kill = () => {
      if (child.exitCode === null) child.kill("SIGKILL");
    };
    const watcher = watch(dir, () => {
      if (trigger === "file-event" && acknowledged.length >= wanted) kill();
    });
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      buffered += chunk;
      const lines = buffered.split("\n");
      buffered = lines.pop() ?? ""; // a line without its newline was not acknowledged
      acknowledged.push(...lines);
      if (trigger === "ack" && acknowledged.length >= wanted) kill();
    });
    child.stderr.on("data", (chunk) => {
      stderr += chunk;
    });
    child.on("error", fail);
    child.on("close", (code, signal) => {
      watcher.close();
      if (signal !== "SIGKILL")
        fail(new Error(`writer ended with ${code}/${signal} before the kill: ${stderr}`));
      else done(acknowledged);
    });
  });
}

test("SIGKILL mid-write loses no acknowledged write and leaves no unreadable file", async (t) => {
  const dir = join(root, "secrets");
  const options = { kekMode: "key-file" as const, env: {} };
  await openFilesystemSecretStore(dir, options);
  for (let round = 0; round < 6; round++) {
    const acknowledged = await writeThenKill(dir, 50 + round, round % 2 === 0 ? "file-event" : "ack");
    assert.ok(acknowledged.length >= 50);

    const store = await openFilesystemSecretStore(dir, options);
    for (const key of acknowledged) assert.deepEqual(await store.read(key), crashValueOf(key), key);
    // Every complete file opens, including the one being written at the kill if its rename happened.
    const listed = await store.list();
    for (const key of listed) assert.deepEqual(await store.read(key), crashValueOf(key), key);
    assert.ok(listed.length >= acknowledged.length);
    const names = readdirSync(dir);
    const secretFiles = names.filter((n) => n.endsWith(".sec") && !n.startsWith("."));
    assert.equal(secretFiles.length, listed.length, "no secret file is left out of list()");
    const temps = names.filter((n) => n.endsWith(".tmp"));
    for (const temp of temps) assert.ok(temp.startsWith("."), temp);
    t.diagnostic(`round ${round}: ${acknowledged.length} acknowledged, ${temps.length} temp files left`);
  }
});

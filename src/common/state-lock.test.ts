import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { acquireStateLock } from "./state-lock.js";

const root = mkdtempSync(join(tmpdir(), "palyra-lock-"));
after(() => rmSync(root, { recursive: true, force: true }));

test("one holder at a time; released on release(); names and directories are independent", async () => {
  const dir = join(root, "a");
  mkdirSync(dir);
  const first = await acquireStateLock(dir, "daemon");
  assert.ok(first);
  assert.equal(
    await acquireStateLock(dir, "daemon"),
    undefined,
    "a second holder in the same process is refused",
  );
  const other = await acquireStateLock(dir, "node");
  assert.ok(other, "another name on the same directory is another lock");
  other.release();
  first.release();
  const again = await acquireStateLock(dir, "daemon");
  assert.ok(again, "free again after release");
  again.release();
});

test("of many takers racing at once, exactly one wins", async () => {
  const dir = join(root, "race");
  mkdirSync(dir);
  const held = await Promise.all(Array.from({ length: 16 }, () => acquireStateLock(dir, "daemon")));
  assert.equal(held.filter(Boolean).length, 1);
  for (const lock of held) lock?.release();
});

test("a process that dies holding the lock (SIGKILL) leaves it free; while alive, others are refused", async () => {
  const path = join(root, "b");
  mkdirSync(path);
  const module = fileURLToPath(new URL("./state-lock.ts", import.meta.url));
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      "-e",
      `import(${JSON.stringify(module)}).then((m) => { m.acquireStateLock(${JSON.stringify(path)}, "daemon").then(() => { console.log("held"); setInterval(() => {}, 1000); }); })`,
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const [first] = (await once(child.stdout, "data")) as [Buffer];
  assert.equal(first.toString().trim(), "held");
  assert.equal(await acquireStateLock(path, "daemon"), undefined, "held by the other process");
  child.kill("SIGKILL");
  await once(child, "close");
  const mine = await acquireStateLock(path, "daemon");
  assert.ok(mine, "the kernel dropped the dead process's lock");
  mine.release();
});

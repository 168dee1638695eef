import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { processStartTime } from "../common/process-alive.js";
import { claimPidFile, runningProcess } from "./pid-file.js";

const dir = mkdtempSync(join(tmpdir(), "palyra-pid-"));
after(() => rmSync(dir, { recursive: true, force: true }));

test("a claimed pid file names this process and is released on request", async () => {
  const path = join(dir, "own.pid");
  const release = await claimPidFile(path);
  assert.deepEqual(runningProcess(path), {
    pid: process.pid,
    start_time: processStartTime(process.pid) ?? null,
  });
  release();
  assert.equal(existsSync(path), false);
});

test("claiming creates the pid file's private directory when it does not exist yet", async () => {
  const path = join(dir, "fresh", "node", "node.pid");
  const release = await claimPidFile(path);
  assert.equal(runningProcess(path)?.pid, process.pid);
  assert.equal(statSync(join(dir, "fresh", "node")).mode & 0o777, 0o700);
  release();
});

test("a node host that holds the claim blocks a second one, even started at once; its death frees it", async () => {
  const path = join(dir, "held", "node.pid");
  const module = fileURLToPath(new URL("./pid-file.ts", import.meta.url));
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      "-e",
      `import(${JSON.stringify(module)}).then((m) => { m.claimPidFile(${JSON.stringify(path)}).then(() => { console.log("claimed"); setInterval(() => {}, 1000); }); })`,
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  try {
    await once(child.stdout, "data");
    await assert.rejects(claimPidFile(path), {
      code: "already_running",
      message: new RegExp(`pid ${child.pid}`),
    });
    // A pid file naming a live process that holds no claim (a leftover) does not block.
    writeFileSync(
      join(dir, "leftover.pid"),
      JSON.stringify({ pid: child.pid, start_time: processStartTime(child.pid!) ?? null }),
    );
    (await claimPidFile(join(dir, "leftover.pid")))();
  } finally {
    child.kill("SIGKILL");
    await once(child, "close");
  }
  (await claimPidFile(path))();
});

test("a stale pid file (dead pid, or the pid now held by another process) is not believed", async () => {
  const path = join(dir, "stale.pid");
  const child = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
  const [code] = await once(child, "exit");
  assert.equal(code, 0);
  writeFileSync(path, JSON.stringify({ pid: child.pid, start_time: "1" }));
  assert.equal(runningProcess(path), undefined, "dead pid");
  // This very process, but a start time that is not its own: the pid was reused.
  writeFileSync(path, JSON.stringify({ pid: process.pid, start_time: "1" }));
  assert.equal(runningProcess(path), undefined, "reused pid");
  writeFileSync(path, "not json");
  assert.equal(runningProcess(path), undefined, "garbage");
  (await claimPidFile(path))();
});

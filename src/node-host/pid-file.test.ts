import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { claimPidFile, processStartTime, runningProcess } from "./pid-file.js";

const dir = mkdtempSync(join(tmpdir(), "palyra-pid-"));
after(() => rmSync(dir, { recursive: true, force: true }));

test("a claimed pid file names this process and is released on request", () => {
  const path = join(dir, "own.pid");
  const release = claimPidFile(path);
  assert.deepEqual(runningProcess(path), {
    pid: process.pid,
    start_time: processStartTime(process.pid) ?? null,
  });
  release();
  assert.equal(existsSync(path), false);
});

test("claiming creates the pid file's private directory when it does not exist yet", () => {
  const path = join(dir, "fresh", "node", "node.pid");
  const release = claimPidFile(path);
  assert.equal(runningProcess(path)?.pid, process.pid);
  assert.equal(statSync(join(dir, "fresh", "node")).mode & 0o777, 0o700);
  release();
});

test("a live holder with the recorded start time blocks a second claim", async () => {
  const child = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });
  await once(child, "spawn");
  try {
    const path = join(dir, "held.pid");
    writeFileSync(path, JSON.stringify({ pid: child.pid, start_time: processStartTime(child.pid!) ?? null }));
    assert.throws(() => claimPidFile(path), { code: "already_running" });
  } finally {
    child.kill("SIGKILL");
  }
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
  claimPidFile(path)();
});

import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { type DaemonProcess, startDaemon } from "./helpers/cli.js";

// Issue 13: one daemon per state root, atomically. Two daemons started in the same instant on one new
// state root: exactly one runs and there is one CA, every time.
const root = mkdtempSync(join(tmpdir(), "palyra-lock-"));
after(() => rmSync(root, { recursive: true, force: true }));

const TRIALS = 20;

test(`${TRIALS} trials of two daemons started at once on a new state root: exactly one runs, one CA`, async () => {
  for (let trial = 0; trial < TRIALS; trial++) {
    const stateRoot = join(root, `trial-${trial}`);
    const results = await Promise.allSettled([startDaemon(stateRoot), startDaemon(stateRoot)]);
    const running = results.filter(
      (r): r is PromiseFulfilledResult<DaemonProcess> => r.status === "fulfilled",
    );
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
    try {
      assert.equal(running.length, 1, `trial ${trial}: ${running.length} daemons running`);
      const error = refused[0]!.reason as { code: number; stdout: string };
      assert.equal(error.code, 7, `trial ${trial}: the loser exits 7 (${error.stdout})`);
      assert.match(
        error.stdout,
        /"code":"already_running","message":"another daemon (\(pid \d+\) )?already uses/,
      );
      const caPem = readFileSync(join(stateRoot, "ca.pem"), "utf8");
      const fingerprint = running[0]!.value.summary.ca_fingerprint;
      assert.equal((caPem.match(/BEGIN CERTIFICATE/g) ?? []).length, 1);
      assert.match(fingerprint, /^[0-9a-f]{64}$/);
    } finally {
      for (const r of running) await r.value.stop();
    }
  }
});

test("a leftover daemon.json naming a live but unrelated process does not block start", async () => {
  const stateRoot = join(root, "leftover");
  const first = await startDaemon(stateRoot);
  await first.stop();
  // This test's own pid is alive, but it is not a daemon of this root (its start time is not recorded).
  writeFileSync(
    join(stateRoot, "daemon.json"),
    JSON.stringify({
      pid: process.pid,
      pid_start_time: "1",
      started_at: new Date().toISOString(),
      version: "0",
      admin_url: "http://127.0.0.1:1",
      node_address: "127.0.0.1:1",
      ca_fingerprint: "0".repeat(64),
    }),
  );
  const second = await startDaemon(stateRoot);
  assert.equal(second.summary.ca_fingerprint, first.summary.ca_fingerprint, "same CA as before");
  assert.equal(await second.stop(), 0);
});

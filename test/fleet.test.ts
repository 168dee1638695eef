import assert from "node:assert/strict";
import { test } from "node:test";
import { runFleet } from "../bench/fleet/fleet-run.js";

/**
 * The fleet simulator at a small size, as a correctness check (no timing asserted): 300 nodes paired
 * through the protocol against the real daemon, every one online over its own mutual-TLS session, one
 * call dispatched to each, one revoked and cut, and after a gateway restart every other one back.
 */
test("fleet of 300: all online, one dispatch each, one revoke, all back after a restart", async () => {
  const report = await runFleet({
    nodes: 300,
    workers: 2,
    holdMs: 3_000,
    cpuWindowMs: 1_000,
    dispatch: { mode: "each" },
    revokes: 1,
    storm: true,
  });
  assert.equal(report.onlineAfterConnect, 300);
  assert.equal(report.held, 300, "no session dropped while held");
  assert.equal(report.onlineAfterHold, 300);
  assert.equal(report.dispatchMs.length, 300);
  assert.equal(report.dispatchFailures, 0, "every node answered its own call with its own input");
  assert.equal(report.revokeCutMs.length, 1);
  assert.ok(Number.isFinite(report.revokeCutMs[0]!), "the revoked node's session was cut");
  assert.equal(report.stormOnline, 299, "every node but the revoked one came back by itself");
});

import assert from "node:assert/strict";
import { test } from "node:test";
import { limits } from "./limits.js";
import { BACKOFF_MAX_MS, reconnectDelayMs, reconnectSpreadFor } from "./reconnect-policy.js";

test("after a goodbye, retries fall uniformly between 250 ms and the announced spread", () => {
  const state = { failures: 7, goodbyeAt: 1_000, spreadMs: 40_000 };
  assert.equal(reconnectDelayMs(state, 2_000, 0), limits.goodbyeRetryMs);
  assert.equal(reconnectDelayMs(state, 2_000, 0.5), 250 + 0.5 * (40_000 - 250));
  // The window lasts twice the spread when that is longer than 30 s.
  assert.ok(reconnectDelayMs(state, 1_000 + 79_000, 0.999) <= 40_000);
  assert.equal(reconnectDelayMs(state, 1_000 + 80_000, 0), BACKOFF_MAX_MS / 2, "then the usual backoff");
});

test("no spread given: a 1 s default; a spread beyond the maximum is capped", () => {
  assert.equal(reconnectDelayMs({ failures: 1, goodbyeAt: 0, spreadMs: 0 }, 10, 0.9999), 250 + 0.9999 * 750);
  assert.ok(reconnectDelayMs({ failures: 1, goodbyeAt: 0, spreadMs: 10_000_000 }, 10, 0.9999) < 60_000);
});

test("without a goodbye: exponential from 1 s to 30 s, jittered down to half", () => {
  const at = (failures: number, r: number) =>
    reconnectDelayMs({ failures, goodbyeAt: undefined, spreadMs: 0 }, 0, r);
  assert.deepEqual(
    [1, 2, 3, 4, 5, 6, 7, 50].map((f) => at(f, 0.9999999)).map(Math.round),
    [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000],
  );
  assert.equal(at(1, 0), 500);
});

test("the gateway's spread grows with the fleet: a lone node none, ten thousand about 40 s", () => {
  assert.equal(reconnectSpreadFor(1), 4);
  assert.equal(reconnectSpreadFor(10_000), 40_000);
  assert.equal(reconnectSpreadFor(1_000_000), limits.reconnectSpreadMaxMs);
});

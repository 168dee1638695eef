import assert from "node:assert/strict";
import { test } from "node:test";
import { ManualClock, systemClock } from "./clock.js";

test("ManualClock moves only forward and only when told", () => {
  const clock = new ManualClock(1000);
  assert.equal(clock.now(), 1000);
  clock.advance(500);
  assert.equal(clock.now(), 1500);
  assert.throws(() => clock.advance(-1), RangeError);
  assert.ok(Math.abs(systemClock.now() - Date.now()) < 1000);
});

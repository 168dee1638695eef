import assert from "node:assert/strict";
import { test } from "node:test";
import { ManualClock } from "./clock.js";
import { FixedWindowLimiter } from "./rate-limiter.js";

test("allows `limit` events per key per window, then refuses until the window ends", () => {
  const clock = new ManualClock(0);
  const limiter = new FixedWindowLimiter(clock, { limit: 3, windowMs: 60_000 });
  assert.deepEqual(
    [1, 2, 3, 4].map(() => limiter.take("a")),
    [true, true, true, false],
  );
  assert.equal(limiter.take("b"), true, "keys are independent");
  clock.advance(59_999);
  assert.equal(limiter.take("a"), false);
  clock.advance(1);
  assert.equal(limiter.take("a"), true);
});

test("a full key table refuses new keys until old windows end", () => {
  const clock = new ManualClock(0);
  const limiter = new FixedWindowLimiter(clock, { limit: 1, windowMs: 1000, maxKeys: 2 });
  assert.equal(limiter.take("a"), true);
  assert.equal(limiter.take("b"), true);
  assert.equal(limiter.take("c"), false);
  clock.advance(1000);
  assert.equal(limiter.take("c"), true);
});

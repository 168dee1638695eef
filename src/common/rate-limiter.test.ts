import assert from "node:assert/strict";
import { test } from "node:test";
import { ManualClock } from "./clock.js";
import { addressBucket, SlidingWindowLimiter } from "./rate-limiter.js";

test("allows `limit` events per key in any window, then refuses until the oldest leaves it", () => {
  const clock = new ManualClock(0);
  const limiter = new SlidingWindowLimiter(clock, { limit: 3, windowMs: 60_000 });
  assert.deepEqual(
    [1, 2, 3, 4].map(() => limiter.take("a")),
    [true, true, true, false],
  );
  assert.equal(limiter.take("b"), true, "keys are independent");
  clock.advance(59_999);
  assert.equal(limiter.take("a"), false);
  clock.advance(1);
  assert.deepEqual(
    [1, 2, 3, 4].map(() => limiter.take("a")),
    [true, true, true, false],
    "the three events of t=0 left the window together; the new ones fill it again",
  );
});

test("no burst across a window boundary: 10 per minute means 10 in any 60 s, not 20 around a boundary", () => {
  // The review's finding: with a fixed window, 16 Begins from one address passed in 6.8 s.
  const clock = new ManualClock(0);
  const limiter = new SlidingWindowLimiter(clock, { limit: 10, windowMs: 60_000 });
  assert.equal(limiter.take("198.51.100.7"), true);
  clock.advance(55_000);
  let passed = 0;
  for (let i = 0; i < 40; i++) {
    if (limiter.take("198.51.100.7")) passed++;
    clock.advance(170); // 40 tries over 6.8 s, straddling the minute
  }
  assert.equal(passed, 10);
});

test("property: over random arrival times, no 60 s span ever holds more than the limit", () => {
  let seed = 12345;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  for (let trial = 0; trial < 50; trial++) {
    const clock = new ManualClock(0);
    const limit = 1 + Math.floor(rand() * 12);
    const limiter = new SlidingWindowLimiter(clock, { limit, windowMs: 1000 });
    const accepted: number[] = [];
    for (let i = 0; i < 400; i++) {
      clock.advance(Math.floor(rand() * 80));
      if (limiter.take("k")) accepted.push(clock.now());
    }
    for (let i = limit; i < accepted.length; i++)
      assert.ok(
        accepted[i]! - accepted[i - limit]! >= 1000,
        `trial ${trial}: ${limit + 1} events within 1 s`,
      );
    assert.ok(accepted.length >= limit, "it does let events through");
  }
});

test("a full key table refuses new keys until old ones go quiet", () => {
  const clock = new ManualClock(0);
  const limiter = new SlidingWindowLimiter(clock, { limit: 1, windowMs: 1000, maxKeys: 2 });
  assert.equal(limiter.take("a"), true);
  assert.equal(limiter.take("b"), true);
  assert.equal(limiter.take("c"), false);
  clock.advance(1000);
  assert.equal(limiter.take("c"), true);
});

test("IPv6 addresses count by /64; IPv4 by address", () => {
  assert.equal(addressBucket("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
  assert.equal(addressBucket("2001:db8:1:2:ffff:ffff:ffff:ffff"), "2001:db8:1:2::/64");
  assert.equal(addressBucket("2001:db8::1"), "2001:db8:0:0::/64");
  assert.equal(addressBucket("::1"), "0:0:0:0::/64");
  assert.equal(addressBucket("fe80:0:0:0:1::"), "fe80:0:0:0::/64");
  assert.equal(addressBucket("192.0.2.1"), "192.0.2.1");
  assert.equal(addressBucket("2001:DB8:1:2::9"), "2001:db8:1:2::/64");
});

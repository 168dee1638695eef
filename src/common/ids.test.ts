import assert from "node:assert/strict";
import { test } from "node:test";
import { ManualClock } from "./clock.js";
import { assertCanonicalId, isCanonicalId, newId } from "./ids.js";
import { randomInt, SeededRandom } from "./random.js";

test("newId makes canonical, time-ordered ULIDs from injected time and randomness", () => {
  const clock = new ManualClock(Date.UTC(2026, 10, 23));
  const a = newId(clock, new SeededRandom("a"));
  clock.advance(1);
  const b = newId(clock, new SeededRandom("a"));
  assert.ok(isCanonicalId(a) && isCanonicalId(b));
  assert.ok(a < b);
  assert.equal(
    newId(new ManualClock(5), new SeededRandom("x")),
    newId(new ManualClock(5), new SeededRandom("x")),
  );
});

test("isCanonicalId rejects lower case, excluded letters, wrong length and overflowing timestamps", () => {
  for (const bad of [
    "01arz3ndektsv4rrffq69g5fav",
    "01ARZ3NDEKTSV4RRFFQ69G5FAI",
    "01ARZ3NDEKTSV4RRFFQ69G5FA",
    "81ARZ3NDEKTSV4RRFFQ69G5FAV",
    42,
    null,
  ])
    assert.equal(isCanonicalId(bad), false, String(bad));
  assert.equal(isCanonicalId("01ARZ3NDEKTSV4RRFFQ69G5FAV"), true);
  assert.throws(() => assertCanonicalId("nope", "device id"), {
    code: "invalid_input",
    message: /device id/,
  });
});

test("randomInt is unbiased over its range (rejection sampling) and deterministic when seeded", () => {
  const random = new SeededRandom("dice");
  const counts = new Array(6).fill(0);
  for (let i = 0; i < 6000; i++) counts[randomInt(random, 6)]++;
  for (const c of counts) assert.ok(c > 850 && c < 1150, `count ${c}`);
  assert.throws(() => randomInt(random, 0), RangeError);
});

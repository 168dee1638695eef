import assert from "node:assert/strict";
import { test } from "node:test";
import { withTimeout } from "./timeout.js";

test("withTimeout passes the result through, or rejects with the given error when time runs out", async () => {
  assert.equal(await withTimeout(Promise.resolve(7), 1_000, () => new Error("late")), 7);
  await assert.rejects(
    withTimeout(Promise.reject(new Error("own")), 1_000, () => new Error("late")),
    /own/,
  );
  await assert.rejects(
    withTimeout(new Promise(() => undefined), 5, () => new Error("late")),
    /late/,
  );
});

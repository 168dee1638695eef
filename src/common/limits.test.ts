import assert from "node:assert/strict";
import { test } from "node:test";
import { checkLimitInvariants, limits } from "./limits.js";

test("the configured limits satisfy their invariants", () => {
  assert.doesNotThrow(() => checkLimitInvariants());
});

test("a broken invariant is reported", () => {
  assert.throws(
    () =>
      checkLimitInvariants({
        ...limits,
        connectionSweepIntervalMs: limits.rotationOverlapMs,
      } as unknown as typeof limits),
    /re-checked/,
  );
  assert.throws(() => checkLimitInvariants({ ...limits, caLifetimeMs: 1 }), /CA must outlive/);
  assert.throws(
    () => checkLimitInvariants({ ...limits, renewAtFraction: 0.5 } as unknown as typeof limits),
    /after half/,
  );
});

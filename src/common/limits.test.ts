import assert from "node:assert/strict";
import { test } from "node:test";
import { checkLimitInvariants, limits } from "./limits.js";

test("the configured limits satisfy their invariants", () => {
  assert.doesNotThrow(() => checkLimitInvariants());
});

test("a broken invariant is reported", () => {
  assert.throws(
    () => checkLimitInvariants({ ...limits, rotationOverlapMs: limits.clientCertificateMinLifetimeMs }),
    /overlap/,
  );
  assert.throws(() => checkLimitInvariants({ ...limits, caLifetimeMs: 1 }), /CA must outlive/);
});

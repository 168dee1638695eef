import assert from "node:assert/strict";
import { test } from "node:test";
import { constantTimeEqual } from "./constant-time.js";
import { certificateFingerprint, identityFingerprint } from "./fingerprint.js";

test("constantTimeEqual compares values of any length", () => {
  assert.equal(constantTimeEqual("482193", "482193"), true);
  assert.equal(constantTimeEqual("482193", "482194"), false);
  assert.equal(constantTimeEqual("482193", "4821930"), false);
  assert.equal(constantTimeEqual(Buffer.from([1, 2]), Buffer.from([1, 2])), true);
  assert.equal(constantTimeEqual(Buffer.alloc(0), Buffer.alloc(0)), true);
});

test("fingerprints are lowercase hex SHA-256 (FIPS 180-2 'abc' vector)", () => {
  const abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
  assert.equal(certificateFingerprint(Buffer.from("abc")), abc);
  assert.throws(() => identityFingerprint(Buffer.alloc(31)), RangeError);
  assert.match(identityFingerprint(Buffer.alloc(32)), /^[0-9a-f]{64}$/);
});

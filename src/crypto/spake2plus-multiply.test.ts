import assert from "node:assert/strict";
import { test } from "node:test";
import { p256 } from "@noble/curves/nist.js";
import { SeededRandom } from "../common/random.js";
import { multiplyBase, multiplyPoint } from "./spake2plus-multiply.js";
import { M, N } from "./spake2plus-transcript.js";

const Point = p256.Point;
const n = Point.Fn.ORDER;
const random = new SeededRandom("spake2plus-multiply");
const scalar = (): bigint => BigInt(`0x${random.bytes(40).toString("hex")}`) % n;

test("multiplyPoint and multiplyBase agree with noble's multiply for random points and scalars", () => {
  for (let i = 0; i < 40; i++) {
    const point = i % 4 === 0 ? M : i % 4 === 1 ? N : Point.BASE.multiply(scalar() || 1n);
    const k = scalar();
    assert.ok(multiplyPoint(point, k).equals(point.multiply(k)), `point ${i}`);
    assert.ok(multiplyBase(k).equals(Point.BASE.multiply(k)), `base ${i}`);
  }
});

test("edge scalars (0, 1, 2, n-2, n-1) and the identity point", () => {
  const point = Point.BASE.multiply(scalar() || 1n);
  for (const k of [1n, 2n, 3n, n - 3n, n - 2n, n - 1n]) {
    assert.ok(multiplyPoint(point, k).equals(point.multiply(k)), `k = ${k}`);
    assert.ok(multiplyBase(k).equals(Point.BASE.multiply(k)), `base k = ${k}`);
  }
  assert.ok(multiplyPoint(point, 0n).is0());
  assert.ok(multiplyBase(0n).is0());
  assert.ok(multiplyPoint(Point.ZERO, 5n).is0());
  // A point not in affine form (Z != 1) gives the same result.
  const projective = point.double().add(point);
  assert.ok(multiplyPoint(projective, 12345n).equals(point.multiply(3n * 12345n)));
});

test("scalars outside [0, n-1] are refused", () => {
  for (const k of [-1n, n, n + 1n, 2n ** 256n]) {
    assert.throws(() => multiplyPoint(M, k), RangeError);
    assert.throws(() => multiplyBase(k), RangeError);
  }
  assert.throws(() => multiplyPoint(M, 1 as unknown as bigint), RangeError);
});

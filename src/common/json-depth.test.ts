import assert from "node:assert/strict";
import { test } from "node:test";
import { jsonDepthExceeds, parseBoundedJson } from "./json-depth.js";

test("jsonDepthExceeds counts arrays and objects, not brackets inside strings", () => {
  assert.equal(jsonDepthExceeds("1", 0), false);
  assert.equal(jsonDepthExceeds("[]", 0), true);
  assert.equal(jsonDepthExceeds('{"a":[{"b":[]}]}', 4), false);
  assert.equal(jsonDepthExceeds('{"a":[{"b":[]}]}', 3), true);
  assert.equal(jsonDepthExceeds('["[[[[", "\\"[[[["]', 1), false);
  assert.equal(jsonDepthExceeds('["\\\\", [[]]]', 2), true, "an escaped backslash ends before the quote");
  assert.equal(jsonDepthExceeds(`${"[".repeat(100_000)}${"]".repeat(100_000)}`, 64), true);
  // Siblings do not add up.
  assert.equal(jsonDepthExceeds(`[${"[],".repeat(1000)}[]]`, 2), false);
});

test("parseBoundedJson refuses 65 levels and 5000 levels as invalid input, and parses 64", () => {
  const nested = (n: number) => `${"[".repeat(n)}${"]".repeat(n)}`;
  assert.deepEqual(parseBoundedJson(nested(2), "the input"), [[]]);
  assert.ok(parseBoundedJson(nested(64), "the input"));
  for (const n of [65, 5000])
    assert.throws(() => parseBoundedJson(nested(n), "the input"), {
      code: "invalid_input",
      message: "the input is nested deeper than 64 levels",
    });
  // A request body may wrap the input in its own object.
  assert.ok(parseBoundedJson(`{"input":${nested(64)}}`, "the body", 1));
  assert.throws(() => parseBoundedJson("{", "the body"), { message: "the body is not valid JSON" });
});

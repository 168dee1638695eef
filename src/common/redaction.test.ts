import assert from "node:assert/strict";
import { test } from "node:test";
import { inspect } from "node:util";
import { REDACTED, redactUrl, Secret } from "./redaction.js";

test("a Secret never shows its value in inspect, JSON or string form", () => {
  const s = new Secret("hunter2-top-secret");
  for (const shown of [inspect(s), inspect({ nested: s }), JSON.stringify({ s }), `${s}`, String(s)])
    assert.ok(!shown.includes("hunter2"), shown);
  assert.equal(s.expose(), "hunter2-top-secret");
  assert.equal(JSON.stringify(s), JSON.stringify(REDACTED));
});

test("redactUrl hides secret query parameters", () => {
  const out = redactUrl("palyra://pair?v=1&id=7QX2&s=c2VjcmV0");
  assert.ok(!out.includes("c2VjcmV0"));
  assert.ok(out.includes("id=7QX2"));
  assert.equal(redactUrl("::not a url"), REDACTED);
});

import assert from "node:assert/strict";
import { test } from "node:test";
import { asPalyraError, CommonError, ExitCode, PalyraError } from "./errors.js";

test("domain errors carry a stable code, an exit code and a cause", () => {
  const cause = new Error("disk full");
  const err = new CommonError("io", "could not write", { cause });
  assert.ok(err instanceof PalyraError);
  assert.equal(err.code, "io");
  assert.equal(err.domain, "common");
  assert.equal(err.exitCode, ExitCode.internal);
  assert.equal(err.cause, cause);
  assert.deepEqual(JSON.parse(JSON.stringify(err)), {
    domain: "common",
    code: "io",
    message: "could not write",
  });
  assert.equal(new CommonError("not_found", "x").exitCode, 8);
});

test("asPalyraError wraps foreign errors as internal and keeps ours", () => {
  const ours = new CommonError("invalid_input", "bad");
  assert.equal(asPalyraError(ours), ours);
  const wrapped = asPalyraError(new TypeError("boom"));
  assert.equal(wrapped.code, "internal");
  assert.equal(wrapped.exitCode, 1);
});

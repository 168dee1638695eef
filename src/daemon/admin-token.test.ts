import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { SeededRandom } from "../common/random.js";
import { loadOrCreateAdminToken, readAdminToken } from "./admin-token.js";

const root = mkdtempSync(join(tmpdir(), "palyra-token-"));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = () => join(root, `admin-${++n}.token`);

test("created 0600 at first start, then read back unchanged", () => {
  const path = fresh();
  assert.equal(readAdminToken(path), undefined, "no token yet");
  const token = loadOrCreateAdminToken(path, new SeededRandom("t"));
  assert.equal(statSync(path).mode & 0o777, 0o600);
  assert.equal(readAdminToken(path)?.expose(), token.expose());
  assert.equal(loadOrCreateAdminToken(path, new SeededRandom("other")).expose(), token.expose());
});

test("a token readable by others is refused, naming the file, its mode and the fix, and not replaced", () => {
  const path = fresh();
  const token = loadOrCreateAdminToken(path, new SeededRandom("t"));
  chmodSync(path, 0o644);
  for (const read of [() => readAdminToken(path), () => loadOrCreateAdminToken(path, new SeededRandom("x"))])
    assert.throws(read, (err: Error) => {
      assert.ok(err.message.includes(path), err.message);
      assert.match(err.message, /mode 0644/);
      assert.ok(err.message.includes(`chmod 600 ${path}`), err.message);
      assert.ok(!err.message.includes(token.expose()), "never the token itself");
      return true;
    });
  assert.equal(readFileSync(path, "utf8").trim(), token.expose(), "the file is left alone");
});

test("a malformed token is refused, not silently replaced", () => {
  const path = fresh();
  writeFileSync(path, "not a token\n", { mode: 0o600 });
  assert.throws(
    () => readAdminToken(path),
    (err: Error) => err.message.includes(path) && /malformed/.test(err.message),
  );
  assert.throws(() => loadOrCreateAdminToken(path, new SeededRandom("x")), /malformed/);
  assert.equal(readFileSync(path, "utf8"), "not a token\n");
});

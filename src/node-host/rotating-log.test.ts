import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { RotatingLog } from "./rotating-log.js";

const dir = mkdtempSync(join(tmpdir(), "palyra-log-"));
after(() => rmSync(dir, { recursive: true, force: true }));

test("the log appends, rotates past its size, keeps `keep` old files and drops the oldest", () => {
  const path = join(dir, "node.log");
  const line = "x".repeat(99); // 100 bytes with its newline
  const log = new RotatingLog(path, { maxBytes: 250, keep: 2 });
  for (let i = 0; i < 9; i++) log.write(`${i}${line.slice(1)}`);
  log.close();
  // 2 lines per file: 8,  6-7,  4-5; lines 0-3 rotated away.
  assert.deepEqual(
    readFileSync(path, "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => l[0]),
    ["8"],
  );
  assert.deepEqual(
    readFileSync(`${path}.1`, "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => l[0]),
    ["6", "7"],
  );
  assert.deepEqual(
    readFileSync(`${path}.2`, "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => l[0]),
    ["4", "5"],
  );
  assert.equal(existsSync(`${path}.3`), false);
  assert.equal(statSync(path).mode & 0o777, 0o600);
  // Reopening continues the current file.
  const again = new RotatingLog(path, { maxBytes: 250, keep: 2 });
  again.write("9");
  again.close();
  assert.deepEqual(
    readFileSync(path, "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => l[0]),
    ["8", "9"],
  );
});

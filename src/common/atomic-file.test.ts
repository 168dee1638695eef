import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { ensurePrivateDirectory, modeOf, readFileLimited, writeFileAtomic } from "./atomic-file.js";

const root = mkdtempSync(join(tmpdir(), "palyra-atomic-"));
after(() => rmSync(root, { recursive: true, force: true }));

test("writeFileAtomic replaces content whole, with mode 0600, leaving no temp file", () => {
  const path = join(root, "a.bin");
  writeFileAtomic(path, "first");
  writeFileAtomic(path, Buffer.from("second"));
  assert.equal(readFileSync(path, "utf8"), "second");
  assert.equal(modeOf(path), 0o600);
  assert.deepEqual(
    readdirSync(root).filter((f) => f.endsWith(".tmp")),
    [],
  );
});

test("writeFileAtomic into a missing directory fails with a clear error and leaves nothing", () => {
  assert.throws(() => writeFileAtomic(join(root, "missing", "x"), "y"), {
    code: "io",
    message: /could not write/,
  });
});

test("ensurePrivateDirectory creates 0700 and tightens an existing 0755 directory", () => {
  const fresh = join(root, "fresh", "nested");
  ensurePrivateDirectory(fresh);
  assert.equal(modeOf(fresh), 0o700);
  const loose = join(root, "loose");
  mkdirSync(loose);
  chmodSync(loose, 0o755);
  ensurePrivateDirectory(loose);
  assert.equal(modeOf(loose), 0o700);
  writeFileSync(join(root, "file"), "x");
  assert.throws(() => ensurePrivateDirectory(join(root, "file")), /not a directory/);
});

test("readFileLimited refuses files over the limit before reading them", () => {
  const path = join(root, "big");
  writeFileSync(path, Buffer.alloc(100));
  assert.equal(readFileLimited(path, 100).length, 100);
  assert.throws(() => readFileLimited(path, 99), { code: "invalid_input" });
});

test("readFileLimited reads whole files of any size up to the limit, the empty one included", () => {
  for (const size of [0, 1, 70_000, 200_000]) {
    const path = join(root, `sized-${size}`);
    const content = Buffer.alloc(size, size % 251);
    writeFileSync(path, content);
    assert.ok(readFileLimited(path, 200_000).equals(content), `size ${size}`);
  }
});

test("readFileLimited refuses what is not a regular file: a FIFO (without blocking), a device, a symlink", () => {
  const fifo = join(root, "fifo");
  execFileSync("mkfifo", [fifo]);
  assert.throws(() => readFileLimited(fifo, 100), /not a regular file/);
  // /dev/zero reports size 0 and never ends: it must not be read at all.
  assert.throws(() => readFileLimited("/dev/zero", 100), /not a regular file/);
  const target = join(root, "target");
  writeFileSync(target, "x");
  symlinkSync(target, join(root, "link"));
  assert.throws(() => readFileLimited(join(root, "link"), 100), { code: "ELOOP" });
});

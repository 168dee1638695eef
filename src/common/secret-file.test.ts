import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { readSecretFile, SecretFileError, secretDirectoryProblem, secretFileProblem } from "./secret-file.js";

const root = mkdtempSync(join(tmpdir(), "palyra-secret-file-"));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
function freshDir(): string {
  const dir = join(root, `d${++n}`);
  mkdirSync(dir, { mode: 0o700 });
  return dir;
}

function refused(fn: () => unknown, ...needles: string[]): void {
  assert.throws(fn, (err: Error) => {
    assert.ok(err instanceof SecretFileError, String(err));
    assert.equal(err.code, "precondition");
    assert.equal(err.exitCode, 7);
    for (const needle of needles) assert.ok(err.message.includes(needle), `${needle} in ${err.message}`);
    assert.ok(!err.message.includes("s3cret"), "never the content");
    return true;
  });
}

test("a 0600 regular file of the user in a private directory is read; a missing one is undefined", () => {
  const dir = freshDir();
  const path = join(dir, "key");
  writeFileSync(path, "s3cret", { mode: 0o600 });
  assert.equal(readSecretFile(path, 64)?.toString(), "s3cret");
  assert.equal(secretFileProblem(path), undefined);
  assert.equal(readSecretFile(join(dir, "absent"), 64), undefined);
  assert.equal(secretFileProblem(join(dir, "absent")), undefined);
  assert.throws(() => readSecretFile(path, 3), { code: "invalid_input" });
});

test("any group or other bit, or a mode other than 0600, is refused with the file, its mode and chmod 600", () => {
  const dir = freshDir();
  const path = join(dir, "key");
  writeFileSync(path, "s3cret", { mode: 0o600 });
  for (const mode of [0o644, 0o640, 0o604, 0o660, 0o400, 0o700]) {
    chmodSync(path, mode);
    const shown = `0${mode.toString(8)}`;
    refused(() => readSecretFile(path, 64), path, `mode ${shown}`, `chmod 600 ${path}`);
    assert.match(secretFileProblem(path) ?? "", new RegExp(`mode ${shown}`));
  }
});

test("a symbolic link is refused, even to a good file", () => {
  const dir = freshDir();
  const real = join(dir, "real");
  writeFileSync(real, "s3cret", { mode: 0o600 });
  const link = join(dir, "link");
  symlinkSync(real, link);
  refused(() => readSecretFile(link, 64), link, "symbolic link");
  assert.match(secretFileProblem(link) ?? "", /symbolic link/);
});

test("a directory that group or others may write is refused; a FIFO is not a regular file", () => {
  const dir = freshDir();
  const path = join(dir, "key");
  writeFileSync(path, "s3cret", { mode: 0o600 });
  chmodSync(dir, 0o770);
  refused(() => readSecretFile(path, 64), dir, "writable by group or others", `chmod go-w ${dir}`);
  chmodSync(dir, 0o755);
  assert.equal(readSecretFile(path, 64)?.toString(), "s3cret", "read-only for others is fine for the file");
  assert.match(secretDirectoryProblem(dir) ?? "", /mode 0755.*chmod 700/);
  chmodSync(dir, 0o700);
  assert.equal(secretDirectoryProblem(dir), undefined);
  const fifo = join(dir, "fifo");
  execFileSync("mkfifo", ["-m", "600", fifo]);
  refused(() => readSecretFile(fifo, 64), fifo, "not a regular file");
});

test("a file owned by another user is refused with the chown that fixes it", () => {
  const dir = freshDir();
  let path = join(dir, "key");
  writeFileSync(path, "s3cret", { mode: 0o600 });
  if (process.getuid?.() === 0) chownSync(path, 65534, 65534);
  else path = "/etc/hostname"; // root's, and we are not root
  refused(() => readSecretFile(path, 1024), path, "owned by uid", "chown");
  assert.match(secretFileProblem(path) ?? "", /owned by uid/);
});

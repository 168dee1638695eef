import assert from "node:assert/strict";
import { tmpdir } from "node:os";
import { test } from "node:test";
import { noSpaceError, StorageError } from "./storage-errors.js";

test("noSpaceError finds ENOSPC and SQLITE_FULL anywhere in the cause chain and names the path", () => {
  const enospc = Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
  const wrapped = new Error("could not store the blob", { cause: enospc });
  const found = noSpaceError(wrapped, "/state/vault");
  assert.ok(found instanceof StorageError);
  assert.equal(found.code, "no_space");
  assert.equal(found.exitCode, 1);
  assert.equal(found.message, "no space left writing /state/vault");
  const withPath = Object.assign(new Error("ENOSPC"), { code: "ENOSPC", path: "/state/daemon.json.tmp" });
  assert.equal(noSpaceError(withPath)?.message, "no space left writing /state/daemon.json.tmp");
  const sqlite = Object.assign(new Error("database or disk is full"), { code: "SQLITE_FULL" });
  assert.equal(noSpaceError(sqlite, "/state/palyra.db")?.message, "no space left writing /state/palyra.db");
  assert.equal(noSpaceError(found), found, "already classified");
});

test("noSpaceError leaves other failures alone, and an I/O error on a roomy filesystem too", () => {
  assert.equal(noSpaceError(new Error("boom"), "/state"), undefined);
  assert.equal(noSpaceError(Object.assign(new Error("busy"), { code: "SQLITE_BUSY" }), "/state"), undefined);
  const ioerr = Object.assign(new Error("disk I/O error"), { code: "SQLITE_IOERR_SHMSIZE" });
  assert.equal(noSpaceError(ioerr, tmpdir()), undefined, "the temp directory has room");
  assert.equal(noSpaceError(ioerr), undefined, "no path, no guess");
});

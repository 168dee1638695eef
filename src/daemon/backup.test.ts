import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { SeededRandom } from "../common/random.js";
import { sealEnvelope } from "../crypto/envelope.js";
import { deriveKeyFromPassphrase } from "../crypto/passphrase-key.js";
import { createBackup, restoreBackup } from "./backup.js";

const root = mkdtempSync(join(tmpdir(), "palyra-backup-unit-"));
after(() => rmSync(root, { recursive: true, force: true }));
const random = new SeededRandom("backup");

/** An archive in the backup format with entries of our choosing (as a hostile file could be made). */
async function forged(entries: { path: string; data: string }[], passphrase: string): Promise<Buffer> {
  const magic = "PALYRA-BACKUP-1\n";
  const header = `${JSON.stringify({ v: 1, kdf: "scrypt", salt: "c2FsdHNhbHRzYWx0", N: 1024, r: 8, p: 1, files: entries.length })}\n`;
  const payload = Buffer.concat(
    entries.flatMap((e) => {
      const path = Buffer.from(e.path);
      const head = Buffer.alloc(14 + path.length);
      head.writeUInt16BE(path.length, 0);
      path.copy(head, 2);
      head.writeUInt32BE(0o600, 2 + path.length);
      head.writeBigUInt64BE(BigInt(e.data.length), 6 + path.length);
      return [head, Buffer.from(e.data)];
    }),
  );
  const key = await deriveKeyFromPassphrase(passphrase, "c2FsdHNhbHRzYWx0", { N: 1024, r: 8, p: 1 });
  return Buffer.concat([
    Buffer.from(magic + header),
    sealEnvelope({ magic: "PBK1", version: 1 }, key, payload, Buffer.from(magic + header), random),
  ]);
}

test("round trip: files, modes and nested paths come back; daemon.json, WAL side files and temp files stay out", async () => {
  const source = join(root, "source");
  mkdirSync(join(source, "secrets"), { recursive: true });
  writeFileSync(join(source, "secrets", "a.sec"), "sealed", { mode: 0o600 });
  writeFileSync(join(source, "ca.pem"), "certificate", { mode: 0o644 });
  writeFileSync(join(source, "daemon.json"), "{}");
  writeFileSync(join(source, "palyra.db-wal"), "wal");
  writeFileSync(join(source, ".x.tmp"), "temp");
  const { bytes, summary } = await createBackup(source, "a good passphrase", random);
  assert.equal(summary.files, 2);
  const target = join(root, "target");
  assert.deepEqual(await restoreBackup(bytes, "a good passphrase", target), { files: 2 });
  assert.equal(readFileSync(join(target, "secrets", "a.sec"), "utf8"), "sealed");
  assert.equal(readFileSync(join(target, "ca.pem"), "utf8"), "certificate");
  assert.equal(existsSync(join(target, "daemon.json")), false);

  const flipped = Buffer.from(bytes);
  flipped[flipped.length - 20]! ^= 1;
  await assert.rejects(restoreBackup(flipped, "a good passphrase", join(root, "t2")), {
    code: "backup_locked",
  });
  await assert.rejects(restoreBackup(bytes.subarray(0, 40), "a good passphrase", join(root, "t3")), {
    code: "backup_invalid",
  });
});

test("hostile archives: paths that climb out, absolute or empty, and truncated entries are refused before anything is written", async () => {
  for (const path of ["../escape", "a/../../escape", "/etc/passwd", "", "a//b", "./x", "x\0y"]) {
    const target = join(root, `hostile-${Buffer.from(path).toString("hex")}`);
    const archive = await forged(
      [
        { path: "ok.txt", data: "fine" },
        { path, data: "evil" },
      ],
      "pass phrase",
    );
    await assert.rejects(
      restoreBackup(archive, "pass phrase", target),
      { code: "backup_invalid" },
      JSON.stringify(path),
    );
    assert.equal(existsSync(join(target, "ok.txt")), false, "nothing written");
  }
  assert.equal(existsSync(join(root, "escape")), false);
});

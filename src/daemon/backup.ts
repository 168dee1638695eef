import { randomBytes } from "node:crypto";
import { lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join, relative, sep } from "node:path";
import Database from "better-sqlite3";
import { ensurePrivateDirectory, PRIVATE_FILE_MODE, writeFileAtomic } from "../common/atomic-file.js";
import type { Random } from "../common/random.js";
import { openEnvelope, sealEnvelope } from "../crypto/envelope.js";
import { defaultScryptParams, deriveKeyFromPassphrase, type ScryptParams } from "../crypto/passphrase-key.js";
import { readMetadata } from "../identity/secret-store-metadata.js";
import { VAULT_KEY_FILES } from "../vault/vault-key.js";
import { DaemonError } from "./errors.js";

/**
 * `palyra backup` / `palyra restore`: everything a gateway needs, in one passphrase-encrypted file.
 *
 * Format: the line `PALYRA-BACKUP-1`, a JSON header line (scrypt salt and cost, when, how many files;
 * nothing secret), then one ChaCha20-Poly1305 envelope (key = scrypt(passphrase)) whose associated data
 * is both header lines, over the entries `u16 path length | path | u32 mode | u64 size | bytes`.
 * SQLite databases are copied with SQLite's online backup API, so the copy is consistent while the
 * daemon writes. Left out: the running daemon's own files (daemon.json, sockets, WAL side files,
 * temp files, logs) and whatever lives outside the state root: keys held by an OS keyring.
 */
const MAGIC = "PALYRA-BACKUP-1\n";
const FORMAT = { magic: "PBK1", version: 1 } as const;
/** A backup is built in memory; a gateway's state is megabytes, so this is far above need. */
const MAX_BACKUP_BYTES = 1024 * 1024 * 1024;
const SKIPPED = [/^daemon\.json$/, /-(wal|shm|journal)$/, /\.tmp$/, /(^|\/)\./, /^logs\//];

export interface BackupSummary {
  files: number;
  bytes: number;
  /** Keys the backup cannot carry (an OS keyring holds them), with what that means. */
  warnings: string[];
}

interface Entry {
  path: string;
  mode: number;
  data: Buffer;
}

function listFiles(root: string, dir = root, out: string[] = []): string[] {
  for (const name of readdirSync(dir).sort()) {
    const full = join(dir, name);
    const stat = lstatSync(full);
    const path = relative(root, full).split(sep).join("/");
    if (SKIPPED.some((p) => p.test(path))) continue;
    if (stat.isDirectory()) listFiles(root, full, out);
    else if (stat.isFile()) out.push(path);
  }
  return out;
}

async function readEntry(root: string, path: string): Promise<Entry> {
  const full = join(root, path);
  const mode = statSync(full).mode & 0o777;
  if (!path.endsWith(".db")) return { path, mode, data: readFileSync(full) };
  // A consistent copy of a live database, through SQLite itself.
  const temp = join(root, `.${path.replace(/\//g, "_")}.${randomBytes(6).toString("hex")}.backup.tmp`);
  const db = new Database(full, { readonly: true, fileMustExist: true });
  try {
    await db.backup(temp);
    return { path, mode, data: readFileSync(temp) };
  } finally {
    db.close();
    rmSync(temp, { force: true });
  }
}

function warningsFor(root: string): string[] {
  const warnings: string[] = [];
  let kekMode: string | undefined;
  try {
    kekMode = readMetadata(join(root, "secrets"))?.kek.mode;
  } catch {
    // a damaged store.json: doctor names it; the backup carries it as it is
  }
  if (kekMode === "keyring")
    warnings.push(
      "the secret store's key (which protects the CA key) is in this machine's OS keyring, not in the backup: a restore elsewhere cannot open it; use PALYRA_STORE_PASSPHRASE for a portable gateway",
    );
  let vaultFiles: string[] = [];
  try {
    vaultFiles = readdirSync(join(root, "vault"));
  } catch {
    // no vault
  }
  if (vaultFiles.includes("vault.db") && !VAULT_KEY_FILES.some((f) => vaultFiles.includes(f)))
    warnings.push(
      "the vault key is in this machine's OS key store, not in the backup: move it first with `palyra secrets migrate --to encrypted-file` to back up the secrets",
    );
  return warnings;
}

export async function createBackup(
  root: string,
  passphrase: string,
  random: Random,
): Promise<{ bytes: Buffer; summary: BackupSummary }> {
  const entries: Entry[] = [];
  let total = 0;
  for (const path of listFiles(root)) {
    const entry = await readEntry(root, path);
    total += entry.data.length;
    if (total > MAX_BACKUP_BYTES)
      throw new DaemonError("backup_invalid", "the state root is too large to back up in one file");
    entries.push(entry);
  }
  const params = defaultScryptParams();
  const salt = random.bytes(16).toString("base64url");
  const header = `${JSON.stringify({ v: 1, kdf: "scrypt", salt, ...params, created_at: new Date().toISOString(), files: entries.length })}\n`;
  const payload = Buffer.concat(
    entries.flatMap((e) => {
      const path = Buffer.from(e.path, "utf8");
      const head = Buffer.alloc(2 + path.length + 4 + 8);
      head.writeUInt16BE(path.length, 0);
      path.copy(head, 2);
      head.writeUInt32BE(e.mode, 2 + path.length);
      head.writeBigUInt64BE(BigInt(e.data.length), 6 + path.length);
      return [head, e.data];
    }),
  );
  const key = await deriveKeyFromPassphrase(passphrase, salt, params);
  try {
    const sealed = sealEnvelope(FORMAT, key, payload, Buffer.from(MAGIC + header), random);
    return {
      bytes: Buffer.concat([Buffer.from(MAGIC + header), sealed]),
      summary: { files: entries.length, bytes: total, warnings: warningsFor(root) },
    };
  } finally {
    key.fill(0);
    payload.fill(0);
  }
}

/** A path from a backup: relative, `/`-separated, no `..`, no empty or dot segments. */
function safePath(path: string): string {
  const parts = path.split("/");
  if (
    path.length === 0 ||
    path.length > 512 ||
    path.includes("\0") ||
    parts.some((p) => p === "" || p === "." || p === "..")
  )
    throw new DaemonError(
      "backup_invalid",
      `the backup holds an unsafe path: ${JSON.stringify(path.slice(0, 80))}`,
    );
  return path;
}

export async function restoreBackup(
  archive: Buffer,
  passphrase: string,
  target: string,
): Promise<{ files: number }> {
  const bad = (why: string) => new DaemonError("backup_invalid", `not a usable Palyra backup: ${why}`);
  if (archive.subarray(0, MAGIC.length).toString("latin1") !== MAGIC)
    throw bad("it does not start with PALYRA-BACKUP-1");
  const headerEnd = archive.indexOf(0x0a, MAGIC.length);
  if (headerEnd < 0 || headerEnd - MAGIC.length > 4096) throw bad("the header is missing or too long");
  let header: { v?: number; kdf?: string; salt?: string } & Partial<ScryptParams>;
  try {
    header = JSON.parse(archive.subarray(MAGIC.length, headerEnd).toString("utf8"));
  } catch {
    throw bad("the header is not JSON");
  }
  const { N, r, p, salt } = header;
  if (header.v !== 1 || header.kdf !== "scrypt" || typeof salt !== "string" || !N || !r || !p)
    throw bad("unknown version or key derivation");
  if (N > 2 ** 20 || r > 16 || p > 4) throw bad("the key derivation cost is out of range");
  const key = await deriveKeyFromPassphrase(passphrase, salt, { N, r, p });
  let payload: Buffer;
  try {
    payload = openEnvelope(FORMAT, key, archive.subarray(headerEnd + 1), archive.subarray(0, headerEnd + 1));
  } catch (err) {
    throw new DaemonError(
      "backup_locked",
      "the backup does not open: wrong passphrase, or the file is damaged",
      { cause: err },
    );
  } finally {
    key.fill(0);
  }
  const entries: Entry[] = [];
  for (let at = 0; at < payload.length; ) {
    if (at + 2 > payload.length) throw bad("truncated entry");
    const length = payload.readUInt16BE(at);
    if (at + 2 + length + 12 > payload.length) throw bad("truncated entry");
    const path = safePath(payload.subarray(at + 2, at + 2 + length).toString("utf8"));
    const mode = payload.readUInt32BE(at + 2 + length) & 0o644;
    const size = Number(payload.readBigUInt64BE(at + 6 + length));
    const start = at + 14 + length;
    if (start + size > payload.length) throw bad("truncated entry");
    entries.push({ path, mode, data: payload.subarray(start, start + size) });
    at = start + size;
  }
  mkdirSync(target, { recursive: true, mode: 0o700 });
  if (readdirSync(target).length > 0)
    throw new DaemonError(
      "state_root",
      `${target} is not empty: restore only into a new or empty state root`,
    );
  ensurePrivateDirectory(target);
  for (const entry of entries) {
    const full = join(target, entry.path);
    ensurePrivateDirectory(join(full, ".."));
    // Public files (ca.pem) keep 0644; everything else is private.
    writeFileAtomic(full, entry.data, entry.mode === 0o644 ? 0o644 : PRIVATE_FILE_MODE);
  }
  payload.fill(0);
  return { files: entries.length };
}

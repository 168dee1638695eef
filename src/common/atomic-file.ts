import { randomBytes } from "node:crypto";
import {
  chmodSync,
  closeSync,
  constants,
  fstatSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { CommonError } from "./errors.js";

export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

/**
 * Writes a file so that a crash at any point leaves either the old content or the new, never a mix:
 * write a temp file in the same directory, fsync it, rename over the target, fsync the directory (so
 * the rename itself survives power loss). Synchronous on purpose: callers acknowledge a write only
 * after this returns, and the files are small.
 */
export function writeFileAtomic(path: string, data: Uint8Array | string, mode = PRIVATE_FILE_MODE): void {
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}.${randomBytes(6).toString("hex")}.tmp`);
  let fd: number | undefined;
  try {
    fd = openSync(
      temp,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
      mode,
    );
    const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
    let offset = 0;
    while (offset < bytes.length) offset += writeSync(fd, bytes, offset, bytes.length - offset);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(temp, path);
  } catch (err) {
    if (fd !== undefined) closeSync(fd);
    try {
      unlinkSync(temp);
    } catch {
      // the temp file may not exist; nothing to clean
    }
    throw new CommonError("io", `could not write ${path}: ${(err as Error).message}`, { cause: err });
  }
  fsyncDirectory(dir);
}

export function fsyncDirectory(dir: string): void {
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Creates (or tightens) a directory readable only by its owner. */
export function ensurePrivateDirectory(path: string): void {
  try {
    mkdirSync(path, { recursive: true, mode: PRIVATE_DIR_MODE });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === "EEXIST" || code === "ENOTDIR" ? "exists and is not a directory" : (err as Error).message;
    throw new CommonError("precondition", `${path} ${why}`, { cause: err });
  }
  const st = statSync(path);
  if (!st.isDirectory()) throw new CommonError("precondition", `${path} exists and is not a directory`);
  if ((st.mode & 0o777) !== PRIVATE_DIR_MODE) chmodSync(path, PRIVATE_DIR_MODE);
}

/**
 * Reads a regular file, refusing anything larger than `maxBytes`. The size is checked before reading and
 * the read itself stops one byte past the limit: a file that grows between the two, or one whose size
 * fstat does not tell, cannot make it read more. A FIFO or device (which could block or never end) is
 * refused, as is a symbolic link.
 */
export function readFileLimited(path: string, maxBytes: number): Buffer {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new CommonError("invalid_input", `${path} is not a regular file`);
    const tooLarge = () => new CommonError("invalid_input", `${path} is larger than ${maxBytes} bytes`);
    if (st.size > maxBytes) throw tooLarge();
    // Bounded reads up to one byte past the limit, starting with what fstat says plus one.
    const limit = maxBytes + 1;
    const chunks: Buffer[] = [];
    let total = 0;
    let want = Math.min(limit, st.size + 1);
    while (total < limit) {
      const chunk = Buffer.allocUnsafe(Math.min(want, limit - total));
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      chunks.push(chunk.subarray(0, n));
      total += n;
      want = 64 * 1024;
    }
    if (total > maxBytes) throw tooLarge();
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total);
  } finally {
    closeSync(fd);
  }
}

/** Permission bits of a path, or undefined if it does not exist. */
export function modeOf(path: string): number | undefined {
  try {
    return statSync(path).mode & 0o777;
  } catch {
    return undefined;
  }
}

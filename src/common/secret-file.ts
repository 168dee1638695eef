import {
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  openSync,
  readSync,
  type Stats,
  statSync,
} from "node:fs";
import { dirname, resolve } from "node:path";
import { CommonError } from "./errors.js";

/**
 * The one permission rule for every file that holds a secret or a key (`secrets.kek`, `vault.key`,
 * `vault-key.sealed`, `admin.token`, the files of a secret store, vault blobs): it is read only if it is
 * a regular file (not a symbolic link), owned by the current user, mode exactly 0600, in a directory
 * that neither group nor others may write (they could swap the file). Anything else is refused with an
 * error that names the file, what is wrong and the command that fixes it, like ssh with a private key.
 * Errors never contain the file's content.
 */

export const SECRET_FILE_MODE = 0o600;

/** A secret file that breaks the rule (code `precondition`, exit 7). */
export class SecretFileError extends CommonError {
  readonly path: string;
  constructor(path: string, message: string, options?: { cause?: unknown }) {
    super("precondition", message, options);
    this.path = path;
  }
}

function octal(mode: number): string {
  return `0${(mode & 0o777).toString(8).padStart(3, "0")}`;
}

function currentUid(): number | undefined {
  return typeof process.getuid === "function" ? process.getuid() : undefined;
}

/** What is wrong with a secret file, given its own (not followed) stats and its directory's; or undefined. */
function problemOf(path: string, file: Stats, dir: Stats | undefined): string | undefined {
  const uid = currentUid();
  if (file.isSymbolicLink())
    return `${path} is a symbolic link; a secret file must be a regular file: replace the link with the file it points to`;
  if (!file.isFile()) return `${path} is not a regular file`;
  // Windows has no POSIX owner or mode bits (DPAPI and ACLs protect files there).
  if (process.platform === "win32") return undefined;
  if (uid !== undefined && file.uid !== uid)
    return `${path} is owned by uid ${file.uid}, not by the current user (uid ${uid}); fix with: chown ${uid} ${path}`;
  const mode = file.mode & 0o777;
  if (mode !== SECRET_FILE_MODE)
    return `${path} has mode ${octal(mode)}; a secret file must be readable and writable by its owner only (0600); fix with: chmod 600 ${path}`;
  if (dir && (dir.mode & 0o022) !== 0) {
    const d = dirname(path);
    return `${d}, the directory of ${path}, is writable by group or others (mode ${octal(dir.mode)}), who could replace the file; fix with: chmod go-w ${d}`;
  }
  return undefined;
}

function dirStats(path: string): Stats | undefined {
  try {
    return statSync(dirname(path));
  } catch {
    return undefined;
  }
}

/**
 * Reads a secret-bearing file under the rule, refusing anything over `maxBytes`. Returns undefined when
 * the file does not exist; throws SecretFileError when it breaks the rule, CommonError for other I/O.
 */
export function readSecretFile(path: string, maxBytes: number): Buffer | undefined {
  const abs = resolve(path);
  let fd: number;
  try {
    // O_NOFOLLOW: a symbolic link fails the open (ELOOP) instead of being followed; O_NONBLOCK: a FIFO
    // planted under the name does not hang the open (it is refused as not a regular file below).
    fd = openSync(abs, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return undefined;
    if (code === "ELOOP" || code === "EMLINK") {
      const problem = lstatProblem(abs);
      if (problem) throw new SecretFileError(abs, problem, { cause: err });
    }
    throw new CommonError("io", `cannot read ${abs}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const st = fstatSync(fd);
    const problem = problemOf(abs, st, dirStats(abs));
    if (problem) throw new SecretFileError(abs, problem);
    if (st.size > maxBytes) throw new CommonError("invalid_input", `${abs} is larger than ${maxBytes} bytes`);
    const buffer = Buffer.alloc(st.size);
    let offset = 0;
    while (offset < buffer.length) {
      const read = readSync(fd, buffer, offset, buffer.length - offset, offset);
      if (read === 0) break;
      offset += read;
    }
    return offset === buffer.length ? buffer : buffer.subarray(0, offset);
  } finally {
    closeSync(fd);
  }
}

function lstatProblem(path: string): string | undefined {
  try {
    return problemOf(path, lstatSync(path), dirStats(path));
  } catch {
    return undefined;
  }
}

/**
 * Checks a secret-bearing file against the rule without reading it (for `palyra doctor`): undefined
 * when it is fine or absent, else what is wrong with it and the fix.
 */
export function secretFileProblem(path: string): string | undefined {
  return lstatProblem(resolve(path));
}

/** What is wrong with a directory that holds secret files (it must be 0700 and the user's), or undefined. */
export function secretDirectoryProblem(path: string): string | undefined {
  const abs = resolve(path);
  let st: Stats;
  try {
    st = lstatSync(abs);
  } catch {
    return undefined;
  }
  const uid = currentUid();
  if (st.isSymbolicLink() || !st.isDirectory()) return `${abs} is not a directory`;
  if (uid !== undefined && st.uid !== uid)
    return `${abs} is owned by uid ${st.uid}, not by the current user (uid ${uid}); fix with: chown ${uid} ${abs}`;
  const mode = st.mode & 0o777;
  if (mode !== 0o700)
    return `${abs} has mode ${octal(mode)}; a directory of secret files must be 0700; fix with: chmod 700 ${abs}`;
  return undefined;
}

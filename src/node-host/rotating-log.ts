import { closeSync, existsSync, fstatSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { PRIVATE_FILE_MODE } from "../common/atomic-file.js";

/**
 * An append-only log file that rotates itself: past `maxBytes` it becomes `<path>.1` (older ones shift
 * up, `<path>.<keep>` is dropped) and a new file starts. Lines are written synchronously, so nothing is
 * lost when the process is killed right after logging.
 */
export class RotatingLog {
  readonly #path: string;
  readonly #maxBytes: number;
  readonly #keep: number;
  #fd: number;
  #size: number;

  constructor(path: string, options: { maxBytes?: number; keep?: number } = {}) {
    this.#path = path;
    this.#maxBytes = options.maxBytes ?? 5 * 1024 * 1024;
    this.#keep = options.keep ?? 3;
    this.#fd = openSync(path, "a", PRIVATE_FILE_MODE);
    this.#size = fstatSync(this.#fd).size;
  }

  write(line: string): void {
    const bytes = Buffer.from(line.endsWith("\n") ? line : `${line}\n`);
    if (this.#size > 0 && this.#size + bytes.length > this.#maxBytes) this.#rotate();
    writeSync(this.#fd, bytes);
    this.#size += bytes.length;
  }

  close(): void {
    closeSync(this.#fd);
  }

  #rotate(): void {
    closeSync(this.#fd);
    rmSync(`${this.#path}.${this.#keep}`, { force: true });
    for (let i = this.#keep - 1; i >= 1; i--)
      if (existsSync(`${this.#path}.${i}`)) renameSync(`${this.#path}.${i}`, `${this.#path}.${i + 1}`);
    renameSync(this.#path, `${this.#path}.1`);
    this.#fd = openSync(this.#path, "a", PRIVATE_FILE_MODE);
    this.#size = 0;
  }
}

import { closeSync, openSync, readSync } from "node:fs";
import { CommonError } from "../common/errors.js";
import { VaultError } from "../vault/errors.js";

/**
 * Reading a secret value for `secrets set`: from a file, from piped stdin (bytes as they are), or typed
 * at the terminal with echo off. Never from the command line, where `ps` and shell history would keep it.
 */

export async function readSecretInput(
  flags: { valueStdin?: boolean; valueFile?: string },
  maxBytes: number,
  label: string,
): Promise<Buffer> {
  if (flags.valueStdin && flags.valueFile !== undefined)
    throw new CommonError("invalid_input", "give --value-stdin or --value-file, not both");
  if (flags.valueFile !== undefined) {
    let value: Buffer | undefined;
    try {
      value = readAtMost(flags.valueFile, maxBytes + 1);
    } catch (err) {
      throw new CommonError("invalid_input", `cannot read ${flags.valueFile}: ${(err as Error).message}`);
    }
    if (value.length > maxBytes) {
      value.fill(0);
      throw new VaultError("value_too_large", `${flags.valueFile} is larger than ${maxBytes} bytes`);
    }
    return value;
  }
  if (!flags.valueStdin)
    throw new CommonError(
      "invalid_input",
      "give the value with --value-stdin or --value-file <path> (never on the command line)",
    );
  return process.stdin.isTTY
    ? readHidden(`value for ${label} (not shown; Enter ends it): `, maxBytes)
    : readPiped(maxBytes);
}

/**
 * At most `limit` bytes of a file of any type: a regular file, a FIFO or process substitution
 * (`--value-file <(pass show x)`), a device like /dev/zero that never ends. The size a file claims is
 * not trusted; reading simply stops at the limit.
 */
export function readAtMost(path: string, limit: number): Buffer {
  const fd = openSync(path, "r");
  const buffer = Buffer.alloc(limit);
  let filled = 0;
  try {
    while (filled < limit) {
      const n = readSync(fd, buffer, filled, limit - filled, null);
      if (n === 0) break;
      filled += n;
    }
  } catch (err) {
    buffer.fill(0);
    throw err;
  } finally {
    closeSync(fd);
  }
  const value = Buffer.from(buffer.subarray(0, filled));
  buffer.fill(0);
  return value;
}

async function readPiped(maxBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) {
      for (const c of chunks) c.fill(0);
      throw new VaultError("value_too_large", `the value on stdin is larger than ${maxBytes} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  const value = Buffer.concat(chunks);
  for (const c of chunks) c.fill(0);
  return value;
}

/**
 * One line from the terminal in raw mode, echoing nothing. Characters, not bytes: Backspace removes a
 * whole character. Enter or Ctrl-D ends the value, Ctrl-C cancels, and other control keys (arrows,
 * function keys) are ignored rather than stored.
 */
export function readHidden(prompt: string, maxBytes: number): Promise<Buffer> {
  const stdin = process.stdin;
  process.stderr.write(prompt);
  return new Promise((resolve, reject) => {
    let chars: string[] = [];
    const done = (err?: Error) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off("data", onData);
      process.stderr.write("\n");
      const value = Buffer.from(chars.join(""), "utf8");
      chars = [];
      if (err) {
        value.fill(0);
        reject(err);
      } else if (value.length > maxBytes) {
        value.fill(0);
        reject(new VaultError("value_too_large", `the value is larger than ${maxBytes} bytes`));
      } else resolve(value);
    };
    const onData = (chunk: string) => {
      // An escape sequence (arrow keys and the like) arrives as one chunk starting with ESC.
      if (chunk.startsWith("\u001b")) return;
      for (const char of chunk) {
        if (char === "\u0003") return done(new CommonError("invalid_input", "cancelled"));
        if (char === "\r" || char === "\n" || char === "\u0004") return done();
        if (char === "\u007f" || char === "\b") chars.pop();
        else if (char >= " ") chars.push(char);
      }
    };
    stdin.setEncoding("utf8");
    stdin.setRawMode(true);
    stdin.resume();
    stdin.on("data", onData);
  });
}

import { readFileLimited } from "../common/atomic-file.js";
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
    try {
      return readFileLimited(flags.valueFile, maxBytes);
    } catch (err) {
      if ((err as { code?: string }).code === "invalid_input")
        throw new VaultError("value_too_large", `${flags.valueFile} is larger than ${maxBytes} bytes`);
      throw new CommonError("invalid_input", `cannot read ${flags.valueFile}: ${(err as Error).message}`);
    }
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

/** One line from the terminal in raw mode, echoing nothing; Ctrl-C aborts. */
function readHidden(prompt: string, maxBytes: number): Promise<Buffer> {
  const stdin = process.stdin;
  process.stderr.write(prompt);
  return new Promise((resolve, reject) => {
    let value = Buffer.alloc(0);
    const done = (err?: Error) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off("data", onData);
      process.stderr.write("\n");
      if (err) {
        value.fill(0);
        reject(err);
      } else resolve(value);
    };
    const onData = (chunk: Buffer) => {
      for (const byte of chunk) {
        if (byte === 3) return done(new CommonError("invalid_input", "cancelled"));
        if (byte === 13 || byte === 10) return done();
        if (byte === 127 || byte === 8) value = value.subarray(0, Math.max(0, value.length - 1));
        else value = Buffer.concat([value, Buffer.of(byte)]);
        if (value.length > maxBytes)
          return done(new VaultError("value_too_large", `the value is larger than ${maxBytes} bytes`));
      }
    };
    stdin.setRawMode(true);
    stdin.resume();
    stdin.on("data", onData);
  });
}

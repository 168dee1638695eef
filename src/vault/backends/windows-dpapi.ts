import { VaultError } from "../errors.js";
import type { BlobBackend } from "./blob-backend.js";
import { BlobFiles } from "./blob-files.js";
import { type CommandRunner, stderrReason, systemCommandRunner } from "./command-runner.js";

/**
 * Windows DPAPI (current user) through PowerShell's `ProtectedData`: each sealed blob is protected by the
 * user's DPAPI master key and kept as a file (`<dir>/<id>.blob`). The blob id enters as DPAPI's optional
 * entropy, so a protected file renamed to another id does not unprotect. The script is fixed and passed
 * as `-EncodedCommand`; the data (base64 entropy and blob, one per line) travels only on stdin.
 */

export const POWERSHELL = "powershell.exe";

function script(op: "Protect" | "Unprotect"): string {
  return [
    "$ErrorActionPreference='Stop'",
    "Add-Type -AssemblyName System.Security",
    "$l=[Console]::In.ReadToEnd().Split([char]10)",
    "$e=[Convert]::FromBase64String($l[0].Trim())",
    "$d=[Convert]::FromBase64String($l[1].Trim())",
    "$s=[Security.Cryptography.DataProtectionScope]::CurrentUser",
    `$o=[Security.Cryptography.ProtectedData]::${op}($d,$e,$s)`,
    "[Console]::Out.Write([Convert]::ToBase64String($o))",
  ].join(";");
}

/** PowerShell's -EncodedCommand: base64 of the UTF-16LE script (no quoting rules to get wrong). */
export function encodedCommand(op: "Protect" | "Unprotect"): string {
  return Buffer.from(script(op), "utf16le").toString("base64");
}

export function powershellArgs(op: "Protect" | "Unprotect"): string[] {
  return ["-NoLogo", "-NoProfile", "-NonInteractive", "-EncodedCommand", encodedCommand(op)];
}

export class WindowsDpapiBackend implements BlobBackend {
  readonly kind = "windows-dpapi" as const;
  readonly #files: BlobFiles;
  readonly #runner: CommandRunner;
  readonly #timeoutMs: number;

  constructor(options: { dir: string; timeoutMs: number; maxBlobBytes: number; runner?: CommandRunner }) {
    // DPAPI adds a header and pads to the cipher block; 1 KiB covers it.
    this.#files = new BlobFiles(options.dir, options.maxBlobBytes + 1024);
    this.#runner = options.runner ?? systemCommandRunner;
    this.#timeoutMs = options.timeoutMs;
  }

  async #dpapi(op: "Protect" | "Unprotect", id: string, data: Uint8Array): Promise<Buffer> {
    const entropy = Buffer.from(`palyra-vault:${id}`, "utf8").toString("base64");
    const stdin = Buffer.from(`${entropy}\n${Buffer.from(data).toString("base64")}\n`, "utf8");
    try {
      const result = await this.#runner.run({
        file: POWERSHELL,
        args: powershellArgs(op),
        stdin,
        timeoutMs: this.#timeoutMs,
      });
      if (result.status !== 0)
        throw new VaultError("backend_failed", `DPAPI ${op} failed: ${stderrReason(result)}`);
      const out = Buffer.from(result.stdout.toString("utf8").trim(), "base64");
      result.stdout.fill(0);
      return out;
    } finally {
      stdin.fill(0);
    }
  }

  async put(id: string, blob: Uint8Array): Promise<void> {
    await this.#files.put(id, await this.#dpapi("Protect", id, blob));
  }

  async get(id: string): Promise<Buffer | undefined> {
    const protectedBlob = await this.#files.get(id);
    return protectedBlob === undefined ? undefined : this.#dpapi("Unprotect", id, protectedBlob);
  }

  delete(id: string): Promise<void> {
    return this.#files.delete(id);
  }
}

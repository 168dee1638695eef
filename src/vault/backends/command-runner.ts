import { spawn } from "node:child_process";
import { VaultError } from "../errors.js";

/**
 * Runs the OS tools the Keychain and DPAPI backends drive (`security`, `powershell.exe`). Secrets travel
 * only on stdin, never in argv or the environment; injectable so tests on Linux can record exact argv
 * and stdin.
 */

export interface CommandRequest {
  file: string;
  args: readonly string[];
  stdin?: Buffer;
  timeoutMs: number;
  /** Run without a controlling terminal (new session), so a tool that would prompt on /dev/tty reads stdin. */
  detached?: boolean;
}

export interface CommandResult {
  status: number | null;
  stdout: Buffer;
  stderr: string;
}

export interface CommandRunner {
  run(request: CommandRequest): Promise<CommandResult>;
}

const MAX_OUTPUT_BYTES = 1024 * 1024;

export const systemCommandRunner: CommandRunner = {
  run(request) {
    return new Promise((resolve, reject) => {
      const child = spawn(request.file, [...request.args], {
        stdio: ["pipe", "pipe", "pipe"],
        detached: request.detached ?? false,
        windowsHide: true,
      });
      const stdout: Buffer[] = [];
      const stderr: Buffer[] = [];
      let size = 0;
      const collect = (into: Buffer[]) => (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_OUTPUT_BYTES) child.kill("SIGKILL");
        else into.push(chunk);
      };
      child.stdout.on("data", collect(stdout));
      child.stderr.on("data", collect(stderr));
      const timer = setTimeout(() => child.kill("SIGKILL"), request.timeoutMs);
      child.on("error", (err) => {
        clearTimeout(timer);
        reject(
          new VaultError("backend_unavailable", `cannot run ${request.file}: ${err.message}`, { cause: err }),
        );
      });
      child.on("close", (status, signal) => {
        clearTimeout(timer);
        if (signal !== null && size <= MAX_OUTPUT_BYTES && status === null)
          return reject(
            new VaultError("backend_failed", `${request.file} did not finish within ${request.timeoutMs} ms`),
          );
        resolve({ status, stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr).toString("utf8") });
      });
      child.stdin.on("error", () => {
        // the tool exited without reading its input; its status says why
      });
      child.stdin.end(request.stdin ?? Buffer.alloc(0));
    });
  },
};

/** The last meaningful line a tool printed on stderr, for an error message (tools print no secrets there). */
export function stderrReason(result: CommandResult): string {
  const lines = result.stderr
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter(Boolean);
  return (lines.at(-1) ?? `exit status ${result.status}`).slice(0, 300);
}

import type {
  CommandRequest,
  CommandResult,
  CommandRunner,
} from "../../src/vault/backends/command-runner.js";
import { SECURITY } from "../../src/vault/backends/macos-keychain.js";
import { POWERSHELL } from "../../src/vault/backends/windows-dpapi.js";

/**
 * TEST DOUBLE for macOS `security` and Windows `powershell.exe`, which cannot run on Linux. It records
 * every call (argv, stdin, detached) so tests can assert the exact argv and that secrets travel only on
 * stdin, and it mimics the tools' observable behaviour, including `security`'s quirk of exiting 0 when
 * the two prompted copies of a password differ. The real tools are tested on their own platforms.
 */

export interface RecordedCall {
  file: string;
  args: string[];
  stdin: Buffer;
  detached: boolean;
}

const NOT_FOUND =
  "security: SecKeychainSearchCopyNext: The specified item could not be found in the keychain.\n";

export class RecordedRunner implements CommandRunner {
  readonly calls: RecordedCall[] = [];
  readonly keychain = new Map<string, string>();
  /** Fail the Nth DPAPI Protect from now (1-based), to interrupt a migration. */
  failProtectAt: number | undefined;
  #protects = 0;

  async run(request: CommandRequest): Promise<CommandResult> {
    const call: RecordedCall = {
      file: request.file,
      args: [...request.args],
      stdin: Buffer.from(request.stdin ?? Buffer.alloc(0)),
      detached: request.detached ?? false,
    };
    this.calls.push(call);
    if (request.file === SECURITY) return this.#security(call);
    if (request.file === POWERSHELL) return this.#powershell(call);
    return { status: 127, stdout: Buffer.alloc(0), stderr: `${request.file}: not found` };
  }

  #security(call: RecordedCall): CommandResult {
    const [verb, ...rest] = call.args;
    const opt = (flag: string) => rest[rest.indexOf(flag) + 1];
    const item = `${opt("-s")}/${opt("-a")}`;
    const ok = (stdout = "") => ({ status: 0, stdout: Buffer.from(stdout), stderr: "" });
    if (verb === "find-generic-password") {
      const value = this.keychain.get(item);
      return value === undefined
        ? { status: 44, stdout: Buffer.alloc(0), stderr: NOT_FOUND }
        : ok(`${value}\n`);
    }
    if (verb === "delete-generic-password") {
      if (!this.keychain.delete(item)) return { status: 44, stdout: Buffer.alloc(0), stderr: NOT_FOUND };
      return ok();
    }
    if (verb === "add-generic-password") {
      // A bare trailing -w prompts twice; without a terminal the prompt reads stdin.
      if (rest.at(-1) !== "-w") return { status: 2, stdout: Buffer.alloc(0), stderr: "usage" };
      if (!call.detached)
        return { status: 1, stdout: Buffer.alloc(0), stderr: "would prompt on the terminal" };
      if (!rest.includes("-U") && this.keychain.has(item))
        return {
          status: 45,
          stdout: Buffer.alloc(0),
          stderr:
            "security: SecKeychainItemCreateFromContent (<default>): The specified item already exists in the keychain.\n",
        };
      const [first, second] = call.stdin.toString("utf8").split("\n");
      const prompts = "password data for new item: retype password for new item: ";
      if (first !== second) {
        this.keychain.set(item, "");
        return { status: 0, stdout: Buffer.alloc(0), stderr: `${prompts}passwords don't match\n` };
      }
      this.keychain.set(item, first ?? "");
      return { status: 0, stdout: Buffer.alloc(0), stderr: prompts };
    }
    return { status: 2, stdout: Buffer.alloc(0), stderr: "unknown command" };
  }

  #powershell(call: RecordedCall): CommandResult {
    const script = Buffer.from(call.args.at(-1) ?? "", "base64").toString("utf16le");
    const [entropyB64, dataB64] = call.stdin.toString("utf8").split("\n");
    const entropy = Buffer.from(entropyB64 ?? "", "base64");
    const data = Buffer.from(dataB64 ?? "", "base64");
    if (!script.includes("DataProtectionScope]::CurrentUser"))
      return { status: 1, stdout: Buffer.alloc(0), stderr: "not current-user scope" };
    if (script.includes("ProtectedData]::Protect(")) {
      this.#protects++;
      if (this.failProtectAt !== undefined && this.#protects === this.failProtectAt)
        return { status: 1, stdout: Buffer.alloc(0), stderr: "Exception calling Protect: injected failure" };
      const sealed = Buffer.concat([
        Buffer.from("DPAPI"),
        Buffer.of(entropy.length),
        entropy,
        data.map((b) => b ^ 0x5a),
      ]);
      return { status: 0, stdout: Buffer.from(sealed.toString("base64")), stderr: "" };
    }
    if (script.includes("ProtectedData]::Unprotect(")) {
      const n = data[5] ?? 0;
      if (data.subarray(0, 5).toString() !== "DPAPI" || !data.subarray(6, 6 + n).equals(entropy))
        return {
          status: 1,
          stdout: Buffer.alloc(0),
          stderr: "Exception calling Unprotect: The data is invalid.",
        };
      const plain = Buffer.from(data.subarray(6 + n).map((b) => b ^ 0x5a));
      return { status: 0, stdout: Buffer.from(plain.toString("base64")), stderr: "" };
    }
    return { status: 1, stdout: Buffer.alloc(0), stderr: "unexpected script" };
  }

  /** Every argv element of every call, joined: a secret must never show up here. */
  argvText(): string {
    return this.calls.map((c) => [c.file, ...c.args].join(" ")).join("\n");
  }
}

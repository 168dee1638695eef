import { timingSafeEqual } from "node:crypto";
import type { Random } from "../../common/random.js";
import { ENVELOPE_OVERHEAD, type EnvelopeFormat, openEnvelope, sealEnvelope } from "../../crypto/envelope.js";
import { VaultError } from "../errors.js";
import type { BlobBackend } from "./blob-backend.js";
import { BlobFiles } from "./blob-files.js";
import { type CommandRunner, stderrReason, systemCommandRunner } from "./command-runner.js";

/**
 * macOS Keychain through the `security` CLI. The Keychain holds one 32-byte wrapping key per vault (item
 * service `palyra.vault`, account `wrap:<vault id>`); each sealed blob is wrapped by it once more and
 * kept as a file (`<dir>/<id>.blob`). Why not one Keychain item per blob: `security` takes a password
 * only in argv (visible in `ps`) or from its interactive prompt, and that prompt is a line reader whose
 * length limit is not documented; a 64 KiB blob could be cut short. A 44-character key fits any prompt,
 * and it is read back and compared after every write, because `security` exits 0 even when the two
 * prompted copies differ.
 *
 * The key is written through the prompt: a bare `-w` as the last argument, the key twice on stdin, the
 * tool detached from any terminal so the prompt reads the pipe and not /dev/tty. It is never replaced
 * (no `-U`): two processes creating it at once end up sharing the first one.
 */

export const SECURITY = "/usr/bin/security";
export const KEYCHAIN_SERVICE = "palyra.vault";
const WRAP_FORMAT: EnvelopeFormat = { magic: "PVM1", version: 1 };
const KEY_BYTES = 32;

export class MacosKeychainBackend implements BlobBackend {
  readonly kind = "macos-keychain" as const;
  readonly #files: BlobFiles;
  readonly #account: string;
  readonly #runner: CommandRunner;
  readonly #random: Random;
  readonly #timeoutMs: number;
  #key: Buffer | undefined;

  constructor(options: {
    dir: string;
    namespace: string;
    random: Random;
    timeoutMs: number;
    maxBlobBytes: number;
    runner?: CommandRunner;
  }) {
    this.#files = new BlobFiles(options.dir, options.maxBlobBytes + ENVELOPE_OVERHEAD);
    this.#account = `wrap:${options.namespace}`;
    this.#runner = options.runner ?? systemCommandRunner;
    this.#random = options.random;
    this.#timeoutMs = options.timeoutMs;
  }

  #aad(id: string): Buffer {
    return Buffer.from(`palyra-keychain-blob-v1\0${id}`, "utf8");
  }

  async #findKey(): Promise<Buffer | undefined> {
    const result = await this.#runner.run({
      file: SECURITY,
      args: ["find-generic-password", "-s", KEYCHAIN_SERVICE, "-a", this.#account, "-w"],
      timeoutMs: this.#timeoutMs,
    });
    if (result.status === 44 || /could not be found/i.test(result.stderr)) return undefined;
    if (result.status !== 0)
      throw new VaultError("backend_failed", `the Keychain refused a read: ${stderrReason(result)}`);
    const key = Buffer.from(result.stdout.toString("utf8").trim(), "base64");
    result.stdout.fill(0);
    return key;
  }

  async #createKey(): Promise<Buffer> {
    const key = this.#random.bytes(KEY_BYTES);
    const text = key.toString("base64");
    const stdin = Buffer.from(`${text}\n${text}\n`, "utf8");
    try {
      const result = await this.#runner.run({
        file: SECURITY,
        args: [
          "add-generic-password",
          "-s",
          KEYCHAIN_SERVICE,
          "-a",
          this.#account,
          "-l",
          "Palyra vault",
          "-w",
        ],
        stdin,
        timeoutMs: this.#timeoutMs,
        detached: true,
      });
      // No -U: a key another process created meanwhile is never overwritten (its blobs would be lost);
      // it is read and used instead.
      if (result.status === 45 || /already exists/i.test(result.stderr)) {
        key.fill(0);
        const theirs = await this.#findKey();
        if (theirs?.length === KEY_BYTES) return theirs;
      }
      if (result.status !== 0)
        throw new VaultError("backend_failed", `the Keychain refused a write: ${stderrReason(result)}`);
    } finally {
      stdin.fill(0);
    }
    const back = await this.#findKey();
    if (back === undefined || back.length !== KEY_BYTES || !timingSafeEqual(back, key))
      throw new VaultError(
        "backend_failed",
        "the Keychain did not keep the vault's wrapping key (security accepted the write but stored something else)",
      );
    back.fill(0);
    return key;
  }

  async #wrappingKey(create: boolean): Promise<Buffer | undefined> {
    if (this.#key) return this.#key;
    const found = await this.#findKey();
    if (found !== undefined && found.length !== KEY_BYTES)
      throw new VaultError(
        "backend_failed",
        "the Keychain item holding the vault's wrapping key is malformed",
      );
    this.#key = found ?? (create ? await this.#createKey() : undefined);
    return this.#key;
  }

  async put(id: string, blob: Uint8Array): Promise<void> {
    const key = (await this.#wrappingKey(true)) as Buffer;
    await this.#files.put(id, sealEnvelope(WRAP_FORMAT, key, blob, this.#aad(id), this.#random));
  }

  async get(id: string): Promise<Buffer | undefined> {
    const wrapped = await this.#files.get(id);
    if (wrapped === undefined) return undefined;
    const key = await this.#wrappingKey(false);
    if (key === undefined)
      throw new VaultError(
        "backend_failed",
        `the Keychain has no wrapping key for this vault (service ${KEYCHAIN_SERVICE}, account ${this.#account})`,
      );
    try {
      return openEnvelope(WRAP_FORMAT, key, wrapped, this.#aad(id));
    } catch (err) {
      throw new VaultError("blob_corrupt", "a Keychain-wrapped blob failed authentication", { cause: err });
    }
  }

  delete(id: string): Promise<void> {
    return this.#files.delete(id);
  }

  /** Removes the wrapping key from the Keychain (after every blob has moved elsewhere). */
  async forget(): Promise<void> {
    this.#key?.fill(0);
    this.#key = undefined;
    const result = await this.#runner.run({
      file: SECURITY,
      args: ["delete-generic-password", "-s", KEYCHAIN_SERVICE, "-a", this.#account],
      timeoutMs: this.#timeoutMs,
    });
    if (result.status !== 0 && result.status !== 44 && !/could not be found/i.test(result.stderr))
      throw new VaultError("backend_failed", `the Keychain refused a delete: ${stderrReason(result)}`);
  }
}

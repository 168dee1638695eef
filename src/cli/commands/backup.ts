import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { Command } from "commander";
import { writeFileAtomic } from "../../common/atomic-file.js";
import { CommonError } from "../../common/errors.js";
import { systemRandom } from "../../common/random.js";
import { createBackup, restoreBackup } from "../../daemon/backup.js";
import { configFromEnv, readConfigFile, resolveConfig } from "../../daemon/config.js";
import { resolveStateRoot, statePaths } from "../../daemon/state-root.js";
import { printResult } from "../output.js";
import { readHidden } from "../secret-input.js";

const PASSPHRASE_ENV = "PALYRA_BACKUP_PASSPHRASE";

/** The backup passphrase: from the environment, or typed (twice for a new backup) on a terminal. */
async function passphrase(confirm: boolean): Promise<string> {
  const fromEnv = process.env[PASSPHRASE_ENV];
  if (fromEnv) return fromEnv;
  if (!process.stdin.isTTY)
    throw new CommonError(
      "invalid_input",
      `set ${PASSPHRASE_ENV}, or run this on a terminal to type the passphrase`,
    );
  const first = (await readHidden("backup passphrase: ", 1024)).toString("utf8");
  if (first.length < 8)
    throw new CommonError("invalid_input", "a backup passphrase has at least 8 characters");
  if (confirm && (await readHidden("again: ", 1024)).toString("utf8") !== first)
    throw new CommonError("invalid_input", "the passphrases differ");
  return first;
}

export function registerBackupCommands(program: Command): void {
  program
    .command("backup <file>")
    .description(
      `write an encrypted backup of the gateway's state (online: the daemon may run); passphrase from ${PASSPHRASE_ENV} or typed`,
    )
    .option("--state-root <dir>", "state directory to back up")
    .option("--json", "JSON output")
    .action(async (file: string, flags: { stateRoot?: string; json?: boolean }) => {
      const root = resolveStateRoot(flags.stateRoot);
      // A gateway of a cluster keeps its state in the shared database: that is backed up with the
      // database's own tools, not from one gateway's state root.
      const paths = statePaths(root);
      if (resolveConfig(readConfigFile(paths.config), configFromEnv(process.env)).database.url)
        throw new CommonError(
          "precondition",
          "this gateway keeps its state in a shared PostgreSQL database (database.url): back that up with " +
            "pg_dump (it holds the sealed CA key, devices, requests, audit and the cluster's vault); keep " +
            "PALYRA_CA_PASSPHRASE apart from the dump",
        );
      const { bytes, summary } = await createBackup(root, await passphrase(true), systemRandom);
      const path = resolve(file);
      writeFileAtomic(path, bytes);
      for (const warning of summary.warnings) process.stderr.write(`warning: ${warning}\n`);
      printResult(
        {
          backup: path,
          state_root: root,
          files: summary.files,
          bytes: summary.bytes,
          warnings: summary.warnings,
        },
        { json: flags.json },
      );
    });
  program
    .command("restore <file>")
    .description("restore a backup into a new or empty state root (then start the daemon on it)")
    .requiredOption("--state-root <dir>", "the new state root")
    .option("--json", "JSON output")
    .action(async (file: string, flags: { stateRoot: string; json?: boolean }) => {
      const root = resolveStateRoot(flags.stateRoot);
      let archive: Buffer;
      try {
        archive = readFileSync(file);
      } catch (err) {
        throw new CommonError("invalid_input", `cannot read ${file}: ${(err as Error).message}`);
      }
      const { files } = await restoreBackup(archive, await passphrase(false), root);
      printResult({ restored: root, files }, { json: flags.json });
    });
}

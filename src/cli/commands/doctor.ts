import { existsSync, lstatSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import type { Command } from "commander";
import { modeOf } from "../../common/atomic-file.js";
import { CommonError } from "../../common/errors.js";
import { describeCaCertificate } from "../../daemon/ca-bootstrap.js";
import { readDaemonInfo } from "../../daemon/daemon-info.js";
import { resolveStateRoot, statePaths } from "../../daemon/state-root.js";
import { describeSecretStore } from "../../identity/key-protection.js";
import { VaultCatalog } from "../../vault/catalog.js";
import { protectionOf } from "../../vault/vault-key.js";
import { adminHttp } from "../admin-http-client.js";

export type CheckStatus = "ok" | "warn" | "fail";
export interface Check {
  name: string;
  status: CheckStatus;
  detail: string;
}

/** Inspects a state root without unlocking anything: permissions, key protection, database, CA, daemon. */
export async function runDoctor(stateRoot: string): Promise<Check[]> {
  const paths = statePaths(stateRoot);
  const checks: Check[] = [];
  const add = (name: string, status: CheckStatus, detail: string) => checks.push({ name, status, detail });

  if (!existsSync(paths.root)) {
    add("state root", "warn", `${paths.root} does not exist yet (palyra daemon creates it)`);
    return checks;
  }
  const rootMode = modeOf(paths.root);
  add(
    "state root",
    rootMode === 0o700 ? "ok" : "fail",
    `${paths.root} mode ${fmt(rootMode)}${rootMode === 0o700 ? "" : " (want 0700)"}`,
  );

  const loose = looseSecretFiles(paths);
  add(
    "file permissions",
    loose.length === 0 ? "ok" : "fail",
    loose.length === 0
      ? "secret files are 0600, directories 0700"
      : `too open: ${loose.slice(0, 5).join(", ")}`,
  );

  const store = await describeSecretStore(paths.secrets);
  if (!store) add("secret store", "warn", `no secret store at ${paths.secrets} yet`);
  else
    add(
      "secret store",
      store.weak ? "warn" : "ok",
      store.mode === "key-file"
        ? `key-file mode (weak: the key ${store.keyFile} sits on the same disk as the secrets; set PALYRA_STORE_PASSPHRASE or run a Secret Service before first start)`
        : store.mode === "keyring"
          ? `keyring mode (OS keyring account ${store.keyringAccount})`
          : "passphrase mode (PALYRA_STORE_PASSPHRASE, scrypt)",
    );

  try {
    const vault = VaultCatalog.peek(join(paths.vault, "vault.db"));
    if (!vault) add("vault", "warn", `no vault at ${paths.vault} yet (created on first use)`);
    else {
      const protection = protectionOf(vault.key_homes[0]!);
      add(
        "vault",
        protection.weak ? "warn" : "ok",
        `${vault.backend} backend, ${protection.protection}${protection.weak ? ` (weak: ${protection.detail}; set PALYRA_VAULT_PASSPHRASE and run palyra secrets migrate --to encrypted-file, or migrate to an OS keyring)` : ""}`,
      );
    }
  } catch (err) {
    add("vault", "fail", `${paths.vault}: ${(err as Error).message}`);
  }

  if (existsSync(paths.database)) {
    try {
      const db = new BetterSqlite3(paths.database, { readonly: true, fileMustExist: true });
      const version = db.pragma("user_version", { simple: true });
      const mode = db.pragma("journal_mode", { simple: true });
      db.close();
      add("database", "ok", `${paths.database} schema v${version}, journal ${mode}`);
    } catch (err) {
      add("database", "fail", `${paths.database}: ${(err as Error).message}`);
    }
  } else add("database", "warn", `no database at ${paths.database} yet`);

  if (existsSync(paths.caCertificate)) {
    const ca = describeCaCertificate(readFileSync(paths.caCertificate, "utf8"));
    add("certificate authority", "ok", `${ca.fingerprint_sha256.slice(0, 16)}… valid until ${ca.not_after}`);
  } else add("certificate authority", "warn", "no CA yet (created on first daemon start)");

  const daemon = readDaemonInfo(paths.daemonInfo);
  if (!daemon) add("daemon", "warn", "not running");
  else {
    const caPem =
      daemon.admin_url.startsWith("https:") && existsSync(paths.caCertificate)
        ? readFileSync(paths.caCertificate, "utf8")
        : undefined;
    const healthy = await adminHttp(new URL("/healthz", daemon.admin_url), {
      method: "GET",
      headers: {},
      timeoutMs: 2000,
      ...(caPem ? { caPem } : {}),
    })
      .then((r) => r.status === 200)
      .catch(() => false);
    add(
      "daemon",
      healthy ? "ok" : "fail",
      `pid ${daemon.pid} at ${daemon.admin_url}${healthy ? "" : " is not answering /healthz"}`,
    );
  }
  return checks;
}

function looseSecretFiles(paths: ReturnType<typeof statePaths>): string[] {
  const loose: string[] = [];
  const check = (path: string, want: number) => {
    const mode = modeOf(path);
    if (mode !== undefined && (mode & 0o077) !== 0 && mode !== want) loose.push(`${path} (${fmt(mode)})`);
  };
  check(paths.secrets, 0o700);
  check(`${paths.secrets}.kek`, 0o600);
  check(paths.database, 0o600);
  check(paths.daemonInfo, 0o600);
  check(paths.vault, 0o700);
  check(join(paths.vault, "vault.db"), 0o600);
  check(join(paths.vault, "vault.key"), 0o600);
  check(join(paths.vault, "vault-key.sealed"), 0o600);
  if (existsSync(paths.secrets) && lstatSync(paths.secrets).isDirectory())
    for (const name of readdirSync(paths.secrets)) check(join(paths.secrets, name), 0o600);
  return loose;
}

function fmt(mode: number | undefined): string {
  return mode === undefined ? "missing" : `0${mode.toString(8)}`;
}

export function registerDoctorCommand(program: Command): void {
  program
    .command("doctor")
    .description("check the state root: permissions, secret-store key mode, database, CA, daemon")
    .option("--state-root <dir>", "state directory")
    .option("--json", "JSON output")
    .action(async (flags: { stateRoot?: string; json?: boolean }) => {
      const checks = await runDoctor(resolveStateRoot(flags.stateRoot));
      const failed = checks.filter((c) => c.status === "fail");
      if (flags.json)
        process.stdout.write(`${JSON.stringify({ ok: failed.length === 0, checks }, null, 2)}\n`);
      else {
        const width = Math.max(...checks.map((c) => c.name.length));
        for (const c of checks)
          process.stdout.write(`${c.status.padEnd(4)}  ${c.name.padEnd(width)}  ${c.detail}\n`);
      }
      if (failed.length > 0)
        throw Object.assign(
          new CommonError(
            "precondition",
            `${failed.length} check(s) failed: ${failed.map((c) => c.name).join(", ")}`,
          ),
          {
            alreadyPrinted: flags.json,
          },
        );
    });
}

import { createPrivateKey, createPublicKey, X509Certificate } from "node:crypto";
import { existsSync, lstatSync, readdirSync } from "node:fs";
import { join } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import type { Command } from "commander";
import { modeOf, readFileLimited } from "../../common/atomic-file.js";
import { CommonError } from "../../common/errors.js";
import { limits } from "../../common/limits.js";
import { secretDirectoryProblem, secretFileProblem } from "../../common/secret-file.js";
import { readAdminToken } from "../../daemon/admin-token.js";
import { describeCaCertificate } from "../../daemon/ca-bootstrap.js";
import { readDaemonInfo } from "../../daemon/daemon-info.js";
import { resolveStateRoot, statePaths } from "../../daemon/state-root.js";
import {
  type FilesystemSecretStore,
  inspectSecretStore,
  type SecretStoreInspection,
} from "../../identity/filesystem-secret-store.js";
import { SECRET_FILE_SUFFIX } from "../../identity/key-protection.js";
import { describeFromMetadata, readMetadata } from "../../identity/secret-store-metadata.js";
import { BLOB_FILE_DIRS } from "../../vault/backends/backend-set.js";
import { inspectVault } from "../../vault/open-vault.js";
import { protectionOf } from "../../vault/vault-key.js";
import { adminHttp } from "../admin-http-client.js";

export type CheckStatus = "ok" | "warn" | "fail";
export interface Check {
  name: string;
  status: CheckStatus;
  detail: string;
}

/** Where the gateway's CA lives in its secret store (written by daemon/ca-bootstrap.ts). */
const CA_KEY_KEY = "ca/private-key";
const CA_CERT_KEY = "ca/certificate";
const META_CA_FINGERPRINT = "ca.fingerprint";
/** Problems listed in one check's detail before "and N more". */
const MAX_LISTED = 8;
/** ca.pem is one certificate; anything far larger is not one. */
const MAX_CA_PEM_BYTES = 4 * limits.maxCertificateBytes;

export interface DoctorOptions {
  /** Where PALYRA_STORE_PASSPHRASE and PALYRA_VAULT_PASSPHRASE are read (default process.env). */
  env?: Readonly<Record<string, string | undefined>>;
}

/**
 * Inspects a state root: permissions of every secret-bearing file, each key unlocked and checked (the
 * secret store's key-encryption key against its key check and its secrets, the vault key against the
 * vault, the CA key against ca.pem), the admin token, the database and the daemon. Nothing is created,
 * tightened or removed. Every check runs on its own: whatever one throws becomes that check's failure,
 * with the file named, and the others still run.
 */
export async function runDoctor(stateRoot: string, options: DoctorOptions = {}): Promise<Check[]> {
  const env = options.env ?? process.env;
  const paths = statePaths(stateRoot);
  const checks: Check[] = [];
  const add = (name: string, status: CheckStatus, detail: string) => checks.push({ name, status, detail });
  /** Runs one check; a throw becomes its failure, naming `file` (the file it was reading). */
  const guarded = async (name: string, file: string, run: () => Promise<void> | void) => {
    try {
      await run();
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      add(name, "fail", message.includes(file) ? message : `${file}: ${message}`);
    }
  };

  if (!existsSync(paths.root)) {
    add("state root", "warn", `${paths.root} does not exist yet (palyra daemon creates it)`);
    return checks;
  }
  await guarded("state root", paths.root, () => {
    const problem = secretDirectoryProblem(paths.root);
    add("state root", problem ? "fail" : "ok", problem ?? `${paths.root} mode 0700`);
  });

  await guarded("file permissions", paths.root, () => {
    const problems = permissionProblems(paths);
    add(
      "file permissions",
      problems.length === 0 ? "ok" : "fail",
      problems.length === 0
        ? "secret files are 0600, their directories 0700"
        : `too open: ${listed(problems)}`,
    );
  });

  let gatewayStore: FilesystemSecretStore | undefined;
  let gatewayStoreState: "absent" | "unchecked" | "broken" | "open" = "absent";
  await guarded("secret store", paths.secrets, async () => {
    const inspection = await inspectSecretStore(paths.secrets, { env });
    gatewayStore = inspection?.store;
    gatewayStoreState = !inspection
      ? "absent"
      : inspection.unchecked !== undefined
        ? "unchecked"
        : inspection.store
          ? "open"
          : "broken";
    reportStore("secret store", paths.secrets, inspection, add);
  });
  const deviceSecrets = join(paths.root, "device", "secrets");
  if (existsSync(deviceSecrets))
    await guarded("device secret store", deviceSecrets, async () => {
      const inspection = await inspectSecretStore(deviceSecrets, { env });
      inspection?.store?.close();
      reportStore("device secret store", deviceSecrets, inspection, add);
    });

  await guarded("vault", join(paths.vault, "vault.db"), async () => {
    const inspection = await inspectVault(paths.vault, { env });
    if (!inspection) {
      add("vault", "warn", `no vault at ${paths.vault} yet (created on first use)`);
      return;
    }
    const { settings } = inspection;
    const protection = protectionOf(settings.key_homes[0]!);
    const what = `${settings.backend} backend, ${protection.protection}`;
    const weak = protection.weak
      ? ` (weak: ${protection.detail}; set PALYRA_VAULT_PASSPHRASE and run palyra secrets migrate --to encrypted-file, or migrate to an OS keyring)`
      : "";
    if (inspection.problems.length > 0)
      add("vault", "fail", `${what}; ${listed(inspection.problems.map((p) => p.message))}`);
    else if (inspection.unchecked !== undefined)
      add("vault", "warn", `${what}; the vault key was not checked: ${inspection.unchecked}${weak}`);
    else
      add(
        "vault",
        protection.weak ? "warn" : "ok",
        `${what}; vault key opens the vault, ${inspection.opened} secret(s) open` +
          (inspection.notOpened > 0 ? ` (${inspection.notOpened} kept in an OS store not opened)` : "") +
          weak,
      );
  });

  let recordedCa: string | undefined;
  await guarded("database", paths.database, () => {
    if (!existsSync(paths.database)) {
      add("database", "warn", `no database at ${paths.database} yet`);
      return;
    }
    const db = new BetterSqlite3(paths.database, { readonly: true, fileMustExist: true });
    try {
      const version = db.pragma("user_version", { simple: true });
      const mode = db.pragma("journal_mode", { simple: true });
      try {
        recordedCa = (
          db.prepare("SELECT value FROM meta WHERE key = ?").get(META_CA_FINGERPRINT) as
            | { value: string }
            | undefined
        )?.value;
      } catch {
        // an empty or older database without the meta table records no CA
      }
      add("database", "ok", `${paths.database} schema v${version}, journal ${mode}`);
    } finally {
      db.close();
    }
  });

  await guarded("certificate authority", paths.caCertificate, async () => {
    add(
      "certificate authority",
      ...(await checkCa(paths.caCertificate, gatewayStore, gatewayStoreState, recordedCa, paths.secrets)),
    );
  });
  (gatewayStore as FilesystemSecretStore | undefined)?.close();

  await guarded("admin token", paths.adminToken, () => {
    const token = readAdminToken(paths.adminToken);
    if (token) add("admin token", "ok", `${paths.adminToken} (0600, well-formed)`);
    else if (existsSync(paths.database))
      add(
        "admin token",
        "fail",
        `${paths.adminToken} is missing: the CLI cannot talk to the daemon (the daemon makes a new one at its next start)`,
      );
    else
      add("admin token", "warn", `no admin token at ${paths.adminToken} yet (created on first daemon start)`);
  });

  await guarded("daemon", paths.daemonInfo, async () => {
    const daemon = readDaemonInfo(paths.daemonInfo);
    if (!daemon) {
      add("daemon", "warn", "not running");
      return;
    }
    const caPem =
      daemon.admin_url.startsWith("https:") && existsSync(paths.caCertificate)
        ? readFileLimited(paths.caCertificate, MAX_CA_PEM_BYTES).toString("utf8")
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
  });
  return checks;
}

function reportStore(
  name: string,
  dir: string,
  inspection: SecretStoreInspection | undefined,
  add: (name: string, status: CheckStatus, detail: string) => void,
): void {
  if (!inspection) {
    add(name, "warn", `no secret store at ${dir} yet`);
    return;
  }
  const d = inspection.description;
  const mode =
    d.mode === "key-file"
      ? `key-file mode (weak: the key ${d.keyFile} sits on the same disk as the secrets; set PALYRA_STORE_PASSPHRASE or run a Secret Service before first start)`
      : d.mode === "keyring"
        ? `keyring mode (OS keyring account ${d.keyringAccount})`
        : "passphrase mode (PALYRA_STORE_PASSPHRASE, scrypt)";
  if (inspection.problems.length > 0)
    add(name, "fail", `${mode}; ${listed(inspection.problems.map((p) => p.message))}`);
  else if (inspection.unchecked !== undefined)
    add(name, "warn", `${mode}; the key was not checked: ${inspection.unchecked}`);
  else add(name, d.weak ? "warn" : "ok", `${mode}; key check passes, ${inspection.opened} secret(s) open`);
}

/** The CA: ca.pem parses, the CA key in the secret store opens and matches it, the database agrees. */
async function checkCa(
  caPemPath: string,
  store: FilesystemSecretStore | undefined,
  storeState: "absent" | "unchecked" | "broken" | "open",
  recorded: string | undefined,
  secretsDir: string,
): Promise<[CheckStatus, string]> {
  let pemCert: X509Certificate | undefined;
  if (existsSync(caPemPath)) {
    try {
      pemCert = new X509Certificate(readFileLimited(caPemPath, MAX_CA_PEM_BYTES));
    } catch (err) {
      return ["fail", `${caPemPath} is not a valid certificate (${(err as Error).message})`];
    }
  }
  const pemFingerprint = pemCert ? describeCaCertificate(pemCert.toString()).fingerprint_sha256 : undefined;
  if (!store) {
    if (pemFingerprint && recorded && pemFingerprint !== recorded)
      return [
        "fail",
        `${caPemPath} holds CA ${pemFingerprint.slice(0, 16)}…, but the database belongs to CA ${recorded.slice(0, 16)}…`,
      ];
    if (storeState === "absent")
      return pemCert || recorded
        ? [
            "fail",
            `a CA is recorded (${pemCert ? caPemPath : "database"}) but there is no secret store at ${secretsDir}`,
          ]
        : ["warn", "no CA yet (created on first daemon start)"];
    const why =
      storeState === "unchecked"
        ? "the secret store is locked here (see secret store)"
        : "the secret store does not open (see secret store)";
    return [
      storeState === "unchecked" ? "warn" : "fail",
      `the CA key in ${secretsDir} was not checked: ${why}`,
    ];
  }

  const keyFile = store.pathOf(CA_KEY_KEY);
  const certFile = store.pathOf(CA_CERT_KEY);
  const keyPem = await store.read(CA_KEY_KEY).catch((err: Error) => err);
  if (keyPem instanceof Error) return ["fail", `the CA key cannot be read: ${keyPem.message}`];
  const certBytes = await store.read(CA_CERT_KEY).catch((err: Error) => err);
  if (certBytes instanceof Error) return ["fail", `the CA certificate cannot be read: ${certBytes.message}`];
  if (keyPem === undefined) {
    if (!pemCert && !recorded && certBytes === undefined)
      return ["warn", "no CA yet (created on first daemon start)"];
    return [
      "fail",
      `the CA key is missing: ${keyFile} does not exist, but ${recorded ? "the database records a CA" : pemCert ? `${caPemPath} holds one` : `${certFile} holds its certificate`}; the daemon will refuse to start (restore the secret store)`,
    ];
  }
  let publicDer: Buffer;
  try {
    publicDer = createPublicKey(createPrivateKey(keyPem.toString("utf8"))).export({
      type: "spki",
      format: "der",
    });
  } catch {
    return ["fail", `${keyFile} does not hold a readable CA private key`];
  } finally {
    keyPem.fill(0);
  }
  let storedCert: X509Certificate | undefined;
  if (certBytes !== undefined)
    try {
      storedCert = new X509Certificate(certBytes);
    } catch {
      return ["fail", `${certFile} does not hold a valid CA certificate`];
    }
  const reference = pemCert ?? storedCert;
  if (!reference)
    return ["fail", `the CA certificate is missing: neither ${caPemPath} nor ${certFile} exists`];
  const referenceFile = pemCert ? caPemPath : certFile;
  if (!publicDer.equals(reference.publicKey.export({ type: "spki", format: "der" }) as Buffer))
    return [
      "fail",
      `the CA key in ${keyFile} does not match the certificate in ${referenceFile} (a ca.pem or key from another CA?)`,
    ];
  const info = describeCaCertificate(reference.toString());
  if (storedCert && pemCert && !storedCert.raw.equals(pemCert.raw))
    return [
      "warn",
      `key matches ${caPemPath}, but the CA certificate in ${certFile} differs (the daemon rewrites ca.pem from it at start)`,
    ];
  if (recorded && info.fingerprint_sha256 !== recorded)
    return [
      "fail",
      `${referenceFile} holds CA ${info.fingerprint_sha256.slice(0, 16)}…, but the database belongs to CA ${recorded.slice(0, 16)}…`,
    ];
  if (!pemCert)
    return [
      "warn",
      `key matches the stored certificate, but ${caPemPath} is missing (rewritten at the next daemon start)`,
    ];
  return [
    "ok",
    `${info.fingerprint_sha256.slice(0, 16)}… valid until ${info.not_after}; key matches ${caPemPath}`,
  ];
}

/**
 * Every secret-bearing file under the one rule (common/secret-file.ts), every directory of secret files
 * 0700, and the other private files (databases, daemon.json, store.json) not readable by others.
 */
function permissionProblems(paths: ReturnType<typeof statePaths>): string[] {
  const problems: string[] = [];
  const secretFile = (path: string) => {
    const problem = secretFileProblem(path);
    if (problem) problems.push(problem);
  };
  const secretDir = (path: string) => {
    const problem = secretDirectoryProblem(path);
    if (problem) problems.push(problem);
  };
  const privateFile = (path: string) => {
    const mode = modeOf(path);
    if (mode !== undefined && (mode & 0o077) !== 0)
      problems.push(`${path} (${fmt(mode)}) is open to other users; fix with: chmod 600 ${path}`);
  };
  const filesIn = (dir: string, suffix: string): string[] => {
    try {
      if (!lstatSync(dir).isDirectory()) return [];
      return readdirSync(dir)
        .filter((name) => name.endsWith(suffix) && !name.startsWith("."))
        .map((name) => join(dir, name));
    } catch {
      return [];
    }
  };

  for (const store of [paths.secrets, join(paths.root, "device", "secrets")]) {
    if (!existsSync(store)) continue;
    secretDir(store);
    privateFile(join(store, "store.json"));
    for (const file of filesIn(store, SECRET_FILE_SUFFIX)) secretFile(file);
    try {
      const metadata = readMetadata(store);
      const keyFile = metadata && describeFromMetadata(store, metadata).keyFile;
      if (keyFile) secretFile(keyFile);
    } catch {
      // a broken store.json is reported by the secret store check
      secretFile(`${store}.kek`);
    }
  }
  secretFile(paths.adminToken);
  privateFile(paths.database);
  privateFile(`${paths.database}-wal`);
  privateFile(paths.daemonInfo);
  if (existsSync(paths.vault)) {
    secretDir(paths.vault);
    privateFile(join(paths.vault, "vault.db"));
    secretFile(join(paths.vault, "vault.key"));
    secretFile(join(paths.vault, "vault-key.sealed"));
    for (const sub of Object.values(BLOB_FILE_DIRS)) {
      const dir = join(paths.vault, sub);
      if (!existsSync(dir)) continue;
      secretDir(dir);
      for (const file of filesIn(dir, ".blob")) secretFile(file);
    }
  }
  return problems;
}

function listed(items: string[]): string {
  const shown = items.slice(0, MAX_LISTED).join("; ");
  return items.length > MAX_LISTED ? `${shown}; and ${items.length - MAX_LISTED} more` : shown;
}

function fmt(mode: number | undefined): string {
  return mode === undefined ? "missing" : `0${mode.toString(8)}`;
}

export function registerDoctorCommand(program: Command): void {
  program
    .command("doctor")
    .description(
      "check the state root: file permissions, every key unlocked and checked, database, CA, admin token, daemon",
    )
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

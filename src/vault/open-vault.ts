import { join } from "node:path";
import { ensurePrivateDirectory } from "../common/atomic-file.js";
import { type Clock, systemClock } from "../common/clock.js";
import { limits } from "../common/limits.js";
import type { KeyringFactory } from "../common/os-keyring.js";
import { type Random, systemRandom } from "../common/random.js";
import { Secret } from "../common/redaction.js";
import { removeStaleTempFiles } from "../common/stale-temp-files.js";
import type { ScryptParams } from "../crypto/passphrase-key.js";
import { BackendSet, BLOB_FILE_DIRS, usableOn } from "./backends/backend-set.js";
import { type BackendKind, nativeBackendKind, parseBackendKind } from "./backends/blob-backend.js";
import type { CommandRunner } from "./backends/command-runner.js";
import { probeBackend } from "./backends/probe.js";
import { VaultCatalog } from "./catalog.js";
import { VaultError } from "./errors.js";
import { openValue, VAULT_KEY_BYTES, vaultKeyId } from "./sealed-blob.js";
import type { KeyHome, VaultSettings } from "./settings.js";
import { Vault } from "./vault.js";
import {
  fileKeyHome,
  homeLabel,
  type KeyHomeContext,
  loadVaultKey,
  PASSPHRASE_ENV,
  removeVaultKey,
  storeVaultKey,
  vaultKeyBlobId,
} from "./vault-key.js";

/**
 * Opening a vault directory. The first open chooses the backend: PALYRA_VAULT_BACKEND if set, else the
 * platform's OS store if a real write/read/delete probe passes, else the encrypted-file backend with a
 * warning. The choice is recorded in vault.db and later opens follow it; changing it is `migrate`.
 */

export const BACKEND_ENV = "PALYRA_VAULT_BACKEND";

export interface VaultOptions {
  clock?: Clock;
  random?: Random;
  /** Where PALYRA_VAULT_BACKEND and PALYRA_VAULT_PASSPHRASE are read (default process.env). */
  env?: Readonly<Record<string, string | undefined>>;
  platform?: NodeJS.Platform;
  keyring?: KeyringFactory;
  runner?: CommandRunner;
  probeTimeoutMs?: number;
  maxValueBytes?: number;
  scrypt?: ScryptParams;
  /** Told when the vault falls back to the file backend, and similar things an operator must know. */
  onWarning?: (message: string) => void;
  /** Open even if PALYRA_VAULT_BACKEND names another backend (for `secrets migrate`). */
  ignoreBackendOverride?: boolean;
}

interface Ctx {
  dir: string;
  clock: Clock;
  random: Random;
  env: Readonly<Record<string, string | undefined>>;
  platform: NodeJS.Platform;
  options: VaultOptions;
}

function backendsFor(ctx: Ctx, vaultId: string): BackendSet {
  return new BackendSet({
    dir: ctx.dir,
    vaultId,
    random: ctx.random,
    maxValueBytes: ctx.options.maxValueBytes ?? limits.vaultMaxValueBytes,
    keyringTimeoutMs: limits.vaultKeyringTimeoutMs,
    commandTimeoutMs: limits.vaultCommandTimeoutMs,
    ...(ctx.options.keyring ? { keyring: ctx.options.keyring } : {}),
    ...(ctx.options.runner ? { runner: ctx.options.runner } : {}),
  });
}

function keyHomeContext(ctx: Ctx, vaultId: string, backends: BackendSet): KeyHomeContext {
  return {
    dir: ctx.dir,
    vaultId,
    env: ctx.env,
    random: ctx.random,
    backend: (kind) => backends.get(kind),
    ...(ctx.options.scrypt ? { scrypt: ctx.options.scrypt } : {}),
  };
}

/** The backend PALYRA_VAULT_BACKEND asks for, or undefined for auto. */
function requestedBackend(ctx: Ctx): BackendKind | undefined {
  const raw = ctx.env[BACKEND_ENV]?.trim();
  if (!raw || raw === "auto") return undefined;
  const kind = parseBackendKind(raw);
  if (!usableOn(kind, ctx.platform))
    throw new VaultError("backend_unavailable", `${BACKEND_ENV}=${kind} cannot work on ${ctx.platform}`);
  return kind;
}

function contextFor(dir: string, options: VaultOptions): Ctx {
  return {
    dir,
    clock: options.clock ?? systemClock,
    random: options.random ?? systemRandom,
    env: options.env ?? process.env,
    platform: options.platform ?? process.platform,
    options,
  };
}

export async function openVault(dir: string, options: VaultOptions = {}): Promise<Vault> {
  const ctx = contextFor(dir, options);
  ensurePrivateDirectory(dir);
  const catalog = VaultCatalog.open(join(dir, "vault.db"), limits.vaultBusyTimeoutMs);
  try {
    const settings = catalog.settings() ?? (await initialize(ctx, catalog));
    const requested = requestedBackend(ctx);
    if (requested !== undefined && requested !== settings.backend && !options.ignoreBackendOverride)
      throw new VaultError(
        "backend_mismatch",
        `this vault keeps its secrets in ${settings.backend}, but ${BACKEND_ENV} asks for ${requested}: move them with 'palyra secrets migrate --to ${requested}'`,
      );
    const backends = backendsFor(ctx, settings.vault_id);
    const keyHomes = keyHomeContext(ctx, settings.vault_id, backends);
    const vaultKey = await unlock(settings, keyHomes);
    removeStaleTempFilesOf(dir, ctx.clock.now());
    const vault = new Vault({
      dir,
      catalog,
      backends,
      vaultKey: new Secret(vaultKey),
      clock: ctx.clock,
      random: ctx.random,
      maxValueBytes: options.maxValueBytes ?? limits.vaultMaxValueBytes,
      keyHomes,
      platform: ctx.platform,
      probeTimeoutMs: options.probeTimeoutMs ?? limits.vaultProbeTimeoutMs,
    });
    await vault.collectGarbage();
    return vault;
  } catch (err) {
    catalog.close();
    throw err;
  }
}

/**
 * Temp files that a write killed before its rename left behind (a blob, the key file), collected with
 * the secret store's mechanism. A temp file is given up after the same grace as a pending blob write:
 * far longer than any single write, so a live writer in another process never loses its file.
 */
function removeStaleTempFilesOf(dir: string, now: number): void {
  for (const sub of ["", ...Object.values(BLOB_FILE_DIRS)])
    removeStaleTempFiles(join(dir, sub), now, limits.vaultPendingGraceMs);
}

/** First open: choose the backend, make the vault key, give it a home, record all of it. */
async function initialize(ctx: Ctx, catalog: VaultCatalog): Promise<VaultSettings> {
  // BEGIN IMMEDIATE takes the write lock, so two processes opening a new vault at once choose once.
  try {
    catalog.db.exec("BEGIN IMMEDIATE");
  } catch (err) {
    throw new VaultError("busy", "another process is creating this vault and took too long; try again", {
      cause: err,
    });
  }
  let stored: { home: KeyHome; khc: KeyHomeContext } | undefined;
  try {
    const existing = catalog.settings();
    if (existing) {
      catalog.db.exec("COMMIT");
      return existing;
    }
    const vaultId = ctx.random.bytes(16).toString("hex");
    const backends = backendsFor(ctx, vaultId);
    const requested = requestedBackend(ctx);
    const candidate = requested ?? nativeBackendKind(ctx.platform);
    let backend: BackendKind = "encrypted-file";
    let probe: VaultSettings["probe"] = null;
    if (candidate !== undefined && candidate !== "encrypted-file") {
      const result = await probeBackend(
        backends.get(candidate),
        ctx.random,
        ctx.options.probeTimeoutMs ?? limits.vaultProbeTimeoutMs,
      );
      probe = {
        backend: candidate,
        ok: result.ok,
        ms: result.ms,
        ...(result.ok ? {} : { reason: result.reason }),
      };
      if (result.ok) backend = candidate;
      else if (requested !== undefined)
        throw new VaultError(
          "backend_unavailable",
          `${BACKEND_ENV}=${requested} does not work here: ${result.reason}`,
        );
    }
    const selectedBy = requested !== undefined ? "env" : backend === candidate ? "auto" : "fallback";
    const khc = keyHomeContext(ctx, vaultId, backends);
    const home: KeyHome = backend === "encrypted-file" ? fileKeyHome(khc) : { kind: "backend", backend };
    if (selectedBy === "fallback")
      ctx.options.onWarning?.(
        `no OS keyring is usable here (${probe?.reason ?? `no OS store on ${ctx.platform}`}); secrets go to encrypted files in ${ctx.dir}` +
          (home.kind === "key-file"
            ? ", with the vault key in a key file there, so anyone who can read that directory can decrypt them. " +
              `Set ${PASSPHRASE_ENV} before the first use to seal the key with a passphrase, or run `
            : `, with the vault key sealed by ${PASSPHRASE_ENV}. Run `) +
          `'palyra secrets migrate --to ${candidate ?? "secret-service"}' once a keyring works.`,
      );
    const vaultKey = ctx.random.bytes(VAULT_KEY_BYTES);
    await storeVaultKey(home, vaultKey, khc);
    stored = { home, khc };
    const settings: VaultSettings = {
      version: 1,
      vault_id: vaultId,
      key_id: vaultKeyId(vaultKey).toString("hex"),
      backend,
      selected_at: ctx.clock.now(),
      selected_by: selectedBy,
      probe,
      key_homes: [home],
    };
    vaultKey.fill(0);
    catalog.saveSettings(settings);
    catalog.db.exec("COMMIT");
    return settings;
  } catch (err) {
    if (catalog.db.inTransaction) catalog.db.exec("ROLLBACK");
    if (stored) await removeVaultKey(stored.home, stored.khc).catch(() => {});
    throw err;
  }
}

/** The vault key from the first home that gives the right one (there are two during a migration). */
async function unlock(settings: VaultSettings, khc: KeyHomeContext): Promise<Buffer> {
  const reasons: string[] = [];
  for (const home of settings.key_homes) {
    try {
      const key = await loadVaultKey(home, khc);
      if (key.length === VAULT_KEY_BYTES && vaultKeyId(key).toString("hex") === settings.key_id) return key;
      key.fill(0);
      reasons.push(`${homeLabel(home)}: holds a different key`);
    } catch (err) {
      reasons.push(`${homeLabel(home)}: ${(err as Error).message}`);
    }
  }
  throw new VaultError("vault_locked", `cannot unlock the vault in ${khc.dir}: ${reasons.join("; ")}`);
}

/** A damaged or refused file (or keyring entry) found by `inspectVault`, named. */
export interface VaultProblem {
  file: string;
  message: string;
}

export interface VaultInspection {
  settings: VaultSettings;
  /** Why the vault key could not be checked here (passphrase not set, keyring unreachable). */
  unchecked?: string;
  /** Every home that failed to give the vault key, and every blob file that failed to open. */
  problems: VaultProblem[];
  /** Blob files that opened with the vault key. */
  opened: number;
  /** Secrets kept in an OS store, not opened (each would be a keyring call). */
  notOpened: number;
}

/**
 * For `palyra doctor`: checks an existing vault without creating, collecting or changing anything.
 * Every key home must give the vault key (its id matches the one recorded), and with that key every
 * blob file of the encrypted-file backend must open. Undefined if there is no vault.
 */
export async function inspectVault(
  dir: string,
  options: VaultOptions = {},
): Promise<VaultInspection | undefined> {
  const index = join(dir, "vault.db");
  const settings = VaultCatalog.peek(index);
  if (!settings) return undefined;
  const ctx = contextFor(dir, options);
  const backends = backendsFor(ctx, settings.vault_id);
  const khc = keyHomeContext(ctx, settings.vault_id, backends);
  const problems: VaultProblem[] = [];
  const unchecked: string[] = [];
  let vaultKey: Buffer | undefined;
  for (const home of settings.key_homes) {
    const where =
      home.kind === "backend"
        ? `the ${home.backend} (vault key ${vaultKeyBlobId(settings.vault_id)})`
        : join(dir, home.file);
    if (home.kind === "passphrase" && !ctx.env[PASSPHRASE_ENV]) {
      unchecked.push(`${PASSPHRASE_ENV} is not set`);
      continue;
    }
    let key: Buffer;
    try {
      key = await loadVaultKey(home, khc);
    } catch (err) {
      // A store that did not answer says nothing about the key; a home that answered wrongly does.
      if (home.kind === "backend" && (err as VaultError).code !== "vault_locked")
        unchecked.push(`${homeLabel(home)}: ${(err as Error).message}`);
      else problems.push({ file: where, message: (err as Error).message });
      continue;
    }
    if (key.length === VAULT_KEY_BYTES && vaultKeyId(key).toString("hex") === settings.key_id) {
      if (vaultKey) key.fill(0);
      else vaultKey = key;
    } else {
      key.fill(0);
      problems.push({
        file: where,
        message: `${where} does not hold this vault's key (damaged or replaced): it does not match the key id recorded in ${index}`,
      });
    }
  }
  let opened = 0;
  let notOpened = 0;
  const found = vaultKey !== undefined;
  if (vaultKey) {
    try {
      const files = backends.get("encrypted-file");
      for (const row of VaultCatalog.peekSecrets(index)) {
        if (row.backend !== "encrypted-file") {
          notOpened++;
          continue;
        }
        const file = join(dir, BLOB_FILE_DIRS["encrypted-file"], `${row.object_id}.blob`);
        try {
          const blob = await files.get(row.object_id);
          if (blob === undefined) {
            problems.push({ file, message: `the blob of ${row.scope}/${row.key} is missing: ${file}` });
            continue;
          }
          openValue(vaultKey, row.scope, row.key, blob).fill(0);
          opened++;
        } catch (err) {
          const message = (err as Error).message;
          problems.push({ file, message: message.includes(file) ? message : `${message}: ${file}` });
        }
      }
    } finally {
      vaultKey.fill(0);
    }
  }
  return {
    settings,
    ...(!found && unchecked.length > 0 ? { unchecked: unchecked.join("; ") } : {}),
    problems,
    opened,
    notOpened,
  };
}

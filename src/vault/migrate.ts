import { timingSafeEqual } from "node:crypto";
import { limits } from "../common/limits.js";
import { processAlive } from "../common/process-alive.js";
import { usableOn } from "./backends/backend-set.js";
import { type BackendKind, parseBackendKind } from "./backends/blob-backend.js";
import { probeBackend } from "./backends/probe.js";
import { VaultError } from "./errors.js";
import { openValue } from "./sealed-blob.js";
import type { KeyHome } from "./settings.js";
import type { Vault } from "./vault.js";
import {
  fileKeyHome,
  homeLabel,
  loadVaultKey,
  removeVaultKey,
  sameHome,
  storeVaultKey,
} from "./vault-key.js";

/**
 * Moves every secret to another backend, safely against interruption at any point:
 * 0. one migration at a time: a lease in vault.db (a second one is refused while the first lives);
 * 1. the vault key gets a home on the target (read back and compared) before anything else;
 * 2. the target becomes the backend for new writes, and the target's home is listed first;
 * 3. each blob is copied (checked to open under its name first), then its row is repointed in one
 *    transaction, only if no one rewrote the secret meanwhile; the old blob becomes an orphan. Writes
 *    that began before step 2 are waited for, and moved too;
 * 4. only then are the old homes removed, and after that the vault records the single home.
 * Stopped anywhere, every secret is readable (from the old blob or the new) with the key from some
 * listed home, and running it again finishes the job.
 */

export interface MigrationProgress {
  moved: number;
  total: number;
  ref: string;
}

export interface MigrationReport {
  to: BackendKind;
  from: BackendKind[];
  moved: number;
  /** Secrets rewritten by someone else while moving; their new values are already on the target. */
  skipped: number;
  key_home: string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function migrateVault(
  vault: Vault,
  target: string,
  onProgress: (progress: MigrationProgress) => void = () => {},
): Promise<MigrationReport> {
  const to = parseBackendKind(target);
  const p = vault.parts;
  if (!usableOn(to, p.platform))
    throw new VaultError("backend_unavailable", `the ${to} backend cannot work on ${p.platform}`);
  const lease = p.random.bytes(16).toString("hex");
  const { catalog, clock } = p;
  catalog.write(() => {
    const held = catalog.lease("migration");
    if (held && held.expires_at > clock.now() && processAlive(held.pid))
      throw new VaultError(
        "busy",
        `another migration (pid ${held.pid}, to ${held.detail}) is running on this vault; wait for it`,
      );
    catalog.takeLease("migration", {
      owner: lease,
      pid: process.pid,
      detail: to,
      expires_at: clock.now() + limits.vaultPendingGraceMs,
    });
  });
  try {
    return await migrate(vault, to, onProgress);
  } finally {
    catalog.write(() => catalog.releaseLease("migration", lease));
  }
}

async function migrate(
  vault: Vault,
  to: BackendKind,
  onProgress: (progress: MigrationProgress) => void,
): Promise<MigrationReport> {
  const p = vault.parts;
  const { catalog, backends, clock, random } = p;
  const store = backends.get(to);
  const settings = catalog.settings();
  if (!settings) throw new VaultError("backend_failed", "the vault settings disappeared");

  let probe = settings.probe;
  if (to !== "encrypted-file") {
    const result = await probeBackend(store, random, p.probeTimeoutMs);
    probe = { backend: to, ok: result.ok, ms: result.ms, ...(result.ok ? {} : { reason: result.reason }) };
    if (!result.ok) throw new VaultError("backend_unavailable", `cannot migrate to ${to}: ${result.reason}`);
  }

  // 1. the key's new home, verified. To the file backend: behind PALYRA_VAULT_PASSPHRASE when set
  //    (which also moves a plain key file there).
  const vaultKey = p.vaultKey.expose();
  const desired: KeyHome =
    to === "encrypted-file" ? fileKeyHome(p.keyHomes) : { kind: "backend", backend: to };
  const existing = settings.key_homes.find((h) => sameHome(h, desired));
  const targetHome = existing ?? desired;
  if (!existing) {
    await storeVaultKey(targetHome, vaultKey, p.keyHomes);
    const back = await loadVaultKey(targetHome, p.keyHomes);
    const same = back.length === vaultKey.length && timingSafeEqual(back, vaultKey);
    back.fill(0);
    if (!same) throw new VaultError("backend_failed", `the ${to} did not keep the vault key intact`);
  }

  // 2. new writes go to the target from now on
  catalog.write(() => {
    const current = catalog.settings() ?? settings;
    catalog.saveSettings({
      ...current,
      backend: to,
      selected_by: "migrate",
      selected_at: clock.now(),
      probe,
      key_homes: [targetHome, ...current.key_homes.filter((h) => !sameHome(h, targetHome))],
    });
  });

  // 3. move the blobs, then wait for writers that chose the old backend before step 2, and repeat
  const from = new Set<BackendKind>();
  let moved = 0;
  let skipped = 0;
  const total = catalog.notOn(to).length;
  const waitLimitMs = 2 * Math.max(limits.vaultCommandTimeoutMs, limits.vaultKeyringTimeoutMs);
  for (let waitedMs = 0; ; waitedMs += 50) {
    for (const row of catalog.notOn(to)) {
      from.add(row.backend);
      const ref = `${row.scope}/${row.key}`;
      const blob = await backends.get(row.backend).get(row.object_id);
      if (blob === undefined) {
        if (catalog.secret(row.scope, row.key)?.object_id !== row.object_id) skipped++;
        else throw new VaultError("backend_failed", `the ${row.backend} no longer holds the blob of ${ref}`);
        continue;
      }
      openValue(vaultKey, row.scope, row.key, blob).fill(0);
      const id = `pv_${random.bytes(16).toString("hex")}`;
      const now = clock.now();
      catalog.write(() => catalog.addOrphan(id, to, now, true));
      await store.put(id, blob);
      const repointed = catalog.write(() => {
        if (!catalog.claimPending(id))
          throw new VaultError("busy", "the move took too long and was given up");
        if (!catalog.repoint(row, id, to)) {
          catalog.addOrphan(id, to, now, false);
          return false;
        }
        catalog.addOrphan(row.object_id, row.backend, now, false);
        return true;
      });
      if (repointed) moved++;
      else skipped++;
      onProgress({ moved: moved + skipped, total, ref });
    }
    // A writer that crashed long ago is not waited for (its blob is collected as an orphan).
    catalog.write(() => catalog.abandonPending(clock.now() - limits.vaultPendingGraceMs));
    const writing = catalog.pendingNotOn(to);
    if (writing === 0 && catalog.notOn(to).length === 0) break;
    if (waitedMs > waitLimitMs)
      throw new VaultError("busy", "writes to the old backend are still in progress; run migrate again");
    await sleep(50);
  }

  // 4. drop the old homes, then record the single one (a crash between leaves a listed home that is
  //    gone: harmless, the target's home is listed first)
  const current = catalog.settings() ?? settings;
  if (current.backend !== to)
    throw new VaultError("busy", "another migration changed the backend meanwhile; run migrate again");
  for (const home of current.key_homes.filter((h) => !sameHome(h, targetHome))) {
    await removeVaultKey(home, p.keyHomes);
    if (home.kind === "backend") await backends.get(home.backend).forget?.();
  }
  catalog.write(() => catalog.saveSettings({ ...(catalog.settings() ?? current), key_homes: [targetHome] }));
  await vault.collectGarbage();
  return { to, from: [...from], moved, skipped, key_home: homeLabel(targetHome) };
}

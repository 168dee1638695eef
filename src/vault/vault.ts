import type { Clock } from "../common/clock.js";
import { limits } from "../common/limits.js";
import type { Random } from "../common/random.js";
import { Secret } from "../common/redaction.js";
import type { BackendSet } from "./backends/backend-set.js";
import type { BackendKind } from "./backends/blob-backend.js";
import type { SecretRow, VaultCatalog } from "./catalog.js";
import { VaultError } from "./errors.js";
import { assertKey } from "./ref.js";
import { assertScope } from "./scope.js";
import { openValue, sealValue } from "./sealed-blob.js";
import { homeLabel, type KeyHomeContext, protectionOf } from "./vault-key.js";

/**
 * Scoped secrets (DESIGN section 8). Values are sealed here (sealed-blob.ts) and handed to a backend
 * under a random id; vault.db maps `<scope>/<key>` to that id with metadata, never a value. A write
 * puts the new blob first and then commits the mapping, so the old value stays readable until the new
 * one is durable; replaced blobs are deleted afterwards (catalog.ts explains the bookkeeping).
 */

export interface SecretMetadata {
  ref: string;
  scope: string;
  key: string;
  /** Bytes of the value. */
  size: number;
  backend: BackendKind;
  created_at: string;
  updated_at: string;
}

export interface VaultDescription {
  path: string;
  backend: BackendKind;
  protection: string;
  weak: boolean;
  detail: string;
  selected_by: string;
  selected_at: string;
  probe: { backend: string; ok: boolean; ms: number; reason?: string } | null;
  key_homes: string[];
  secrets: number;
  /** Secrets still on another backend (an interrupted migration; run it again). */
  pending_migration: number;
}

export interface VaultParts {
  dir: string;
  catalog: VaultCatalog;
  backends: BackendSet;
  vaultKey: Secret<Buffer>;
  clock: Clock;
  random: Random;
  maxValueBytes: number;
  /** For migrations: where vault keys go, which backends this platform has, how long a probe may take. */
  keyHomes: KeyHomeContext;
  platform: NodeJS.Platform;
  probeTimeoutMs: number;
}

function metadataOf(row: SecretRow): SecretMetadata {
  return {
    ref: `${row.scope}/${row.key}`,
    scope: row.scope,
    key: row.key,
    size: row.size,
    backend: row.backend,
    created_at: new Date(row.created_at).toISOString(),
    updated_at: new Date(row.updated_at).toISOString(),
  };
}

/** A revealed value for JSON output: always base64, and as text when it is valid UTF-8. */
export function revealedValue(value: Buffer): { value_base64: string; value_utf8: string | null } {
  let text: string | null = null;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(value);
  } catch {
    // not text: value_base64 carries it
  }
  return { value_base64: value.toString("base64"), value_utf8: text };
}

export class Vault {
  readonly #p: VaultParts;

  /** Use `openVault` (open-vault.ts). */
  constructor(parts: VaultParts) {
    this.#p = parts;
  }

  get path(): string {
    return this.#p.dir;
  }

  /** For migrate.ts: the vault's parts, not for general use. */
  get parts(): VaultParts {
    return this.#p;
  }

  #newObjectId(): string {
    return `pv_${this.#p.random.bytes(16).toString("hex")}`;
  }

  /** Writes `value` under `scope`/`key`, replacing any previous value. */
  async put(scope: string, key: string, value: Uint8Array): Promise<SecretMetadata> {
    const s = assertScope(scope);
    const k = assertKey(key);
    if (!(value instanceof Uint8Array)) throw new VaultError("invalid_key", "a secret value is bytes");
    if (value.length > this.#p.maxValueBytes)
      throw new VaultError(
        "value_too_large",
        `the value for ${s}/${k} is ${value.length} bytes; the limit is ${this.#p.maxValueBytes}`,
      );
    const { catalog, clock } = this.#p;
    const sealed = sealValue(this.#p.vaultKey.expose(), s, k, value, this.#p.random);
    const backend = this.#activeBackend();
    const id = this.#newObjectId();
    const now = clock.now();
    catalog.write(() => catalog.addOrphan(id, backend, now, true));
    const store = this.#p.backends.get(backend);
    let written: { row: SecretRow; previous: SecretRow | undefined };
    try {
      await store.put(id, sealed);
      written = catalog.write(() => {
        if (!catalog.claimPending(id))
          throw new VaultError("busy", "the write took too long and was given up; try again");
        const old = catalog.secret(s, k);
        const row: SecretRow = {
          scope: s,
          key: k,
          object_id: id,
          backend,
          size: value.length,
          created_at: old?.created_at ?? now,
          updated_at: now,
        };
        catalog.upsert(row);
        if (old) catalog.addOrphan(old.object_id, old.backend, now, false);
        return { row, previous: old };
      });
    } catch (err) {
      // Nothing points at the new blob. It stays listed (settled) and the next collection deletes it:
      // a store that timed out may still write it after this, so deleting now could leave it behind.
      catalog.write(() => catalog.addOrphan(id, backend, now, false));
      throw err;
    }
    if (written.previous) await this.#collect(written.previous.object_id, written.previous.backend);
    return metadataOf(written.row);
  }

  /** The value under `scope`/`key`, wrapped so that printing or logging it shows nothing. */
  async get(scope: string, key: string): Promise<Secret<Buffer>> {
    const s = assertScope(scope);
    const k = assertKey(key);
    // A concurrent write may replace the blob between reading the row and the blob: read again.
    for (let attempt = 0; attempt < 3; attempt++) {
      const row = this.#p.catalog.secret(s, k);
      if (!row) throw new VaultError("not_found", `no secret ${s}/${k}`);
      const blob = await this.#p.backends.get(row.backend).get(row.object_id);
      if (blob === undefined) {
        if (this.#p.catalog.secret(s, k)?.object_id !== row.object_id) continue;
        throw new VaultError(
          "backend_failed",
          `the ${row.backend} no longer holds the blob of ${s}/${k} (removed outside Palyra?)`,
        );
      }
      return new Secret(openValue(this.#p.vaultKey.expose(), s, k, blob));
    }
    throw new VaultError("busy", `${s}/${k} kept changing while being read; try again`);
  }

  /** Whether a secret exists (one index lookup). */
  has(scope: string, key: string): boolean {
    return this.#p.catalog.secret(assertScope(scope), assertKey(key)) !== undefined;
  }

  metadata(scope: string, key: string): SecretMetadata {
    const s = assertScope(scope);
    const k = assertKey(key);
    const row = this.#p.catalog.secret(s, k);
    if (!row) throw new VaultError("not_found", `no secret ${s}/${k}`);
    return metadataOf(row);
  }

  /** Metadata of every secret, or of one scope; never values. Sorted by scope, then key. */
  list(filter: { scope?: string } = {}): SecretMetadata[] {
    const scope = filter.scope === undefined ? undefined : assertScope(filter.scope);
    return this.#p.catalog.list(scope).map(metadataOf);
  }

  /** Deletes a secret; false if there was none. */
  async delete(scope: string, key: string): Promise<boolean> {
    const s = assertScope(scope);
    const k = assertKey(key);
    const { catalog, clock } = this.#p;
    const removed = catalog.write(() => {
      const row = catalog.secret(s, k);
      if (!row) return undefined;
      catalog.remove(s, k);
      catalog.addOrphan(row.object_id, row.backend, clock.now(), false);
      return row;
    });
    if (!removed) return false;
    await this.#collect(removed.object_id, removed.backend);
    return true;
  }

  describe(): VaultDescription {
    const settings = this.#settings();
    const home = settings.key_homes[0]!;
    return {
      path: this.#p.dir,
      backend: settings.backend,
      ...protectionOf(home),
      selected_by: settings.selected_by,
      selected_at: new Date(settings.selected_at).toISOString(),
      probe: settings.probe,
      key_homes: settings.key_homes.map(homeLabel),
      secrets: this.#p.catalog.count(),
      pending_migration: this.#p.catalog.notOn(settings.backend).length,
    };
  }

  /** Deletes blobs nothing points at any more (replaced, deleted, or left by a crashed writer). */
  async collectGarbage(): Promise<number> {
    const { catalog, clock } = this.#p;
    catalog.write(() => catalog.abandonPending(clock.now() - limits.vaultPendingGraceMs));
    let collected = 0;
    for (const orphan of catalog.settled())
      if (await this.#collect(orphan.object_id, orphan.backend)) collected++;
    return collected;
  }

  /** Best effort: a backend that fails now keeps the orphan listed for the next collection. */
  async #collect(objectId: string, backend: BackendKind): Promise<boolean> {
    try {
      await this.#p.backends.get(backend).delete(objectId);
      this.#p.catalog.write(() => this.#p.catalog.forgetOrphan(objectId));
      return true;
    } catch {
      return false;
    }
  }

  #settings() {
    const settings = this.#p.catalog.settings();
    if (!settings) throw new VaultError("backend_failed", "the vault settings disappeared");
    return settings;
  }

  /** Read for every write: a migration in another process may have moved new writes elsewhere. */
  #activeBackend(): BackendKind {
    return this.#settings().backend;
  }

  close(): void {
    this.#p.vaultKey.expose().fill(0);
    this.#p.catalog.close();
  }
}

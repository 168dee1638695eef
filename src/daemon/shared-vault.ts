import type { Clock } from "../common/clock.js";
import { limits } from "../common/limits.js";
import type { Random } from "../common/random.js";
import { Secret } from "../common/redaction.js";
import type { MetaRepository, VaultEntry, VaultRepository } from "../store/ports.js";
import { VaultError } from "../vault/errors.js";
import { assertKey } from "../vault/ref.js";
import { assertScope } from "../vault/scope.js";
import { openValue, SEALED_OVERHEAD, sealValue, VAULT_KEY_BYTES } from "../vault/sealed-blob.js";
import type { SecretsDescription, SecretsMetadata, SecretsVault } from "../vault/secrets-vault.js";
import { requireClusterPassphrase } from "./cluster-ca.js";
import { openWithPassphrase, sealedSchema, sealWithPassphrase } from "./passphrase-seal.js";

/**
 * The vault of a cluster: every gateway reads and writes the same secrets in the shared database. Each
 * value is sealed exactly as on one host (its own data key, wrapped by the vault key, bound to scope and
 * key: sealed-blob.ts); the vault key is random, kept in the database sealed under the cluster
 * passphrase like the CA key, and created by the first gateway that needs it.
 */

const META_VAULT_KEY = "cluster.vault_key";
const FORMAT = { magic: "PVK2", version: 1 } as const;
const AAD = Buffer.from("palyra-cluster-vault-key-v1");

export async function openSharedVault(deps: {
  meta: MetaRepository;
  rows: VaultRepository;
  location: string;
  passphrase: string | undefined;
  clock: Clock;
  random: Random;
}): Promise<SecretsVault> {
  const passphrase = requireClusterPassphrase(deps.passphrase);
  let stored = await deps.meta.get(META_VAULT_KEY);
  if (stored === undefined) {
    const fresh = deps.random.bytes(VAULT_KEY_BYTES);
    const sealed = await sealWithPassphrase(fresh, passphrase, FORMAT, AAD, deps.random);
    fresh.fill(0);
    stored = await deps.meta.setIfAbsent(META_VAULT_KEY, JSON.stringify(sealed));
  }
  let key: Buffer;
  try {
    key = await openWithPassphrase(sealedSchema.parse(JSON.parse(stored)), passphrase, FORMAT, AAD);
  } catch (err) {
    throw new VaultError("vault_locked", "PALYRA_CA_PASSPHRASE does not open the cluster's vault key", {
      cause: err,
    });
  }
  return new SharedVault(new Secret(key), deps.rows, deps.location, deps.clock, deps.random);
}

class SharedVault implements SecretsVault {
  readonly #key: Secret<Buffer>;
  readonly #rows: VaultRepository;
  readonly #location: string;
  readonly #clock: Clock;
  readonly #random: Random;

  constructor(key: Secret<Buffer>, rows: VaultRepository, location: string, clock: Clock, random: Random) {
    this.#key = key;
    this.#rows = rows;
    this.#location = location;
    this.#clock = clock;
    this.#random = random;
  }

  async describe(): Promise<SecretsDescription> {
    return {
      path: this.#location,
      backend: "database",
      protection: "passphrase",
      weak: false,
      detail:
        "the cluster's shared vault: sealed values in the database, the vault key sealed with PALYRA_CA_PASSPHRASE",
      selected_by: "cluster",
      selected_at: new Date(0).toISOString(),
      probe: null,
      key_homes: ["database"],
      secrets: (await this.#rows.list()).length,
      pending_migration: 0,
    };
  }

  async list(filter: { scope?: string } = {}): Promise<SecretsMetadata[]> {
    const scope = filter.scope === undefined ? undefined : assertScope(filter.scope);
    return (await this.#rows.list(scope)).map(metadataOf);
  }

  async metadata(scope: string, key: string): Promise<SecretsMetadata> {
    const found = await this.#rows.get(assertScope(scope), assertKey(key));
    if (!found) throw new VaultError("not_found", `no secret ${scope}/${key}`);
    return metadataOf(found.entry);
  }

  async has(scope: string, key: string): Promise<boolean> {
    return (await this.#rows.get(assertScope(scope), assertKey(key))) !== undefined;
  }

  async get(scope: string, key: string): Promise<Secret<Buffer>> {
    const s = assertScope(scope);
    const k = assertKey(key);
    const found = await this.#rows.get(s, k);
    if (!found) throw new VaultError("not_found", `no secret ${s}/${k}`);
    if (found.blob.length > limits.vaultMaxValueBytes + SEALED_OVERHEAD)
      throw new VaultError("blob_corrupt", `the stored blob of ${s}/${k} is larger than any value`);
    return new Secret(openValue(this.#key.expose(), s, k, found.blob));
  }

  async put(scope: string, key: string, value: Uint8Array): Promise<SecretsMetadata> {
    const s = assertScope(scope);
    const k = assertKey(key);
    if (!(value instanceof Uint8Array)) throw new VaultError("invalid_key", "a secret value is bytes");
    if (value.length > limits.vaultMaxValueBytes)
      throw new VaultError(
        "value_too_large",
        `the value for ${s}/${k} is ${value.length} bytes; the limit is ${limits.vaultMaxValueBytes}`,
      );
    const now = this.#clock.now();
    const blob = sealValue(this.#key.expose(), s, k, value, this.#random);
    const entry = { scope: s, key: k, size: value.length, createdAt: now, updatedAt: now };
    return metadataOf(await this.#rows.put(entry, blob));
  }

  async delete(scope: string, key: string): Promise<boolean> {
    return this.#rows.delete(assertScope(scope), assertKey(key));
  }
}

function metadataOf(entry: VaultEntry): SecretsMetadata {
  return {
    ref: `${entry.scope}/${entry.key}`,
    scope: entry.scope,
    key: entry.key,
    size: entry.size,
    backend: "database",
    created_at: new Date(entry.createdAt).toISOString(),
    updated_at: new Date(entry.updatedAt).toISOString(),
  };
}
